"""Each Table 5 method's map against a computation made independently of the suite's code path: a
closed form, the library called directly with the authors' settings, or a per-image loop of the
authors' algorithm. (SCAM, RISE and CE: test_baselines.py; CCE: test_cce_by_value.py.)"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cce_bench import create_explainer
from cce_bench.explainers import postprocess


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(3, 3, 16, 12), torch.tensor([0, 3, 1])


class LinearNet(nn.Module):
    def __init__(self, classes=4, shape=(3, 16, 12), seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(classes, *shape, generator=g), requires_grad=False)
        self.bias = nn.Parameter(torch.randn(classes, generator=g), requires_grad=False)

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x, self.weight) + self.bias


class ConvBNNet(nn.Module):
    """conv(bias) -> BN -> relu -> conv(no bias) -> BN -> relu -> pool -> linear, BN stats not trivial."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(),
                                  nn.Conv2d(5, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU())
        self.fc = nn.Linear(6, 4)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            for bn in (self.body[1], self.body[4]):
                bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.3)
                bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        self.eval()

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.body(x), 1).flatten(1))


def test_ig_of_a_linear_model_is_input_minus_baseline_times_the_weights(batch):
    images, targets = batch
    net = LinearNet()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    maps = create_explainer("ig", net, steps=7, mean=mean, std=std).attribute(images, targets)
    baseline = (0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    # for f linear, IG_i = (x_i - x'_i) * w_i exactly, whatever the number of steps
    reference = ((images - baseline) * net.weight[targets]).abs().sum(1)
    torch.testing.assert_close(maps, postprocess(reference, (16, 12)), atol=1e-5, rtol=0)


def test_gbp_is_captums_guided_backprop_called_directly(tiny_net, batch):
    from captum.attr import GuidedBackprop

    images, targets = batch
    maps = create_explainer("gbp", tiny_net).attribute(images, targets)
    direct = GuidedBackprop(tiny_net).attribute(images.clone().requires_grad_(True), target=targets)
    torch.testing.assert_close(maps, postprocess(direct.abs().amax(1), (16, 12)), atol=1e-6, rtol=0)


def test_gbp_of_a_one_relu_net_by_hand():
    """f = w2 . relu(W1 x): guided backprop = W1^T (relu(w2) * [W1 x > 0]), negative gradients cut."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False), nn.ReLU(), nn.Linear(5, 2, bias=False))
    torch.manual_seed(1)
    x = torch.randn(1, 3, 2, 2)
    maps = create_explainer("gbp", net).attribute(x, torch.tensor([1]))
    w1, w2 = net[1].weight.detach(), net[3].weight.detach()[1]
    active = (w1 @ x.flatten()) > 0
    grad = (w1.T @ (torch.relu(w2) * active)).view(3, 2, 2)
    torch.testing.assert_close(maps[0], postprocess(grad.abs().amax(0)[None], (2, 2))[0], atol=1e-6, rtol=0)


def test_gradcam_plus_plus_is_the_library_called_directly(tiny_net, batch):
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    images, targets = batch
    maps = create_explainer("gradcam_pp", tiny_net, target_layer="conv").attribute(images, targets)
    with GradCAMPlusPlus(model=tiny_net, target_layers=[tiny_net.conv]) as cam:
        direct = cam(input_tensor=images.clone().requires_grad_(True),
                     targets=[ClassifierOutputTarget(int(t)) for t in targets])
    torch.testing.assert_close(maps, postprocess(torch.as_tensor(direct), (16, 12)), atol=1e-5, rtol=0)


def test_fullgrad_decomposition_is_complete():
    """For a piecewise-linear net: sum(input-gradient x input) + sum of all bias terms = the logit."""
    net = ConvBNNet()
    explainer = create_explainer("fullgrad", net)
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8, 8)
    targets = torch.tensor([1, 3])
    input_term, bias_terms = explainer.decompose(x, targets)
    total = input_term.flatten(1).sum(1) + sum(t.flatten(1).sum(1) for t in bias_terms) + net.fc.bias[targets]
    torch.testing.assert_close(total, net(x).gather(1, targets.view(-1, 1))[:, 0], atol=1e-4, rtol=1e-4)


def authors_fullgrad(net, image, target):
    """The FullGrad authors' procedure, written out: backward hooks at every conv/BN with a bias, the
    effective BN bias, each term post-processed as a whole, align_corners=True, channels summed."""
    grads, biases, handles = [], [], []
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
            if isinstance(m, nn.BatchNorm2d):
                biases.append(m.bias - m.running_mean * m.weight / torch.sqrt(m.running_var + m.eps))
            elif m.bias is not None:
                biases.append(m.bias)
            else:
                continue
            handles.append(m.register_full_backward_hook(lambda mod, gi, go: grads.append(go[0])))
    x = image.clone().requires_grad_(True)
    out = net(x)
    out[0, target].backward()
    for h in handles:
        h.remove()
    grads = grads[::-1]  # backward order -> forward order

    def post(t):
        t = t.abs()
        t = t - t.min()
        return t / (t.max() + 1e-6)

    cam = post(x.grad * image).sum(1)
    for g, b in zip(grads, biases):
        term = post(g * b.view(1, -1, 1, 1))
        cam = cam + F.interpolate(term, size=image.shape[-2:], mode="bilinear", align_corners=True).sum(1)
    return cam.detach()[0]


def test_fullgrad_map_matches_the_authors_procedure():
    net = ConvBNNet()
    torch.manual_seed(3)
    images = torch.randn(2, 3, 10, 9)
    targets = torch.tensor([2, 0])
    maps = create_explainer("fullgrad", net).attribute(images, targets)
    for b in range(2):
        reference = authors_fullgrad(net, images[b:b + 1], int(targets[b]))
        torch.testing.assert_close(maps[b], postprocess(reference[None], (10, 9))[0], atol=1e-5, rtol=0)


def authors_lbfgs_direction(net, img, target: int, steps: int = 15):
    """The authors' APPB loop for one image: L-BFGS on the perceptual + pixel loss with the margin toward the
    best other class, from the image itself."""
    clean = net.conv(img).detach()

    def loss(candidate):
        out = 10.0 * F.mse_loss(net.conv(candidate), clean) + F.mse_loss(candidate, img)
        z = net(candidate)[0]
        others = torch.cat([z[:target], z[target + 1:]]).max()
        return out + (z[target] - others + 2.0) ** 2

    direction = img.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([direction], max_iter=steps)

    def closure():
        optimiser.zero_grad()
        value = loss(direction)
        value.backward()
        return value

    optimiser.step(closure)
    return direction.detach()


def test_appb_matches_the_authors_lbfgs_loop_one_image_at_a_time(tiny_net, batch):
    images, targets = batch
    images = images.double()
    net = tiny_net.double()
    maps = create_explainer("appb", net, layers=["conv"], steps=15, gamma_p=10.0).attribute(images, targets)
    for b in range(3):
        img = images[b:b + 1]
        direction = authors_lbfgs_direction(net, img, int(targets[b]))
        rms = ((direction - img) ** 2).mean(1).sqrt()[0].numpy()
        from scipy.ndimage import gaussian_filter

        reference = torch.as_tensor(gaussian_filter(rms, sigma=2, mode="mirror"))
        torch.testing.assert_close(maps[b].double(), postprocess(reference[None], (16, 12))[0].double(),
                                   atol=1e-4, rtol=0)


def test_calm_map_is_the_joint_probability_and_its_own_classifier_chooses():
    from cce_bench.explainers.calm import CALMNet, OnBenchmarkInput

    torch.manual_seed(4)
    calm = CALMNet(classes=5).eval()
    x = torch.rand(2, 3, 64, 64)
    f = calm.features(x)
    class_maps, prior = calm.class_maps(f), calm.prior(f)
    p_y_given_z = class_maps.softmax(1)
    p_z = prior.flatten(1).softmax(1).view_as(prior)
    joint = p_y_given_z * p_z  # [B, classes, h, w]
    torch.testing.assert_close(calm.joint_log_prob(x).exp(), joint, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(calm(x).exp(), joint.flatten(2).sum(2), atol=1e-6, rtol=1e-5)  # p(y|x)
    mean, std = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.5, 0.5, 0.5])
    wrapped = OnBenchmarkInput(calm, mean, std)
    benchmark_input = (x - 0.5) / 0.5  # images as a model normalised with mean = std = 0.5 takes them
    imagenet_input = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(wrapped(benchmark_input), calm(imagenet_input), atol=1e-5, rtol=1e-5)


def test_ce_contrast_class_needs_a_change(tiny_net):
    explainer = create_explainer("contrastive_gradcam", tiny_net, target_layer="conv")
    logits = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3]])
    assert explainer.contrast_classes(logits, torch.tensor([1])).tolist() == [[3]]  # top-1 target: the 2nd
    assert explainer.contrast_classes(logits, torch.tensor([3])).tolist() == [[2]]  # never the top-1 (1)


def test_every_method_puts_its_map_on_the_evidence_of_a_planted_object():
    """A model that answers class 0 from the top-left quarter only: every method's map must put more
    energy there than elsewhere (a blank, inverted or border-pinned map fails)."""
    torch.manual_seed(5)

    class QuarterNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            with torch.no_grad():
                self.conv.weight.copy_(torch.randn(4, 3, 3, 3).abs() * 0.3)
                self.conv.bias.zero_()

        def forward(self, x):
            h = torch.relu(self.conv(x))
            quarter = h[:, :, :8, :8].mean((1, 2, 3))
            rest = h[:, :, 8:, 8:].mean((1, 2, 3))
            return torch.stack([2 * quarter, rest, 0.5 * quarter + 0.5 * rest, torch.zeros_like(rest)], 1)

    net = QuarterNet().eval()
    images = torch.rand(2, 3, 16, 16) * 0.2
    images[:, :, :8, :8] += 1.0  # the object
    targets = torch.tensor([0, 0])
    knobs = {
        "gbp": {},
        "ig": {"steps": 8},
        "rise": {"N": 400, "grid": 4},
        "gradcam_pp": {"target_layer": "conv"},
        "scorecam": {"target_layer": "conv"},
        "fullgrad": {},
        "contrastive_gradcam": {"target_layer": "conv"},
        "appb": {"layers": ["conv"], "steps": 20},
        # CCE's "why P?" map is M_sup (alpha 1); its M_pro lies on the contrast class's evidence
        # (tests/test_contrast.py)
        "cce": {"M": 1, "steps": 20, "epsilon": 32, "gamma": 0.5, "target_layer": "conv", "alpha": 1.0},
    }
    for name, kw in knobs.items():
        maps = create_explainer(name, net, **kw, **({"mean": (0, 0, 0), "std": (1, 1, 1)} if name == "cce" else {}))
        m = maps.attribute(images, targets)
        inside = m[:, :8, :8].mean((1, 2))
        outside = m[:, 8:, 8:].mean((1, 2))
        assert (inside > outside).all(), f"{name}: inside {inside.tolist()} vs outside {outside.tolist()}"
        assert np.isfinite(m.numpy()).all()


def test_rise_defaults_by_model_with_the_authors_setting_for_resnet50(tiny_net):
    from cce_bench.models import MODELS

    tiny_net.facts = MODELS.get("resnet50").facts  # what create_model gives a ResNet-50
    resnet = create_explainer("rise", tiny_net)
    assert (resnet.N, resnet.grid, resnet.keep) == (6000, 8, 0.1)  # eclique/RISE Saliency.py
    tiny_net.facts = MODELS.get("vgg19").facts
    other = create_explainer("rise", tiny_net)
    assert (other.N, other.grid, other.keep) == (4000, 7, 0.5)
    assert create_explainer("rise", tiny_net, N=100, keep=0.3).N == 100  # an explicit knob wins


@pytest.mark.parametrize("cells,size", [(7, 256), (8, 232), (4, 20), (2, 9)])
def test_rise_upsampling_is_the_authors_skimage_resize(cells, size):
    # The RISE code upsamples each binary grid with skimage's resize(order=1, mode='reflect').
    from skimage.transform import resize

    from cce_bench.explainers.rise import upsampling_matrix
    grid = (np.random.default_rng(cells).random((cells, cells)) < 0.5).astype(np.float64)
    weights = upsampling_matrix(cells, size).double().numpy()
    expected = resize(grid, (size, size), order=1, mode="reflect", anti_aliasing=False)
    assert np.abs(weights @ grid @ weights.T - expected).max() < 1e-6


def test_rise_masks_weigh_border_pixels_like_the_rest():
    # Torch's bilinear (edge held constant) gave E[m^2] 0.40 on the border columns against 0.36 inside.
    from cce_bench.explainers.rise import rise_masks
    masks = rise_masks(2000, (224, 224), grid=7, keep=0.5, seed=0)[:, 0]
    second_moment = (masks ** 2).mean(0)
    assert abs(float(masks.mean()) - 0.5) < 0.01
    assert abs(float(second_moment[:, :8].mean() - second_moment[:, 96:128].mean())) < 0.015

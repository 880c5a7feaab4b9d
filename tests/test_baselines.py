"""The nine comparison methods against independent computations on a tiny model."""
import re

import pytest
import torch
import torch.nn.functional as F

from cce_bench import UserError, create_explainer
from cce_bench.explainers import postprocess
from cce_bench.explainers.rise import rise_masks
from helpers import TinyNet

LAYER = {"target_layer": "conv"}
FAST = {
    "gbp": {},
    "ig": {"steps": 8},
    "rise": {"N": 64},
    "gradcam_pp": LAYER,
    "scorecam": LAYER,
    "fullgrad": {},
    "contrastive_gradcam": LAYER,
    "appb": {"layers": ["conv"], "steps": 10},
    "cce": {"M": 2, "steps": 5, "target_layer": "conv"},
}


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(3, 3, 16, 12), torch.tensor([0, 3, 1])  # non-square on purpose


def conv_activations(net, images):
    return net.conv(images)  # the output of the target layer "conv" (TinyNet applies relu after it)


def test_scorecam_weights_are_target_probabilities_of_masked_inputs(tiny_net, batch):
    images, targets = batch
    maps = create_explainer("scorecam", tiny_net, **LAYER, batch_size=4).attribute(images, targets)
    for b in range(3):
        acts = conv_activations(tiny_net, images[b:b + 1])[0].detach()
        reference = torch.zeros(16, 12)
        for k in range(acts.shape[0]):
            up = F.interpolate(acts[k][None, None], size=(16, 12), mode="bilinear", align_corners=False)[0, 0]
            if up.max() == up.min():
                continue
            masked = images[b:b + 1] * ((up - up.min()) / (up.max() - up.min()))
            with torch.no_grad():
                weight = torch.softmax(tiny_net(masked), 1)[0, targets[b]]
            reference += weight * up
        torch.testing.assert_close(maps[b], postprocess(reference[None], (16, 12))[0], atol=1e-5, rtol=0)


def test_contrastive_gradcam_weights_are_mean_gradients_of_ce_toward_q(tiny_net, batch):
    images, targets = batch
    maps = create_explainer("contrastive_gradcam", tiny_net, **LAYER).attribute(images, targets)
    for b in range(3):
        x = images[b:b + 1]
        acts = conv_activations(tiny_net, x)
        logits = tiny_net.fc(F.adaptive_avg_pool2d(torch.relu(acts), 2).flatten(1))
        q = logits[0].clone().detach()
        q[targets[b]] = -float("inf")
        q[logits[0].argmax()] = -float("inf")
        q = q.argmax().view(1)  # the most likely class other than the target and the top-1
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, q), acts)
        reference = torch.relu((grad.mean((2, 3), keepdim=True) * acts).sum(1))[0].detach()
        torch.testing.assert_close(maps[b], postprocess(reference[None], (16, 12))[0], atol=1e-5, rtol=0)


def test_rise_is_the_probability_weighted_mean_of_its_masks(tiny_net, batch):
    images, targets = batch
    maps = create_explainer("rise", tiny_net, N=40, seed=3, batch_size=7).attribute(images, targets)
    masks = rise_masks(40, (16, 12), grid=7, keep=0.5, seed=3)
    assert masks.shape == (40, 1, 16, 12) and 0 <= masks.min() and masks.max() <= 1
    for b in range(3):
        with torch.no_grad():
            p = torch.softmax(tiny_net(images[b:b + 1] * masks), 1)[:, targets[b]]
        reference = (p.view(-1, 1, 1) * masks[:, 0]).sum(0) / (40 * 0.5)
        torch.testing.assert_close(maps[b], postprocess(reference[None], (16, 12))[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(FAST))
def test_batched_equals_one_image_at_a_time(tiny_net, batch, name):
    # float64: optimising methods (APPB, CCE) amplify float32 rounding that differs between batch sizes
    images, targets = batch[0].double(), batch[1]
    explainer = create_explainer(name, tiny_net.double(), **FAST[name])
    together = explainer.attribute(images, targets)
    assert together.shape == (3, 16, 12)
    alone = torch.cat([explainer.attribute(images[b:b + 1], targets[b:b + 1]) for b in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    assert (together.flatten(1).amax(1) > 0).all(), "one map per image, none silently empty"


@pytest.mark.parametrize("name", list(FAST))
def test_maps_change_when_the_weights_are_randomised(batch, name):
    """The model-parameter randomisation test of Adebayo et al. (2018)."""
    images, targets = batch
    trained, randomised = TinyNet(seed=0), TinyNet(seed=1)
    a = create_explainer(name, trained, **FAST[name]).attribute(images, targets)
    b = create_explainer(name, randomised, **FAST[name]).attribute(images, targets)
    assert (a - b).abs().mean() > 1e-3


@pytest.mark.parametrize("name", ["gradcam_pp", "fullgrad", "gbp", "ig"])
def test_library_methods_follow_per_image_targets(tiny_net, batch, name):
    images, _ = batch
    explainer = create_explainer(name, tiny_net, **FAST[name])
    mixed = explainer.attribute(images, torch.tensor([0, 1, 2]))
    for b, t in enumerate([0, 1, 2]):
        alone = explainer.attribute(images[b:b + 1], torch.tensor([t]))
        torch.testing.assert_close(mixed[b], alone[0], atol=2e-4, rtol=0)
    # a different target for the same image gives a different map (the targets are not all the first one)
    other = explainer.attribute(images, torch.tensor([0, 0, 0]))
    assert (mixed[1:] - other[1:]).abs().mean() > 1e-4


def test_appb_perturbation_moves_the_target_margin_to_v(tiny_net, batch):
    images, targets = batch
    explainer = create_explainer("appb", tiny_net, layers=["conv"], steps=60, lr=0.05, gamma_p=1.0)
    perturbed = explainer.perturb(images, targets)
    with torch.no_grad():
        before, after = tiny_net(images), tiny_net(perturbed)

    def margin(z):
        others = z.scatter(1, targets.view(-1, 1), float("-inf")).amax(1)
        return z.gather(1, targets.view(-1, 1))[:, 0] - others

    # the squared term pulls z_t - max_{j != t} z_j toward v = -2 from either side
    assert ((margin(after) + 2).abs() < (margin(before) + 2).abs()).all()


def test_appb_blur_sigma_zero_is_the_perturbations_rms_over_channels_unblurred(tiny_net, batch, monkeypatch):
    images, targets = batch
    explainer = create_explainer("appb", tiny_net, layers=["conv"], steps=1, blur_sigma=0)
    step = torch.zeros_like(images)
    step[:, 0, 2, 3], step[:, 1, 2, 3], step[:, 2, 5, 5] = 3.0, 4.0, 6.0
    monkeypatch.setattr(explainer, "perturb", lambda x, t: x + step)
    expected = torch.zeros(images.shape[0], *images.shape[2:])
    expected[:, 2, 3], expected[:, 5, 5] = (25 / 3) ** 0.5, (36 / 3) ** 0.5  # sqrt(mean over the 3 channels)
    maps = explainer.attribute(images, targets)  # scaled to a maximum of 1, as every method's
    torch.testing.assert_close(maps, expected / expected.amax(), atol=1e-5, rtol=0)


def test_calm_without_checkpoint_says_how_to_make_one(tiny_net):
    with pytest.raises(UserError, match="cce-bench train-calm"):
        create_explainer("calm", tiny_net)


def test_calm_em_loss_by_hand():
    from cce_bench.explainers.calm import calm_em_loss

    # one image, 2 classes, 2 positions: log p(y=1, z) = log [0.3, 0.1]
    joint = torch.log(torch.tensor([[[[0.4, 0.2]], [[0.3, 0.1]]]]))
    posterior = torch.tensor([0.75, 0.25])
    expected = -(posterior * torch.log(torch.tensor([0.3, 0.1]))).sum()
    torch.testing.assert_close(calm_em_loss(joint, torch.tensor([1])), expected)


@pytest.mark.parametrize("typed,meant", [("GradCAM", "gradcam_pp"), ("GCAM+", "gradcam_pp"), ("CCE", "cce"),
                                         ("SCAM", "scorecam"), ("score_cam", "scorecam")])
def test_a_near_miss_names_the_one_spelling(tiny_net, typed, meant):
    # one name per method: the paper's label, another case or a typo is refused with the name to use
    with pytest.raises(
        UserError, match=rf"unknown method '{re.escape(typed)}' \(did you mean '{meant}'\?\); known: appb, calm, cce,"
    ):
        create_explainer(typed, tiny_net)

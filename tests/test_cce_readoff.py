"""CCE's read-offs checked by value: on a model whose layer output and logits are known in closed form
(a strided convolution, then logits quadratic in its output), the layer read-offs against a hand
computation, layer_path's completeness, and batched == one pair at a time for every read-off."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cce_bench import UserError
from cce_bench.explainers import CCE
from cce_bench.method_knobs.cce import READOFFS

IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # pixels are the model's input


class QuadraticHead(nn.Module):
    """A = conv(x) (2 x 2 kernel, stride 2), z_c = sum_khw u_ck A_khw^2 + v_ck A_khw: dz_c/dA = 2 u_ck A + v_ck,
    linear in A, so the midpoint rule of any K integrates it exactly."""

    def __init__(self, classes=4, channels=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.features = nn.Conv2d(3, channels, 2, stride=2, bias=False).double()
        with torch.no_grad():
            self.features.weight.copy_(torch.randn(self.features.weight.shape, generator=g, dtype=torch.float64))
        self.u = nn.Parameter(
            0.3 * torch.randn(classes, channels, generator=g, dtype=torch.float64), requires_grad=False
        )
        self.v = nn.Parameter(torch.randn(classes, channels, generator=g, dtype=torch.float64), requires_grad=False)
        self.features.weight.requires_grad_(False)

    def forward(self, x):
        a = self.features(x)
        return torch.einsum("bkhw,ck->bc", a ** 2, self.u) + torch.einsum("bkhw,ck->bc", a, self.v)


def by_hand(net, x):
    return F.conv2d(x, net.features.weight, stride=2)  # A, computed without the model


def upsampled_normalised(s, size):
    up = F.interpolate(s[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    peak = up.amax(dim=(-2, -1), keepdim=True)
    return torch.where(peak > 0, up / peak, torch.zeros_like(up))


@pytest.fixture
def pair():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    delta = 0.1 * torch.randn(2, 3, 6, 6, dtype=torch.float64)
    return x, delta, torch.tensor([0, 1]), torch.tensor([2, 3])


def test_layer_contrast_by_hand(pair):
    net = QuadraticHead()
    x, delta, p, q = pair
    sup, pro = CCE(net, readoff="layer_contrast", target_layer="features", **IDENTITY).pair_maps(x, delta, p, q)
    a, a_cf = by_hand(net, x), by_hand(net, x + delta)
    # Grad-CAM's weights: the spatial mean of dz/dA = 2 u A + v, of p at x and of q at x'
    w_p = (2 * net.u[p][:, :, None, None] * a + net.v[p][:, :, None, None]).mean((2, 3), keepdim=True)
    w_q = (2 * net.u[q][:, :, None, None] * a_cf + net.v[q][:, :, None, None]).mean((2, 3), keepdim=True)
    expected_sup = torch.relu((w_p * (a - a_cf)).sum(1))
    expected_pro = torch.relu((w_q * (a_cf - a)).sum(1))
    assert expected_sup.amax() > 0 and expected_pro.amax() > 0
    torch.testing.assert_close(sup, upsampled_normalised(expected_sup, (6, 6)))
    torch.testing.assert_close(pro, upsampled_normalised(expected_pro, (6, 6)))


@pytest.mark.parametrize("K", [1, 4])
def test_layer_path_by_hand_and_complete(pair, K):
    net = QuadraticHead()
    x, delta, p, q = pair
    explainer = CCE(net, readoff="layer_path", target_layer="features", K=K, **IDENTITY)
    sup, pro = explainer.pair_maps(x, delta, p, q)
    a, a_cf = by_hand(net, x), by_hand(net, x + delta)
    u_p, v_p = net.u[p][:, :, None, None], net.v[p][:, :, None, None]
    u_q, v_q = net.u[q][:, :, None, None], net.v[q][:, :, None, None]
    # integrated gradients of a quadratic, per value: (a - a') (u (a + a') + v) = u (a^2 - a'^2) + v (a - a')
    phi_p = u_p * (a ** 2 - a_cf ** 2) + v_p * (a - a_cf)
    phi_q = u_q * (a_cf ** 2 - a ** 2) + v_q * (a_cf - a)
    torch.testing.assert_close(sup, upsampled_normalised(torch.relu(phi_p.sum(1)), (6, 6)))
    torch.testing.assert_close(pro, upsampled_normalised(torch.relu(phi_q.sum(1)), (6, 6)))
    # completeness: the unrectified attributions sum to z_p(x) - z_p(x') (and z_q(x') - z_q(x))
    change = explainer.layer_output(x) - explainer.layer_output(x + delta)
    g_p, g_q = explainer.layer_path_gradients(x, explainer.layer_output(x + delta), change, [p, q])
    z, z_cf = net(x), net(x + delta)
    torch.testing.assert_close((change * g_p).sum((1, 2, 3)), (z - z_cf).gather(1, p[:, None])[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        (-change * g_q).sum((1, 2, 3)), (z_cf - z).gather(1, q[:, None])[:, 0], atol=1e-5, rtol=0
    )


def test_layer_path_is_complete_to_1e5_on_a_nonlinear_head_with_enough_points():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 5)).double().eval()
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    delta = 0.2 * torch.randn(3, 3, 8, 8, dtype=torch.float64)
    p = torch.tensor([0, 1, 2])
    explainer = CCE(net, readoff="layer_path", target_layer="1", K=256, **IDENTITY)
    start, end = explainer.layer_output(x + delta), explainer.layer_output(x)
    (g,) = explainer.layer_path_gradients(x, start, end - start, [p])
    expected = (net(x) - net(x + delta)).gather(1, p[:, None])[:, 0]
    torch.testing.assert_close(((end - start) * g).sum((1, 2, 3)), expected, atol=1e-5, rtol=0)


def test_magnitude_is_the_blurred_size_of_delta_for_both_maps(pair):
    net = QuadraticHead()
    x, delta, p, q = pair
    sup, pro = CCE(net, readoff="magnitude", blur_sigma=0, **IDENTITY).pair_maps(x, delta, p, q)
    s = delta.abs().sum(1)
    torch.testing.assert_close(sup, s / s.amax(dim=(-2, -1), keepdim=True))
    torch.testing.assert_close(pro, sup)


@pytest.mark.parametrize("readoff", list(READOFFS))
def test_every_readoff_batched_equals_one_pair_at_a_time_in_float64(tiny_net, readoff):
    net = tiny_net.double()
    torch.manual_seed(0)
    images = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    targets = net(images).argmax(1)
    explainer = CCE(net, M=3, steps=15, epsilon=32, batch_size=9, readoff=readoff, target_layer="conv", blur_sigma=0.1)
    batched = explainer.contrastive_maps(images, targets)
    single = explainer.with_knobs(M=1, batch_size=1)
    sup, pro = torch.zeros_like(batched.sup), torch.zeros_like(batched.pro)
    for i in range(3):
        for j in range(3):
            r = single.contrastive_maps(images[i:i + 1], targets[i:i + 1], contrast=batched.contrast[i:i + 1, j:j + 1])
            sup[i] += r.sup[0] / 3
            pro[i] += r.pro[0] / 3
    assert batched.sup.amax() > 0
    torch.testing.assert_close(sup, batched.sup, atol=1e-9, rtol=0)
    torch.testing.assert_close(pro, batched.pro, atol=1e-9, rtol=0)


def test_a_layer_readoff_on_a_model_without_a_target_layer_says_which_knob(tiny_net):
    # a bare network's layer is the one the rule finds: its only convolution; a network without a 4-D map
    # (an MLP on the flattened image) has none, and the message names the knobs
    assert CCE(tiny_net, readoff="layer_path")._layer_module is tiny_net.conv
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 224 * 224, 5))
    with pytest.raises(UserError, match="target_layer="):
        CCE(mlp, readoff="layer_path")
    with pytest.raises(UserError, match="no layer 'nope'"):
        CCE(tiny_net, readoff="layer_contrast", target_layer="nope")
    CCE(tiny_net, readoff="input")  # the input read-offs need no layer
    with pytest.raises(UserError, match="readoff"):
        CCE(tiny_net, readoff="gradients")

"""CCE checked by value: on models whose gradients are known in closed form, every stage of the map
(path-averaged gradients, M_sup and M_pro, the blur, the alpha mix) against a hand computation, the
kept-iterate rule against an independent replay of the optimisation, and gamma acting on delta."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cce_bench.explainers import CCE
from cce_bench.explainers.base import other_top_classes
from cce_bench.explainers.cce import ContrastiveMaps

# pixels are the model's input; these models have no layer, so the maps are read off the input
IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "readoff": "input"}


class Linear(nn.Module):
    """z = W . x + b on [B, 3, H, W]: the gradient of z_c is W_c everywhere."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)  # [C, 3, H, W]
        self.bias = nn.Parameter(bias, requires_grad=False)

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x, self.weight) + self.bias


class Cubic(nn.Module):
    """z_c = sum(a_c * x^3): the gradient of z_c is 3 a_c x^2."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = nn.Parameter(a, requires_grad=False)

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x ** 3, self.a)


def test_path_gradients_match_the_closed_form_average_along_the_path():
    torch.manual_seed(0)
    a = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    x = torch.rand(3, 3, 4, 5, dtype=torch.float64)
    delta = 0.2 * torch.randn(3, 3, 4, 5, dtype=torch.float64)
    for K in (1, 4, 7):
        explainer = CCE(Cubic(a), K=K, **IDENTITY)
        explainer.pixel_model.double()
        classes = torch.tensor([0, 1, 0])
        (g,) = explainer.path_gradients(x, delta, [classes])
        # mean_k 3 a (x + t_k delta)^2 with t_k = (k - 1/2) / K: mean t = 1/2, mean t^2 = (4K^2 - 1) / (12 K^2)
        mean_t2 = (4 * K * K - 1) / (12 * K * K)
        expected = 3 * a[classes] * (x ** 2 + x * delta + mean_t2 * delta ** 2)
        torch.testing.assert_close(g, expected)


def test_sup_and_pro_maps_of_a_linear_model_by_hand():
    weight = torch.zeros(3, 3, 2, 3, dtype=torch.float64)
    weight[0, 0] = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, 1.0]])   # class p = 0, channel 0 only
    weight[1, 1] = torch.tensor([[0.0, 1.0, 3.0], [-1.0, 2.0, 0.0]])   # class q = 1, channel 1 only
    explainer = CCE(Linear(weight, torch.zeros(3, dtype=torch.float64)), blur_sigma=0, **IDENTITY)
    explainer.pixel_model.double()
    x = torch.full((1, 3, 2, 3), 0.5, dtype=torch.float64)
    delta = torch.zeros(1, 3, 2, 3, dtype=torch.float64)
    delta[0, 0] = torch.tensor([[0.1, 0.1, -0.1], [-0.2, 0.3, 0.1]])
    delta[0, 1] = torch.tensor([[0.2, -0.1, 0.1], [0.1, 0.1, 0.0]])
    sup, pro = explainer.pair_maps(x, delta, torch.tensor([0]), torch.tensor([1]))
    # S_sup = relu(-sum_c delta * g_p) = relu(-delta_0 * W_p0): [[-0.1, 0.2, 0], [0.1, 0, -0.1]] -> relu, / max
    s_sup = np.maximum(-np.array([[0.1, -0.2, 0.0], [-0.1, 0.0, 0.1]]), 0)
    # S_pro = relu(delta_1 * W_q1) = [[0, -0.1, 0.3], [-0.1, 0.2, 0]]
    s_pro = np.maximum(np.array([[0.0, -0.1, 0.3], [-0.1, 0.2, 0.0]]), 0)
    np.testing.assert_allclose(sup[0].numpy(), s_sup / s_sup.max())
    np.testing.assert_allclose(pro[0].numpy(), s_pro / s_pro.max())


def test_blur_of_an_impulse_is_the_gaussian_of_sigma_blur_sigma_times_h():
    net = Linear(torch.zeros(1, 3, 1, 1), torch.zeros(1))
    explainer = CCE(
        net, blur_sigma=0.02, **IDENTITY
    )  # sigma = 0.02 * 100 = 2 pixels (the search's blur, not the default)
    impulse = torch.zeros(1, 100, 100)
    impulse[0, 50, 50] = 5.0
    blurred = explainer.smooth(impulse)[0]
    i, j = np.mgrid[0:100, 0:100]
    expected = np.exp(-((i - 50) ** 2 + (j - 50) ** 2) / (2 * 2.0 ** 2))
    expected[np.abs(i - 50) > 6] = 0  # the kernel is 2 * ceil(3 sigma) + 1 = 13 wide
    expected[np.abs(j - 50) > 6] = 0
    np.testing.assert_allclose(blurred.numpy(), expected, atol=1e-6)


def test_the_alpha_mix_by_hand():
    sup = torch.tensor([[[1.0, 0.5], [0.0, 0.2]]])
    pro = torch.tensor([[[0.0, 1.0], [0.4, 0.2]]])
    maps = ContrastiveMaps(sup, pro, *[None] * 4)
    # 0.7 * sup + 0.3 * pro = [[0.7, 0.65], [0.12, 0.2]], max 0.7
    np.testing.assert_allclose(maps.unified(0.7)[0].numpy(), np.array([[0.7, 0.65], [0.12, 0.2]]) / 0.7, rtol=1e-6)
    np.testing.assert_allclose(maps.unified(0.0)[0].numpy(), pro[0].numpy())


def test_m_sup_and_m_pro_are_means_over_the_m_counterfactuals():
    torch.manual_seed(1)
    net = Linear(torch.randn(4, 3, 6, 6, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    explainer = CCE(net, M=3, steps=5, epsilon=64, blur_sigma=0, batch_size=3, **IDENTITY)
    explainer.pixel_model.double()
    images = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    target = net(images).argmax(1)
    maps = explainer.contrastive_maps(images, target)
    delta = maps.counterfactual[0] - images  # [M, 3, H, W]
    g_p = net.weight[target.repeat(3)]
    g_q = net.weight[maps.contrast[0]]

    def max_normalised(s):
        peak = s.amax(dim=(-2, -1), keepdim=True)
        return torch.where(peak > 0, s / peak, torch.zeros_like(s))

    expected_sup = max_normalised(torch.relu(-(delta * g_p).sum(1))).mean(0)
    expected_pro = max_normalised(torch.relu((delta * g_q).sum(1))).mean(0)
    torch.testing.assert_close(maps.sup[0], expected_sup)
    torch.testing.assert_close(maps.pro[0], expected_pro)


class Recorder(nn.Module):
    """Records every input the optimisation evaluates."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.net(x)


# the last iterate hovers at the boundary where the distance term is strong; with a weak one it stays valid
@pytest.mark.parametrize("keep, gamma", [("closest_valid", 2.0), ("first_valid", 2.0), ("last", 2.0), ("last", 0.05)])
def test_the_kept_counterfactual_is_the_iterate_the_keep_rule_names(keep, gamma):
    torch.manual_seed(2)
    net = Linear(torch.randn(3, 3, 5, 5, dtype=torch.float64), torch.tensor([0.0, -0.3, -0.6], dtype=torch.float64))
    explainer = CCE(net, steps=40, epsilon=40, gamma=gamma, tv_weight=0.5, keep=keep, **IDENTITY)
    explainer.pixel_model.double()
    recorder = Recorder(explainer.pixel_model)
    explainer.pixel_model = recorder
    x = torch.rand(4, 3, 5, 5, dtype=torch.float64)
    clean = net(x).argmax(1)
    q = (clean + 1) % 3
    kept, valid, predicted = explainer.counterfactuals(x, q)
    iterates = torch.stack(recorder.inputs) - x  # [steps + 1, P, 3, H, W]
    assert len(iterates) == 41
    weights = explainer._edge_weights(x)
    for pair in range(4):
        candidates = [(float(explainer.distance(d[pair:pair + 1], tuple(w[pair:pair + 1] for w in weights))), t)
                      for t, d in enumerate(iterates)
                      if int(net(x[pair:pair + 1] + d[pair:pair + 1]).argmax()) == int(q[pair])]
        if keep == "last":  # valid only if the last iterate is; kept either way
            last_valid = bool(candidates) and candidates[-1][1] == len(iterates) - 1
            assert bool(valid[pair]) == last_valid
            torch.testing.assert_close(kept[pair], iterates[-1, pair])
            continue
        assert bool(valid[pair]) == bool(candidates)
        if candidates:
            best = min(candidates)[1] if keep == "closest_valid" else candidates[0][1]
            torch.testing.assert_close(kept[pair], iterates[best, pair])
            assert int(predicted[pair]) == int(q[pair])
        else:
            torch.testing.assert_close(kept[pair], iterates[-1, pair])
    assert valid.any() or (keep == "last" and gamma > 1)


def test_raising_gamma_shrinks_delta_and_keeps_it_valid():
    torch.manual_seed(3)
    net = Linear(
        0.05 * torch.randn(3, 3, 16, 16, dtype=torch.float64), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    )
    x = torch.rand(6, 3, 16, 16, dtype=torch.float64)
    q = torch.tensor([1, 2, 1, 2, 1, 2])
    sizes, validity = [], []
    for gamma in (5, 20, 40):
        explainer = CCE(net, gamma=gamma, steps=50, epsilon=16, **IDENTITY)
        explainer.pixel_model.double()
        kept, valid, _ = explainer.counterfactuals(x, q)
        sizes.append(float(kept.abs().mean() * 255))
        validity.append(float(valid.double().mean()))
    assert sizes[0] > sizes[1] > sizes[2] > 0, sizes
    assert validity[-1] > 0, validity


def test_a_contrast_class_always_needs_a_change():
    # the explained class 3 is not the top-1 (class 1 is): class 1 is left out of the contrast classes
    logits = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3]])
    assert other_top_classes(logits, torch.tensor([3]), 2).tolist() == [[2, 4]]
    assert other_top_classes(logits, torch.tensor([1]), 2).tolist() == [[3, 2]]


def test_a_counterfactual_toward_the_class_already_predicted_is_not_valid():
    torch.manual_seed(4)
    net = Linear(torch.randn(3, 3, 5, 5, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    explainer = CCE(net, steps=10, **IDENTITY)
    explainer.pixel_model.double()
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    clean = net(x).argmax(1)
    kept, valid, _ = explainer.counterfactuals(x, clean)
    assert not valid.any()
    assert float(kept.abs().max()) == 0.0  # nothing to change: delta stays 0 and the maps are empty


def test_pointing_game_targets_that_are_not_the_top1_get_real_counterfactuals():
    torch.manual_seed(5)
    net = Linear(torch.randn(6, 3, 8, 8, dtype=torch.float64), torch.zeros(6, dtype=torch.float64))
    explainer = CCE(net, M=3, steps=30, epsilon=64, gamma=0.1, blur_sigma=0, **IDENTITY)
    explainer.pixel_model.double()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    second = net(x).argsort(1, descending=True)[:, 1]  # explain the second-ranked class
    maps = explainer.contrastive_maps(x, second)
    assert not (maps.contrast == net(x).argmax(1, keepdim=True)).any()
    assert maps.valid.all()
    assert (maps.sup.flatten(1).amax(1) > 0).all() and (maps.pro.flatten(1).amax(1) > 0).all()
    assert math.isfinite(float(maps.unified(0.7).sum()))


def test_the_cross_entropy_validity_loss_by_hand():
    explainer = CCE(Linear(torch.zeros(3, 3, 1, 1), torch.zeros(3)), validity="ce", **IDENTITY)
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 4.0, 1.0]], dtype=torch.float64)
    q = torch.tensor([2, 0])
    # -log(e^z_q / sum e^z)
    expected = [-(2.0 - math.log(math.exp(3) + math.exp(1) + math.exp(2))),
                -(0.0 - math.log(1 + math.exp(4) + math.exp(1)))]
    torch.testing.assert_close(explainer.validity_loss(logits, q), torch.tensor(expected, dtype=torch.float64))


def test_a_signed_step_moves_every_value_by_the_pgd_step_against_the_gradient_sign():
    # Linear model, gamma = 0, hinge active: the gradient of the loss is W_j* - W_q (j* the best other class)
    torch.manual_seed(6)
    weight = torch.randn(3, 3, 4, 4, dtype=torch.float64)
    net = Linear(weight, torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64))  # class 0 leads by far
    explainer = CCE(net, steps=4, epsilon=2, gamma=0, step_rule="signed", **IDENTITY)
    recorder = Recorder(explainer.pixel_model)
    explainer.pixel_model = recorder
    x = 0.3 + 0.4 * torch.rand(1, 3, 4, 4, dtype=torch.float64)  # no pixel bound is reached
    explainer.counterfactuals(x, torch.tensor([1]))
    step = 2.5 * (2 / 255) / 4
    assert explainer.step_size == step
    first = recorder.inputs[1] - x
    torch.testing.assert_close(first, -step * torch.sign(weight[0] - weight[1])[None])
    second = recorder.inputs[2] - x  # two steps of 0.625 bound each, projected onto the bound
    torch.testing.assert_close(second, (-2 * step * torch.sign(weight[0] - weight[1])[None]).clamp(-2 / 255, 2 / 255))


def test_a_grid_perturbation_is_the_bilinear_upsampling_of_its_cells():
    torch.manual_seed(7)
    net = Linear(torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    x = 0.3 + 0.4 * torch.rand(2, 3, 8, 8, dtype=torch.float64)
    q = (net(x).argmax(1) + 1) % 3
    # one cell per side: delta is one value per channel, whatever the pixel
    one, _, _ = CCE(net, grid=1, steps=10, epsilon=16, **IDENTITY).counterfactuals(x, q)
    assert float(one.abs().amax()) > 0
    torch.testing.assert_close(one, one[..., :1, :1].expand_as(one))
    # 2 x 2 cells: delta is their bilinear upsampling (align_corners=False: the corner pixels are the cells)
    two, _, _ = CCE(net, grid=2, steps=10, epsilon=16, **IDENTITY).counterfactuals(x, q)
    cells = two[..., [0, 7], :][..., [0, 7]]
    assert not torch.allclose(cells[..., 0, 0], cells[..., 1, 1])
    torch.testing.assert_close(F.interpolate(cells, size=(8, 8), mode="bilinear", align_corners=False), two)
    assert float(two.abs().amax()) <= 16 / 255 + 1e-12
    # as many cells as pixels: the same search as one value per pixel
    full, valid_full, _ = CCE(net, steps=10, epsilon=16, **IDENTITY).counterfactuals(x, q)
    same, valid_same, _ = CCE(net, grid=8, steps=10, epsilon=16, **IDENTITY).counterfactuals(x, q)
    torch.testing.assert_close(same, full)
    assert torch.equal(valid_full, valid_same)


def test_the_ce_loss_keeps_growing_delta_where_the_hinge_stops():
    torch.manual_seed(8)
    net = Linear(
        0.05 * torch.randn(3, 3, 16, 16, dtype=torch.float64), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    )
    x = 0.3 + 0.4 * torch.rand(4, 3, 16, 16, dtype=torch.float64)
    q = torch.tensor([1, 2, 1, 2])
    sizes, confidence = {}, {}
    for validity in ("hinge", "ce"):
        kept, valid, _ = CCE(
            net, validity=validity, keep="last", gamma=0.01, steps=60, epsilon=16, **IDENTITY
        ).counterfactuals(x, q)
        assert valid.all()
        sizes[validity] = float(kept.abs().mean())
        confidence[validity] = float(net(x + kept).softmax(1).gather(1, q[:, None]).mean())
    # the hinge stops at the boundary (q barely leads: p(q) about 0.5); cross-entropy goes on toward p(q) = 1
    assert sizes["ce"] > 1.5 * sizes["hinge"], sizes
    assert confidence["hinge"] < 0.55 < 0.7 < confidence["ce"], confidence

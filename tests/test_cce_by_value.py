"""CCE checked by value: on models whose gradients are known in closed form, every stage of the map
(path-averaged gradients, M_sup and M_pro, the blur, the alpha mix) against a hand computation, the
kept-iterate rule against an independent replay of the optimisation, and gamma acting on delta."""
import math

import numpy as np
import torch
from torch import nn

from cce_bench.explainers import CCE
from cce_bench.explainers.base import other_top_classes
from cce_bench.explainers.cce import ContrastiveMaps

IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # pixels are the model's input


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
    explainer = CCE(net, blur_sigma=0.02, **IDENTITY)  # sigma = 0.02 * 100 = 2 pixels
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


def test_the_kept_counterfactual_is_the_valid_iterate_with_the_smallest_distance():
    torch.manual_seed(2)
    net = Linear(torch.randn(3, 3, 5, 5, dtype=torch.float64), torch.tensor([0.0, -0.3, -0.6], dtype=torch.float64))
    explainer = CCE(net, steps=40, epsilon=40, gamma=2, tv_weight=0.5, **IDENTITY)
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
        assert bool(valid[pair]) == bool(candidates)
        if candidates:
            best = min(candidates)[1]
            torch.testing.assert_close(kept[pair], iterates[best, pair])
            assert int(predicted[pair]) == int(q[pair])
        else:
            torch.testing.assert_close(kept[pair], iterates[-1, pair])
    assert valid.any()


def test_raising_gamma_shrinks_delta_and_keeps_it_valid():
    torch.manual_seed(3)
    net = Linear(0.05 * torch.randn(3, 3, 16, 16, dtype=torch.float64), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
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

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from cce_bench import UserError, insertion_deletion
from cce_bench.metrics.insertion_deletion import auc, blur


def reference_curves(model, image, saliency, target, step, blur_size=11, blur_sigma=5.0):
    """A direct per-step loop, one image at a time, written independently of the suite."""
    c, h, w = image.shape
    img = image.numpy().astype(np.float64)
    impulse = np.zeros((blur_size, blur_size))
    impulse[blur_size // 2, blur_size // 2] = 1
    kernel = ndimage.gaussian_filter(impulse, blur_sigma)  # as the RISE code builds it
    blurred = np.stack([ndimage.correlate(img[ch], kernel, mode="constant", cval=0.0) for ch in range(c)])
    order = np.argsort(-saliency.numpy().reshape(-1), kind="stable")  # ties keep raster order
    n = math.ceil(h * w / step)
    curves = {}
    for name, start, finish in (("del", img, np.zeros_like(img)), ("ins", blurred, img)):
        current = start.copy().reshape(c, -1)
        points = []
        for k in range(n + 1):
            x = torch.tensor(current.reshape(1, c, h, w), dtype=torch.float32)
            with torch.no_grad():
                points.append(torch.softmax(model(x), 1)[0, target].item())
            idx = order[k * step:(k + 1) * step]
            current[:, idx] = finish.reshape(c, -1)[:, idx]
        curves[name] = np.array(points)
    return curves


def test_auc_is_the_trapezoid_over_unit_interval():
    # Two intervals of width 1/2: (1 + 0.5) / 2 * 0.5 + (0.5 + 0) / 2 * 0.5 = 0.5
    assert auc(torch.tensor([1.0, 0.5, 0.0])).item() == pytest.approx(0.5)
    # Four of width 1/4 under 0, 1, 1, 1, 0: 0.125 + 0.25 + 0.25 + 0.125
    assert auc(torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0])).item() == pytest.approx(0.75)


@pytest.mark.parametrize("step", [7, 16])  # 7 does not divide 8 * 10 = 80 pixels
def test_curves_match_a_per_step_reference_loop(tiny_net, step):
    torch.manual_seed(0)
    images = torch.randn(3, 3, 8, 10)
    maps = torch.rand(3, 8, 10)
    maps[1] = torch.randint(0, 3, (8, 10)).float()  # many ties
    maps[2] = 0.0  # a flat map: raster order
    targets = torch.tensor([0, 3, 1])
    result = insertion_deletion(tiny_net, images, maps, targets, step=step, batch_size=5)
    n = math.ceil(80 / step)
    assert result.insertion_curve.shape == (3, n + 1)
    for i in range(3):
        ref = reference_curves(tiny_net, images[i], maps[i], int(targets[i]), step)
        np.testing.assert_allclose(result.deletion_curve[i].numpy(), ref["del"], atol=1e-5)
        np.testing.assert_allclose(result.insertion_curve[i].numpy(), ref["ins"], atol=1e-5)
        assert result.deletion_auc[i].item() == pytest.approx(np.trapezoid(ref["del"], dx=1 / n), abs=1e-5)
        assert result.insertion_auc[i].item() == pytest.approx(np.trapezoid(ref["ins"], dx=1 / n), abs=1e-5)


def test_batch_size_does_not_change_the_result(tiny_net):
    torch.manual_seed(1)
    images, maps = torch.randn(2, 3, 8, 8), torch.rand(2, 8, 8)
    a = insertion_deletion(tiny_net, images, maps, step=5, batch_size=3)
    b = insertion_deletion(tiny_net, images, maps, step=5, batch_size=64)
    torch.testing.assert_close(a.insertion_curve, b.insertion_curve)
    torch.testing.assert_close(a.deletion_curve, b.deletion_curve)


def test_default_target_is_the_top1_class(tiny_net):
    torch.manual_seed(2)
    images, maps = torch.randn(2, 3, 8, 8), torch.rand(2, 8, 8)
    top1 = tiny_net(images).argmax(1)
    a = insertion_deletion(tiny_net, images, maps, step=8)
    b = insertion_deletion(tiny_net, images, maps, targets=top1, step=8)
    torch.testing.assert_close(a.deletion_auc, b.deletion_auc)


def test_deletion_ends_on_the_mean_colour_and_insertion_on_the_image(tiny_net):
    torch.manual_seed(3)
    images, maps = torch.randn(1, 3, 8, 8), torch.rand(1, 8, 8)
    r = insertion_deletion(tiny_net, images, maps, targets=[2], step=10)
    with torch.no_grad():
        p_image = torch.softmax(tiny_net(images), 1)[0, 2].item()
        p_zero = torch.softmax(tiny_net(torch.zeros_like(images)), 1)[0, 2].item()
        p_blur = torch.softmax(tiny_net(blur(images)), 1)[0, 2].item()
    assert r.deletion_curve[0, 0].item() == pytest.approx(p_image, abs=1e-6)
    assert r.deletion_curve[0, -1].item() == pytest.approx(p_zero, abs=1e-6)
    assert r.insertion_curve[0, 0].item() == pytest.approx(p_blur, abs=1e-6)
    assert r.insertion_curve[0, -1].item() == pytest.approx(p_image, abs=1e-6)


def test_maps_at_another_resolution_are_resized(tiny_net):
    torch.manual_seed(4)
    images = torch.randn(1, 3, 8, 8)
    small = torch.rand(1, 4, 4)
    big = torch.nn.functional.interpolate(small[:, None], size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    a = insertion_deletion(tiny_net, images, small, step=4)
    b = insertion_deletion(tiny_net, images, big, step=4)
    torch.testing.assert_close(a.insertion_auc, b.insertion_auc)


@pytest.mark.parametrize("maps, message", [
    (torch.rand(3, 8, 8), "one map per image"),
    (torch.rand(2, 3, 8, 8), "one map per image"),
    (torch.full((2, 8, 8), float("nan")), "NaN"),
])
def test_bad_maps_are_refused_with_a_clear_message(tiny_net, maps, message):
    with pytest.raises(UserError, match=message):
        insertion_deletion(tiny_net, torch.randn(2, 3, 8, 8), maps)


def test_non_positive_step_is_refused(tiny_net):
    with pytest.raises(UserError, match="step"):
        insertion_deletion(tiny_net, torch.randn(1, 3, 8, 8), torch.rand(1, 8, 8), step=0)

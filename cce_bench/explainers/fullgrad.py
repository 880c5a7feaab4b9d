"""FullIG: FullGrad (Srinivas and Fleuret, NeurIPS 2019), as the authors' code computes the map.

The full-gradient decomposition of the target logit: the input-gradient x input, plus for every
convolution and BatchNorm the gradient at its output times its bias (for BatchNorm the effective bias
b - mean * w / sqrt(var + eps)); for a network of ReLUs (VGG-19, ResNet-50) the sum of all terms plus
the final layer's bias is the logit (completeness, tested). It does not hold for EfficientNet-Lite0, the
default model: ReLU6's ceiling at 6 acts as a hidden bias no term carries (measured on chelsea: logit 9.27,
terms plus the final bias 3.04), so there the map is the full-gradient recipe without its guarantee. The
map post-processes each term as a whole, per image (abs, subtract the minimum, divide by the maximum +
1e-6, over channels and positions together), resizes the bias terms bilinearly (align_corners=True) to the
input, sums over channels and adds everything up.

pytorch-grad-cam's `FullGrad` instead min-max normalises every channel of every term on its own, which
gives hundreds of weak channels the same peak: a different map.
"""
from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .base import Explainer, register
from .layers import capture_outputs, network


def bias_sites(net: nn.Module) -> list[tuple[nn.Module, torch.Tensor]]:
    """(module whose output carries the bias, bias vector) for every convolution with a bias and every
    BatchNorm. timm's BatchNormAct2d applies its activation inside: its linear output is that of `drop`."""
    sites: list[tuple[nn.Module, torch.Tensor]] = []
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and module.bias is not None:
            sites.append((module, module.bias.detach()))
        elif isinstance(module, nn.BatchNorm2d):
            mean, var = module.running_mean, module.running_var
            assert mean is not None and var is not None  # an eval-mode BatchNorm normalises by its running statistics
            bias = module.bias.detach() if module.bias is not None else torch.zeros_like(mean)
            weight = module.weight.detach() if module.weight is not None else torch.ones_like(mean)
            effective = bias - mean * weight / torch.sqrt(var + module.eps)
            site = cast(nn.Module, module.drop) if hasattr(module, "drop") and hasattr(module, "act") else module
            sites.append((site, effective))
    return sites


def normalise_term(term: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """abs, then per image: minus the minimum, divided by the maximum (+ eps), over C, H, W together."""
    term = term.abs()
    flat = term.flatten(1)
    term = term - flat.amin(1).view(-1, 1, 1, 1)
    return term / (term.flatten(1).amax(1).view(-1, 1, 1, 1) + eps)


@register
class FullGrad(Explainer):
    """FullGrad ("FullIG" in the paper), as the authors' code (idiap/fullgrad-saliency) computes the map:
    each term (input-gradient x input, gradient x bias of every conv and BatchNorm) post-processed as a
    whole per image (abs, min-max over all channels and positions), bias terms resized bilinearly with
    align_corners=True, channels summed, terms added. pytorch-grad-cam's FullGrad normalises every channel
    on its own instead (a different map).
    """

    label = "FullIG"
    cost = "gradient"

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        self.sites = bias_sites(network(model))

    def decompose(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """input-gradient x input [B, 3, H, W] and gradient x bias at each site [B, C, h, w]."""
        with torch.enable_grad(), capture_outputs([module for module, _ in self.sites]) as outputs:
            x = images.detach().requires_grad_(True)
            score = self.model(x).gather(1, targets.view(-1, 1)).sum()
            grads = torch.autograd.grad(score, [x, *outputs])
        bias_terms = [g * b.to(g.dtype).view(1, -1, *([1] * (g.dim() - 2))) for (_, b), g in zip(self.sites, grads[1:])]
        return grads[0] * x.detach(), bias_terms

    def _attribute_batch(self, images, targets):
        input_term, bias_terms = self.decompose(images, targets)
        size = images.shape[-2:]
        cam = normalise_term(input_term).sum(1)
        for term in bias_terms:
            if term.dim() == 4:
                # resizing is linear: summing the channels first gives the same map, C times cheaper
                summed = normalise_term(term).sum(1, keepdim=True)
                cam = cam + F.interpolate(summed, size=size, mode="bilinear", align_corners=True)[:, 0]
        return cam

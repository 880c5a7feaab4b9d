"""GCAM+: Grad-CAM++ (Chattopadhay et al., 2018), through pytorch-grad-cam."""
from __future__ import annotations

import torch
from pytorch_grad_cam import GradCAMPlusPlus as LibGradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from .base import Explainer, register
from .layers import resolve_layer


class GradCamLibrary(Explainer):
    """Calls a pytorch-grad-cam method with one target per image (fewer targets silently give zero maps)."""

    library_class = None
    needs = ("target_layer",)

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        self.layers = [resolve_layer(model, self.target_layer, f"method_knobs.{self.name}.target_layer=DOTTED.PATH")]

    def _attribute_batch(self, images, targets):
        return cam_maps(self.library_class, self.model, self.layers, images, targets)


def cam_maps(library_class, model, layers, images, targets, constructor: dict | None = None,
             call: dict | None = None) -> torch.Tensor:
    """A pytorch-grad-cam method's maps [B, H, W], one target per image (fewer targets silently give zero
    maps); `constructor` and `call` are the library's own further arguments."""
    # The suite's models have frozen weights: an input that requires grad gives the library its graph.
    inputs = images.detach().requires_grad_(True)
    # Under precision=bf16 the layer's output is bfloat16, which the library's NumPy step cannot take:
    # this hook, registered before the library's, hands it (and the gradient back) as float32.
    handles = [layer.register_forward_hook(as_float32) for layer in layers]
    try:
        with library_class(model=model, target_layers=layers, **(constructor or {})) as cam:
            maps = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(int(t)) for t in targets], **(call or {}))
    finally:
        for handle in handles:
            handle.remove()
    return torch.as_tensor(maps, device=images.device)


def as_float32(_module, _inputs, output):
    # Only half-precision outputs: a float64 model (the tests' exact comparisons) keeps its dtype.
    return output.float() if output.dtype in (torch.bfloat16, torch.float16) else None


@register
class GradCAMPP(GradCamLibrary):
    """GCAM+: Grad-CAM++ through pytorch-grad-cam, one target per image.
    """

    label = "GCAM+"
    cost = "gradient"
    library_class = LibGradCAMPlusPlus

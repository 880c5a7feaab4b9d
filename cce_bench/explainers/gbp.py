"""GBP: Guided Backpropagation (Springenberg et al., 2015) through captum."""
from __future__ import annotations

import warnings

from captum.attr import GuidedBackprop as CaptumGuidedBackprop

from .base import Explainer, register


@register
class GBP(Explainer):
    """Channels collapse by the maximum of absolute values (the rule of the Score-CAM comparison).

    captum overrides the backward of nn.ReLU modules only: ReLU6 (EfficientNet-Lite) passes plain gradients.
    """

    label = "GBP"
    cost = "gradient"

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        self.method = CaptumGuidedBackprop(model)

    def _attribute_batch(self, images, targets):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")  # captum's notice
            grads = self.method.attribute(images.detach().requires_grad_(True), target=targets)
        return grads.abs().amax(dim=1)

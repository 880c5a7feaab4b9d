"""IG: Integrated Gradients (Sundararajan et al., 2017) through captum."""
from __future__ import annotations

from typing import Any

import torch
from captum.attr import IntegratedGradients as CaptumIntegratedGradients

from ..tensors import to_normalised
from .base import Explainer, register


@register
class IG(Explainer):
    """Baseline: the black image, (0 - mean) / std in normalised space; map: sum of |attribution| over channels.
    """

    label = "IG"
    cost = "path"

    batch_sizes = {"cpu": 4, "cuda": 16}  # images per call; each takes `steps` inputs in chunks of internal_batch_size
    memory_knobs = ("internal_batch_size", "batch_size")
    # Knobs whose null the method resolves from the model when it is built (None: a model without them).
    mean: Any
    std: Any
    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        if self.mean is None:
            self.mean = getattr(model, "mean", None)
        if self.std is None:
            self.std = getattr(model, "std", None)
        self.method = CaptumIntegratedGradients(model)

    def baseline(self, images):
        if self.mean is None or self.std is None:
            return torch.zeros_like(images)
        return to_normalised(torch.zeros_like(images), self.mean, self.std)

    def _attribute_batch(self, images, targets):
        attributions = self.method.attribute(images, baselines=self.baseline(images), target=targets,
                                             n_steps=self.steps, internal_batch_size=self.internal_batch_size)
        return attributions.abs().sum(dim=1)

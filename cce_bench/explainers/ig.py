"""IG: Integrated Gradients (Sundararajan et al., 2017) through captum."""
from __future__ import annotations

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
    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        self.steps, self.internal_batch_size = int(self.steps), int(self.internal_batch_size)
        self.mean = self.mean if self.mean is not None else getattr(model, "mean", None)
        self.std = self.std if self.std is not None else getattr(model, "std", None)
        self.method = CaptumIntegratedGradients(model)

    def baseline(self, images):
        if self.mean is None or self.std is None:
            return torch.zeros_like(images)
        return to_normalised(torch.zeros_like(images), self.mean, self.std)

    def _attribute_batch(self, images, targets):
        attributions = self.method.attribute(images, baselines=self.baseline(images), target=targets,
                                             n_steps=self.steps, internal_batch_size=self.internal_batch_size)
        return attributions.abs().sum(dim=1)

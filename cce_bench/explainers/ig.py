"""IG: Integrated Gradients (Sundararajan et al., 2017) through captum."""
from __future__ import annotations

import torch
from captum.attr import IntegratedGradients as CaptumIntegratedGradients

from ..tensors import to_normalised
from ..schema import Rule, check_knobs
from .base import Explainer, register


@register
class IG(Explainer):
    """Baseline: the black image, (0 - mean) / std in normalised space; map: sum of |attribution| over channels.

    Args:
        steps: points of the path from the baseline to the image.
        internal_batch_size: path inputs per forward/backward inside captum.
        batch_size: images per captum call; None: 4 on a CPU, 16 on a GPU.
        mean, std: the normalisation the model expects; None: the model's own (a zero baseline without one).
    """

    label = "IG"
    cost = "path"

    batch_sizes = {"cpu": 4, "cuda": 16}  # images per call; each takes `steps` inputs in chunks of internal_batch_size
    memory_knobs = ("internal_batch_size", "batch_size")
    knob_ranges = {**Explainer.knob_ranges, "steps": Rule("whole", 1, 100_000),
                   "internal_batch_size": Rule("whole", 1, 100_000)}

    def __init__(self, model, steps: int = 50, internal_batch_size: int = 16, batch_size: int | None = None, mean=None, std=None):
        super().__init__(model, batch_size)
        check_knobs(type(self), locals())
        self.steps, self.internal_batch_size = int(steps), int(internal_batch_size)
        self.mean = mean if mean is not None else getattr(model, "mean", None)
        self.std = std if std is not None else getattr(model, "std", None)
        self.method = CaptumIntegratedGradients(model)

    def baseline(self, images):
        if self.mean is None or self.std is None:
            return torch.zeros_like(images)
        return to_normalised(torch.zeros_like(images), self.mean, self.std)

    def _attribute_batch(self, images, targets):
        attributions = self.method.attribute(images, baselines=self.baseline(images), target=targets,
                                             n_steps=self.steps, internal_batch_size=self.internal_batch_size)
        return attributions.abs().sum(dim=1)

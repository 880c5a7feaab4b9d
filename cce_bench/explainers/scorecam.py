"""SCAM: Score-CAM (Wang et al., CVPR-W 2020) with the official weighting.

Each activation channel of the target layer, upsampled to the input and min-max normalised, masks the
input; its weight is the softmax probability of the target class on that masked input. (Libraries
apply a softmax over channels to these scores instead: a different method.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Explainer, register
from .layers import capture_outputs, resolve_layer


@register
class ScoreCAM(Explainer):
    """Score-CAM with the official weighting (softmax probability of the target on each masked input).
    """

    label = "SCAM"
    cost = "masks"
    needs = ("target_layer",)

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        self.layer = resolve_layer(model, self.target_layer, f"method_knobs.{self.name}.target_layer=DOTTED.PATH")

    def images_per_chunk(self) -> int:
        return 1

    @torch.inference_mode()
    def _attribute_batch(self, images, targets):
        with capture_outputs([self.layer]) as outputs:
            self.model(images)
        activations = outputs[0].float()
        size = images.shape[-2:]
        saliency = torch.zeros(images.shape[0], *size, device=images.device)
        for b in range(images.shape[0]):
            channels = activations[b]
            flat = channels.flatten(1)
            varying = (flat.amax(1) > flat.amin(1)).nonzero()[:, 0]  # constant channels are skipped
            for first in range(0, len(varying), self.batch_size):
                idx = varying[first:first + self.batch_size]
                up = F.interpolate(channels[idx][:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
                lo = up.flatten(1).amin(1).view(-1, 1, 1)
                hi = up.flatten(1).amax(1).view(-1, 1, 1)
                masks = (up - lo) / (hi - lo).clamp_min(1e-12)
                scores = self.model(images[b:b + 1] * masks[:, None]).float().softmax(1)[:, targets[b]]
                saliency[b] += torch.einsum("n,nhw->hw", scores, up)
        return saliency.clamp_min(0)

"""The knobs of gradcam_pp (cce_bench/explainers/gradcam_pp.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob


@dataclass
class GradCAMPlusPlusKnobs(MethodKnobs):
    target_layer: str | None = knob(None, Rule("text", nullable=True),
                                    "dotted path of the layer; null: the model's (model.target_layer: VGG-19 "
                                    "features.35, ResNet-50 layer4.2, EfficientNet-Lite bn2, another model's "
                                    "found by the rule of docs/models.md)")
    batch_size: int | None = batch_size_knob("images per forward/backward pass; null: 16 on a CPU, 64 on a GPU")

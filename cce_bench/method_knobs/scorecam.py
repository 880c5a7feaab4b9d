"""The knobs of scorecam (cce_bench/explainers/scorecam.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob


@dataclass
class ScoreCAMKnobs(MethodKnobs):
    target_layer: str | None = knob(None, Rule("text", nullable=True),
                                    "dotted path of the layer; null: the model's (model.target_layer: VGG-19 "
                                    "features.35, ResNet-50 layer4.2, EfficientNet-Lite bn2, another model's "
                                    "found by the rule of docs/models.md)")
    batch_size: int | None = batch_size_knob("masked inputs per forward pass; null: 16 on a CPU, 64 on a GPU")

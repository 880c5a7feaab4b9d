"""CE's knobs (cce_bench/explainers/contrastive_gradcam.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob


@dataclass
class ContrastiveGradCAMKnobs(MethodKnobs):
    target_layer: str | None = knob(None, Rule("text", nullable=True),
                                    "dotted path of the layer; null: the model's (model.target_layer: its last "
                                    "convolutional block)")
    contrast_rank: int = knob(2, Rule("whole", 2, 1000),
                              "Q is the contrast_rank-th most likely class (2: the second most likely)")
    batch_size: int | None = batch_size_knob("images per forward/backward pass; null: 16 on a CPU, 64 on a GPU")

"""RISE's knobs (cce_bench/explainers/rise.py). N, grid, keep null: the model's (its facts' `rise`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob


@dataclass
class RISEKnobs(MethodKnobs):
    N: int | None = knob(None, Rule("whole", 1, 1_000_000, nullable=True),
                         "masks; null: the model's facts (ResNet-50: 6000, as the RISE authors' released PyTorch "
                         "code; other models 4000)")
    grid: int | None = knob(None, Rule("whole", 1, 1024, nullable=True),
                            "cells per side of the random grid; null: the model's facts (ResNet-50 8, others 7)")
    keep: float | None = knob(None, Rule("number", 0, 1, low_open=True, high_open=True, nullable=True),
                              "the probability a cell is kept; null: the model's facts (ResNet-50 0.1, others 0.5)")
    seed: int = knob(0, Rule("whole", 0, 2**32 - 1), "the seed of the masks (the same masks serve every image)")
    batch_size: int | None = batch_size_knob("masked inputs per forward pass; null: 16 on a CPU, 64 on a GPU")

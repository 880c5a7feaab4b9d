"""IG's knobs (cce_bench/explainers/ig.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob


@dataclass
class IGKnobs(MethodKnobs):
    steps: int = knob(50, Rule("whole", 1, 100_000), "points of the path from the baseline to the image")
    internal_batch_size: int = knob(16, Rule("whole", 1, 100_000), "path inputs per forward/backward inside captum")
    batch_size: int | None = batch_size_knob("images per captum call; null: 4 on a CPU, 16 on a GPU")
    mean: list | None = knob(None, Rule("list", nullable=True, each=Rule("number", -1e6, 1e6)),
                             doc="the normalisation the model expects (per channel); null: the model's own "
                             "(a zero baseline without one)")
    std: list | None = knob(None, Rule("list", nullable=True, each=Rule("number", 0, 1e6, low_open=True)),
                            doc="the standard deviations the model divides by (per channel, each > 0); null: as mean")

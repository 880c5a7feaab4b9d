"""APPB's knobs (cce_bench/explainers/appb.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob


@dataclass
class APPBKnobs(MethodKnobs):
    layers: list | None = knob(None, Rule("list", nullable=True),
                               "dotted paths of the perceptual layers phi_l; null: the model's facts")
    gamma_p: float = knob(1e4, Rule("number", 0, 1e12), "the weight of the perceptual terms (the authors' 1e4)")
    v: float = knob(-2.0, Rule("number", -1e4, 1e4), "the target margin (the authors' -2)")
    steps: int = knob(100, Rule("whole", 1, 100_000), "optimiser iterations (the authors' example: 100)")
    lr: float = knob(1e-4, Rule("number", 0, 1, low_open=True), "Adam's step, for optimizer=adam only")
    blur_sigma: float = knob(2.0, Rule("number", 0, 1000),
                             "sigma of the map's Gaussian blur, in pixels (under 0.01: no blur)")
    optimizer: str = knob("lbfgs", Rule("choice", choices=("lbfgs", "adam")),
                          "lbfgs (the authors') or adam (a batched variant; scripts/compare_appb_optimizers.py)")
    batch_size: int | None = batch_size_knob("images optimised side by side (each its own L-BFGS, or Adam); "
                                             "null: 16 on a CPU, 32 on a GPU")

"""CALM's knobs (cce_bench/explainers/calm.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob


@dataclass
class CALMKnobs(MethodKnobs):
    checkpoint: str | None = knob(None, Rule("text", nullable=True),
                                  "PATH of a train-calm checkpoint; without one the table says \"needs checkpoint\"")
    batch_size: int | None = batch_size_knob("images per forward pass; null: 16 on a CPU, 64 on a GPU")

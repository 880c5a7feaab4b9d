"""The knobs of the model-parameter randomisation test (metrics/sanity.py): compare's sanity column and the
`sanity` command."""
from dataclasses import dataclass

from ..choices import SANITY_MODES
from ..method_knobs import knob
from ..rules import Rule
from . import MetricKnobs


@dataclass
class SanityKnobs(MetricKnobs):
    fail_above: float = knob(0.5, Rule("number", -1, 1), "a method fails when its maps' Spearman (abs) to the "
                             "trained model's, with every block re-initialised, stays above this (Adebayo et al.'s "
                             "GBP stays near 1)")
    modes: list[str] = knob(list(SANITY_MODES), Rule("list", choices=tuple(SANITY_MODES)),
                            "the sanity command's walks: " + "; ".join(f"{k}: {v}" for k, v in SANITY_MODES.items()))
    layers: int | None = knob(None, Rule("whole", 1, 10**6, nullable=True), "the sanity command: only the top N "
                              "blocks (from the logits down); null: every block")

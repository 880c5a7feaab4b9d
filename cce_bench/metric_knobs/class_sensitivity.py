"""The knobs of class deviation (metrics/class_sensitivity.py)."""
from dataclasses import dataclass

from ..choices import OTHER_CLASSES, SIMILARITIES
from ..method_knobs import knob
from ..rules import Rule
from . import MetricKnobs


@dataclass
class ClassSensitivityKnobs(MetricKnobs):
    other: str = knob("second", Rule("choice", choices=tuple(OTHER_CLASSES)),
                      "the other class: " + "; ".join(f"{k}: {v}" for k, v in OTHER_CLASSES.items()))
    similarity: str = knob("ssim", Rule("choice", choices=tuple(SIMILARITIES)),
                           "how alike the two maps are: " + "; ".join(f"{k}: {v}" for k, v in SIMILARITIES.items()))

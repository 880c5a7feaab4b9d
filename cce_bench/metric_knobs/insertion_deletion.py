"""The knobs of insertion/deletion (metrics/insertion_deletion.py), as the RISE authors' code sets them."""
from dataclasses import dataclass

from ..method_knobs import knob
from ..rules import Rule
from . import MetricKnobs


@dataclass
class InsertionDeletionKnobs(MetricKnobs):
    step: int = knob(224, Rule("whole", 1, 10**8), "pixels changed per step: 224 steps, 225 points per curve at "
                     "224 x 224")
    blur_size: int = knob(11, Rule("whole", 1, 1001, odd=True), "insertion starts from a Gaussian blur of this "
                          "kernel size ...")
    # below 0.01 pixels a Gaussian is no blur at all, and its squared sigma underflows (NaN kernels from ~1e-19)
    blur_sigma: float = knob(5.0, Rule("number", 0.01, 1000), "... and this sigma (zero padding, in "
                             "normalised space)")

"""Each metric's knobs, declared once: a dataclass per metric of the suite, one field per knob with its type,
default, range (a `Rule`) and a line of doc, as the methods' are (cce_bench/method_knobs).

`metric_knobs/NAME.py` holds the knobs of `metrics/NAME.py` (a metric without knobs needs no file). These
modules import no torch: the command line composes `metric_knobs.NAME.KNOB` from them (Hydra structured
configs), checks every value against its rule before any work, lists them in docs/knobs.md, and the metric
reads the same dataclass when it is made. A Quantus metric's knobs are the arguments of its class
(`metric_knobs.quantus_NAME.KNOB`), checked against its signature.
"""
from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import ClassVar

from ..method_knobs import MethodKnobs, declared_knobs

PACKAGE_DIR = Path(__file__).resolve().parent
METRICS_DIR = PACKAGE_DIR.parent / "metrics"
NOT_METRICS = {"__init__", "base", "quantus_metrics"}  # metrics' modules that are machinery, not metrics


@dataclasses.dataclass
class MetricKnobs(MethodKnobs):
    """A metric's knobs: subclass it in metric_knobs/NAME.py, one field per knob made with `knob(...)`."""

    kind: ClassVar[str] = "metric"
    group: ClassVar[str] = "metric_knobs"


@dataclasses.dataclass
class NoKnobs(MetricKnobs):
    """The knobs of a metric that has none."""


def metric_names() -> list[str]:
    """The suite's own metrics, one per module of cce_bench/metrics (what the registry will hold), read
    without importing them."""
    return sorted(p.stem for p in METRICS_DIR.glob("*.py") if p.stem not in NOT_METRICS)


@cache
def metric_knobs_of(metric: str) -> type[MetricKnobs]:
    """The knobs class of one of the suite's metrics: the one MetricKnobs subclass of metric_knobs/NAME.py,
    else NoKnobs."""
    return declared_knobs(PACKAGE_DIR, __name__, metric, MetricKnobs, NoKnobs)


def structured_node() -> dict:
    """`metric_knobs`: every metric's knobs class under its name, for Hydra's ConfigStore."""
    return {name: metric_knobs_of(name) for name in metric_names()}

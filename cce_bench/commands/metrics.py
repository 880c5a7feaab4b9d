"""`cce-bench metrics`: every metric a run can score by name: the suite's own protocols and each metric class
of Quantus (`quantus_NAME`, metrics/quantus_metrics.py), with its family, what it needs and which way is
better."""
from __future__ import annotations

import pandas as pd

from ..errors import UserError
from ..metrics import METRICS
from ..metrics.base import NEEDS
from ..tables import to_markdown
from . import PlainCommand


def metric_table() -> pd.DataFrame:
    """A row per metric of the registry: the suite's own, then Quantus's."""
    names = METRICS.names() + METRICS.family_names("quantus")
    rows = []
    for name in names:
        metric = METRICS.get(name)(None)
        rows.append({"name": name, "from": metric.source, "family": metric.family,
                     "needs": ", ".join(sorted(metric.needs)) or "-", "better": metric.direction, "what": metric.what})
    return pd.DataFrame(rows)


def run_metrics(args: list[str]) -> pd.DataFrame:
    if args:
        raise UserError(f"cce-bench metrics takes no arguments, not {' '.join(args)}")
    table = metric_table()
    print("Metrics by name (compare and score: metrics=[...], a Quantus metric's arguments as "
          "metric_knobs.NAME.KNOB=VALUE; metrics=null, the default, scores the suite's own that the run can):\n\n"
          f"{to_markdown(table)}\n\n"
          "needs: " + "; ".join(f"{need} = {meaning}" for need, meaning in NEEDS.items()) + ".")
    return table


COMMAND = PlainCommand("metrics", run_metrics)

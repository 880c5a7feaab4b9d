"""`cce-bench metrics`: every metric a run can score by name: the suite's own protocols and each metric class
of Quantus (`quantus_NAME`, metrics/quantus_metrics.py), with its family, what it needs and which way is
better."""
from __future__ import annotations

import pandas as pd

from ..errors import UserError
from ..metrics.quantus_metrics import SUITE_METRICS, knob_names, metric_facts, quantus_members
from ..tables import to_markdown
from . import PlainCommand


def metric_table() -> pd.DataFrame:
    rows = [{"name": name, "from": "cce-bench", "family": family, "needs": needs, "better": better, "what": what}
            for name, (family, needs, better, what) in SUITE_METRICS.items()]
    for member in quantus_members():
        name = f"quantus_{member}"
        facts = metric_facts(name)
        arguments = [k for k in knob_names(name) if k not in ("abs", "normalise", "normalise_func",
                                                              "normalise_func_kwargs", "aggregate_func",
                                                              "default_plot_func")]
        rows.append({"name": name, "from": "quantus", "family": facts.family, "needs": facts.needs,
                     "better": "higher" if facts.higher_is_better else "lower",
                     "what": "arguments: " + (", ".join(arguments) or "-")})
    return pd.DataFrame(rows)


def run_metrics(args: list[str]) -> pd.DataFrame:
    if args:
        raise UserError(f"cce-bench metrics takes no arguments, not {' '.join(args)}")
    table = metric_table()
    print("Metrics by name (compare metrics=[...], their arguments as metric_knobs.NAME.KNOB=VALUE; the suite's own "
          f"protocols are always in compare's table):\n\n{to_markdown(table)}\n\n"
          "needs: boxes = the COCO boxes of data=photos_coco or data=coco; re-explains = the metric calls the "
          "method again (on other classes, perturbed inputs or a randomised model).")
    return table


COMMAND = PlainCommand("metrics", run_metrics)

"""Progress inside one batch: where the long loops are (CCE's optimisation steps, the insertion/deletion
passes, RISE's masks, APPB's iterations). Inside a run they are said on the run's one bar, after its
count ("CCE: 10 counterfactuals 31/51 steps"): that bar moves with the model's passes and never
restarts. Outside a run (the Python API) each loop draws a bar of its own, on a terminal only
(`CCE_BENCH_PROGRESS=always` draws it anywhere, `never` nowhere)."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from tqdm import tqdm


def _shown() -> bool:
    setting = os.environ.get("CCE_BENCH_PROGRESS", "auto")
    return setting == "always" or (setting != "never" and sys.stderr.isatty())


@contextlib.contextmanager
def steps(total: int, desc: str, unit: str = "step") -> Iterator[tqdm]:
    """`with steps(n, "CCE: 10 counterfactuals") as bar: ... bar.update()`."""
    bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, disable=not _shown(),
               file=sys.stderr, mininterval=0.5)
    try:
        yield bar
    finally:
        bar.close()


# The bar of the run in progress (runs/engine.py), where the loops say their stage.
RUN_BAR: dict = {"bar": None}


@contextlib.contextmanager
def on_run_bar(bar) -> Iterator[None]:
    RUN_BAR["bar"] = bar
    try:
        yield
    finally:
        RUN_BAR["bar"] = None


def counted(items, desc: str, total: int | None = None, unit: str = "step"):
    """`for t in counted(range(n), "CCE: 10 counterfactuals"):` the loop's items, one step each."""
    total = len(items) if total is None else total
    plural = unit + ("es" if unit.endswith("s") else "s")
    run_bar = RUN_BAR["bar"]
    if run_bar is not None:
        for done, item in enumerate(items, start=1):
            run_bar.set_postfix_str(
                f"{desc} {done}/{total} {plural}", refresh=done == 1
            )  # each stage shown once at least
            yield item
        return
    with steps(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update()

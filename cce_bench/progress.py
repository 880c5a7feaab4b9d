"""Progress inside one batch of a run: a second bar under the run's for the long loops (CCE's optimisation
steps, the insertion/deletion passes, RISE's masks, APPB's iterations), with its rate and time left, so a
batch that takes minutes shows where it is. Drawn on a terminal only: logs (SLURM, CI) keep the run's bar
alone instead of a line per step (`CCE_BENCH_PROGRESS=always` draws it anywhere, `never` nowhere)."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

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


def counted(items, desc: str, total: int | None = None, unit: str = "step"):
    """`for t in counted(range(n), "CCE: 10 counterfactuals"):` the loop's items, one bar step each."""
    with steps(len(items) if total is None else total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update()

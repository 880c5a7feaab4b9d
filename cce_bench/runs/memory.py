"""Out of memory on a smaller card: halve the model inputs per pass and do the same batch again.

Only the inputs per pass change (the run's `batch_size`, each method's `batch_size`, IG's
`internal_batch_size`): which images form batch k stays, so a resumed run and the records are the same,
and the numbers are the same up to the floating-point order of a smaller pass.
"""
from __future__ import annotations

import gc
import sys
from collections.abc import Callable

import torch
from omegaconf import DictConfig

from ..errors import UserError, is_allocation_failure

# A failed allocation: torch's OutOfMemoryError (CUDA), MemoryError, or the RuntimeError a CPU allocator raises.
is_out_of_memory = is_allocation_failure


def halve_batch_sizes(cfg: DictConfig, explainers) -> list[str]:
    """Halves every inputs-per-pass setting above 1; returns what changed, as `key: old -> new`."""
    changes = []
    if int(cfg.batch_size) > 1:
        changes.append(f"batch_size: {cfg.batch_size} -> {int(cfg.batch_size) // 2}")
        cfg.batch_size = int(cfg.batch_size) // 2
    for explainer in explainers:
        for knob in ("batch_size", "internal_batch_size"):
            value = getattr(explainer, knob, None)
            if isinstance(value, int) and value > 1:
                changes.append(f"method_knobs.{explainer.name}.{knob}: {value} -> {value // 2}")
                setattr(explainer, knob, value // 2)
    return changes


def free_cached_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def retrying_on_out_of_memory(score: Callable[[dict], tuple], cfg: DictConfig, explainers,
                              events: list[str]) -> Callable[[int, dict], tuple]:
    """`score(batch)` that, when it runs out of memory, halves the inputs per pass (logged to stderr and
    appended to `events`, which run.json keeps) and scores the same batch again; out of memory with
    every pass already at one input is a UserError."""

    def score_batch(k: int, batch: dict) -> tuple:
        while True:
            try:
                return score(batch)
            except Exception as exc:  # noqa: BLE001 -- only out-of-memory is handled, the rest re-raised
                if not is_out_of_memory(exc):
                    raise
                changes = halve_batch_sizes(cfg, explainers)
                if not changes:
                    held = "".join(f", {e.memory_hint()}" for e in explainers if set(e.memory_knobs) - {"batch_size"})
                    raise UserError(f"out of memory on batch {k} with one model input per pass: pass a smaller "
                                    f"images_per_batch={held} or smaller images (data.resize=, data.crop=), or run "
                                    "on a card with more memory; the finished batches are kept") from None
            # Outside the except block, so that the failed attempt's tensors (held by the traceback) are freed.
            free_cached_memory()
            message = f"out of memory on batch {k}: halved {'; '.join(changes)}; batch {k} again"
            events.append(message)
            print(f"warning: {message}", file=sys.stderr)

    return score_batch

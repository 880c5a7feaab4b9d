"""The run skeleton every scoring command shares: set up (device, seeds, shard), open the run folder,
score this process's unfinished batches one by one, then (rank 0) merge the records and let the
command write its tables.

Batch k holds images [k * images_per_batch, (k + 1) * images_per_batch) of the data set, whatever the
number of processes or restarts, so each batch is computed the same way in every run.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import UserError
from . import distributed
from .distributed import Shard
from .memory import retrying_on_out_of_memory
from .run_folder import RunFolder, machine_info, now_iso
from .runtime import resolve, seed_everything


@dataclass
class Session:
    """One process of a run: its resolved config, its shard and device, and when it started."""

    cfg: DictConfig
    shard: Shard
    device: torch.device
    started: str = field(default_factory=now_iso)
    wall_start: float = field(default_factory=time.perf_counter)
    out_of_memory: list[str] = field(default_factory=list)  # each halving of the inputs per pass


def begin(cfg: DictConfig) -> Session:
    shard = distributed.current_shard()
    cfg = resolve(cfg, shard)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    device = torch.device(cfg.device)
    distributed.start(shard, device)
    return Session(cfg, shard, device)


def all_shards_done(session: Session) -> bool:
    """Waits for every process; True in the one (rank 0) that goes on to merge and write the tables."""
    distributed.barrier(session.shard)
    if not session.shard.is_main:
        distributed.stop()
    return session.shard.is_main


def batch_indices(n_items: int, per_batch: int) -> list[list[int]]:
    return [list(range(first, min(first + per_batch, n_items))) for first in range(0, n_items, per_batch)]


def open_run(cfg: DictConfig, shard: Shard, device: torch.device, samples_table) -> RunFolder:
    """The run folder, checked against this config (all ranks) and stamped with it (rank 0)."""
    run = RunFolder(cfg.out)
    if shard.is_main:
        run.lock()
    resuming = run.check_config(cfg)
    distributed.barrier(shard)
    if shard.is_main:
        if not resuming:
            for part in (run.path / "parts").glob("rank*.jsonl"):
                part.unlink()  # batches of an unknown config cannot be trusted
        run.stamp_config(cfg)
        run.write_config(cfg)
        run.write_csv("samples.csv", samples_table)
    run.write_json("machine.json" if shard.is_main else f"machine.rank{shard.rank}.json", machine_info(device))
    distributed.barrier(shard)
    return run


def run_batches(cfg: DictConfig, run: RunFolder, dataset, shard: Shard,
                score_batch: Callable[[int, dict], tuple[list[dict], dict]], desc: str, unit: str) -> None:
    """`score_batch(k, batch)` returns batch k's records and a summary (sums to aggregate over batches)."""
    batches = batch_indices(len(dataset), int(cfg.images_per_batch))
    finished = run.finished_batches()
    mine = [k for k in range(len(batches)) if shard.owns(k)]
    todo = [k for k in mine if k not in finished]
    if len(todo) < len(mine):
        print(f"resuming {run.path}: {len(mine) - len(todo)} of {len(mine)} batches already done", file=sys.stderr)
    loader = DataLoader(dataset, batch_sampler=[batches[k] for k in todo], num_workers=int(cfg.num_workers),
                        collate_fn=dataset.collate)
    label = desc if shard.world == 1 else f"{desc} [rank {shard.rank}/{shard.world}]"
    with tqdm(total=sum(len(batches[k]) for k in mine), initial=sum(len(batches[k]) for k in mine if k in finished),
              unit=unit, desc=label, position=shard.rank, dynamic_ncols=True) as bar:
        for k, batch in zip(todo, loader):
            records, summary = score_batch(k, batch) if batch["id"] else ([], {})
            run.append_batch(shard.rank, k, records, batch["skipped"], summary)
            for row in batch["skipped"]:
                print(f"warning: skipped {row['id']}: {row['reason']}", file=sys.stderr)
            bar.update(len(batches[k]))


def finish_run(run: RunFolder, command: str, session: Session, extra: dict) -> None:
    run.write_json("run.json", {"status": "complete", "command": command, "seed": int(session.cfg.seed),
                                "precision": str(session.cfg.get("precision", "tf32")),
                                "started": session.started, "finished": now_iso(),
                                "wall_seconds": round(time.perf_counter() - session.wall_start, 1),
                                "processes": session.shard.world, "threads": torch.get_num_threads(),
                                "out_of_memory": session.out_of_memory,
                                **extra})
    distributed.stop()


@dataclass(frozen=True)
class Examples:
    """The records a scoring command ranks its example maps by: `score` per record (higher is better), the
    score's label, and the knobs the maps are drawn with (the method; the swept value)."""

    records: pd.DataFrame
    label: str
    setting: dict


def no_paper_columns(table: pd.DataFrame) -> pd.DataFrame:
    return table


@dataclass(frozen=True)
class ScoringCommand:
    """A command that scores maps through the shared skeleton, declared once: what it prepares (its Job:
    data, scoring of a batch, tables), how `report` sets its table beside the paper (`beside_paper`: the
    table with measured - paper columns) and which records its example figure shows (`examples`; None: no
    single score to rank images by)."""

    name: str
    prepare: Callable[[Session], "Job"]
    examples: Callable[[pd.DataFrame, DictConfig], Examples] | None = None
    beside_paper: Callable[[pd.DataFrame], pd.DataFrame] = no_paper_columns

    def run(self, cfg: DictConfig) -> RunFolder | None:
        return execute(cfg, self.name, self.prepare)


@dataclass(frozen=True)
class PlainCommand:
    """A command with a run of its own (explain, user-study, train-calm, ...)."""

    name: str
    run: Callable[[DictConfig], object]


@dataclass
class Job:
    """What a command supplies to the skeleton: its data, how to score a batch (-> records, summary), how
    to turn the merged records into its tables (-> run.json extras and the text printed at the end)."""

    dataset: object
    score_batch: Callable[[dict], tuple[list[dict], dict]]
    write_tables: Callable[[RunFolder, "object", "object"], tuple[dict, str]]
    desc: str
    unit: str = "img"
    model: object = None    # its pass counts go into run.json
    explainers: list = field(default_factory=list)  # their inputs per pass are halved on out-of-memory
    can_score: bool = True  # False: no method can run here, and the tables say why (no records expected)


def execute(cfg: DictConfig, command: str, prepare: Callable[[Session], Job]) -> RunFolder | None:
    """Runs a scoring command: `prepare(session)` builds its Job from the resolved config."""
    session = begin(cfg)
    job = prepare(session)
    run = open_run(session.cfg, session.shard, session.device, job.dataset.samples_table())
    score = retrying_on_out_of_memory(job.score_batch, session.cfg, job.explainers, session.out_of_memory)
    run_batches(session.cfg, run, job.dataset, session.shard, score, desc=job.desc, unit=job.unit)
    if not all_shards_done(session):
        return None
    records, unreadable = run.merge()
    skipped = pd.concat([pd.DataFrame(job.dataset.skipped, columns=["id", "reason"]), unreadable], ignore_index=True)
    run.write_csv("skipped.csv", skipped)
    if records.empty and job.can_score:
        first = f": {skipped['id'].iloc[0]}: {skipped['reason'].iloc[0]}" if len(skipped) else ""
        what = "pair" if job.unit == "pair" else "image"
        raise UserError(f"no {what} of {job.dataset.name} could be scored ({len(skipped)} skipped, see "
                        f"{run.path}/skipped.csv){first}")
    extra, text = job.write_tables(run, records, skipped)
    if job.model is not None and hasattr(job.model, "passes"):
        extra = {"model_inputs_this_process": job.model.passes.as_dict(), **extra}
    finish_run(run, command, session, extra)
    print(f"\n{text}\n\nwritten to {run.path}")
    return run

"""The run skeleton every scoring command shares: set up (device, seeds, shard), open the run folder,
score this process's unfinished batches one by one, then (rank 0) merge the records and let the
command write its tables.

Batch k holds images [k * images_per_batch, (k + 1) * images_per_batch) of the data set, whatever the
number of processes or restarts, so each batch is computed the same way in every run.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import UserError
from ..progress import on_run_bar
from . import distributed
from .cost import PassCounts, Passes, Plan, first_look_hint, make_plan, pass_count_context
from .distributed import Shard
from .map_store import MapStore
from .memory import retrying_on_out_of_memory
from .provenance import provenance, user_code
from .run_folder import BatchPieces, RunFolder, machine_info, now_iso
from .runtime import resolve, run_precision, seed_everything


@dataclass
class Session:
    """One process of a run: its resolved config, its shard and device, and when it started."""

    cfg: DictConfig
    shard: Shard
    device: torch.device
    started: str = field(default_factory=now_iso)
    wall_start: float = field(default_factory=time.perf_counter)
    out_of_memory: list[str] = field(default_factory=list)  # each halving of the inputs per pass
    maps: MapStore = field(default_factory=MapStore)  # the maps this run keeps (save_maps=true)
    plan_only: bool = False  # --dry-run: the plan is printed and nothing run


def begin(cfg: DictConfig, plan_only: bool = False) -> Session:
    shard = distributed.current_shard()
    cfg = resolve(cfg, shard)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    device = torch.device(cfg.device)
    distributed.start(shard, device)
    return Session(cfg, shard, device, maps=MapStore(bool(cfg.get("save_maps", False))), plan_only=plan_only)


def all_shards_done(session: Session) -> bool:
    """Waits for every process; True in the one (rank 0) that goes on to merge and write the tables."""
    distributed.barrier(session.shard)
    if not session.shard.is_main:
        distributed.stop()
    return session.shard.is_main


def batch_indices(n_items: int, per_batch: int) -> list[list[int]]:
    return [list(range(first, min(first + per_batch, n_items))) for first in range(0, n_items, per_batch)]


def open_run(cfg: DictConfig, shard: Shard, device: torch.device, samples_table, maps: MapStore) -> RunFolder:
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
            maps.forget_parts(run.path)
        run.stamp_config(cfg)
        run.write_config(cfg)
        run.write_csv("samples.csv", samples_table)
    run.write_json("machine.json" if shard.is_main else f"machine.rank{shard.rank}.json",
                   {**machine_info(device), **provenance(cfg)})
    distributed.barrier(shard)
    return run


def run_batches(cfg: DictConfig, run: RunFolder, dataset, shard: Shard,
                score_batch: Callable[[int, dict], tuple[list[dict], dict]], desc: str, unit: str,
                plan: Plan | None = None, model=None, maps: MapStore | None = None,
                counted_passes: Callable[[int], dict] | None = None) -> None:
    """`score_batch(k, batch)` returns batch k's records and a summary (sums to aggregate over batches).
    With a plan, the bar moves with the model's passes inside a batch, so it says the time left from the
    first seconds on; after the first batch, the plan takes that batch's rate and the passes counted in it that
    it had not counted (`counted_passes(images)`, a library metric's)."""
    batches = batch_indices(len(dataset), int(cfg.images_per_batch))
    finished = run.finished_batches()
    mine = [k for k in range(len(batches)) if shard.owns(k)]
    todo = [k for k in mine if k not in finished]
    if len(todo) < len(mine):
        print(f"resuming {run.path}: {len(mine) - len(todo)} of {len(mine)} batches already done", file=sys.stderr)
    loader = DataLoader(dataset, batch_sampler=[batches[k] for k in todo], num_workers=int(cfg.num_workers),
                        collate_fn=dataset.collate)
    # pieces of a batch (a method's records) are kept as they finish, except where its maps are saved: the map
    # store keeps a whole batch's maps or none
    pieces = run.finished_pieces() if maps is None or not maps.enabled else None
    label = desc if shard.world == 1 else f"{desc} [rank {shard.rank}/{shard.world}]"
    done = sum(len(batches[k]) for k in mine if k in finished)
    with tqdm(total=sum(len(batches[k]) for k in mine), initial=done, unit=unit, desc=label, position=shard.rank,
              dynamic_ncols=True, bar_format=BAR_FORMAT) as bar, on_run_bar(bar):
        for k, batch in zip(todo, loader):
            started = time.perf_counter()
            if pieces is not None:
                batch["pieces"] = BatchPieces(run, shard.rank, k, pieces.get(k, {}))
            with moving_with_passes(bar, plan, model, done, len(batches[k])):
                records, summary = score_batch(k, batch) if batch["image_id"] else ([], {})
            if plan is not None and records and k == todo[0]:  # the plan at the run's own rate
                counted = counted_passes(len(batches[k])) if counted_passes is not None else None
                left = sum(len(batches[j]) for j in todo[1:])
                plan, line = plan.measured(time.perf_counter() - started, len(batches[k]), left, unit, counted)
                if shard.rank == 0 and left:
                    bar.write(line, file=sys.stderr)
            if maps is not None:
                maps.write_batch(run.path, shard.rank, k)  # before the batch counts as done
            run.append_batch(shard.rank, k, records, batch["skipped"], summary)
            for row in batch["skipped"]:
                print(f"warning: skipped {row['image_id']}: {row['reason']}", file=sys.stderr)
            done += len(batches[k])
            bar.n = done
            bar.refresh()


# Items done with one decimal: the bar moves inside an image as its passes are made.
BAR_FORMAT = "{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


@contextlib.contextmanager
def moving_with_passes(bar, plan: Plan | None, model, done: int, items: int):
    """While a batch of `items` runs, the bar stands at `done` plus the share of the batch's planned time
    that its passes so far account for (at most 99% of it: the batch's end moves it the rest)."""
    passes = getattr(model, "passes", None)
    if plan is None or passes is None or plan.seconds_per_image <= 0:
        yield
        return
    start = dict(passes.as_dict())
    planned = plan.seconds_per_image * items
    last = [0.0]

    def moved() -> None:
        now = time.perf_counter()
        if now - last[0] < 0.5:
            return
        last[0] = now
        made = Passes.between(start, passes.as_dict())
        bar.n = done + items * min(0.99, plan.rates.seconds(made) / planned)
        bar.refresh()

    passes.listener = moved
    try:
        yield
    finally:
        passes.listener = None


def finish_run(run: RunFolder, command: str, session: Session, extra: dict) -> None:
    run.write_json("run.json", {"status": "complete", "command": command, "seed": int(session.cfg.seed),
                                "precision": run_precision(session.cfg),
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


def example_method(records: pd.DataFrame) -> str:
    """The method whose maps `report` shows: a featured one (its class says so) where the run has it, else
    the first."""
    from ..explainers import EXPLAINERS

    names = list(dict.fromkeys(records["method"]))
    return next((name for name in names if EXPLAINERS.get(name).featured), names[0])


def no_paper_columns(table: pd.DataFrame) -> pd.DataFrame:
    return table


@dataclass(frozen=True)
class ScoringCommand:
    """A command that scores maps through the shared skeleton, declared once: what it prepares (its Job:
    data, scoring of a batch, tables), how `report` sets its table beside the paper (`beside_paper`: the
    table with measured - paper columns) and which records its example figure shows (`examples`; None: no
    single score to rank images by)."""

    name: str
    prepare: Callable[[Session], Job]
    examples: Callable[[pd.DataFrame, DictConfig], Examples] | None = None
    beside_paper: Callable[[pd.DataFrame], pd.DataFrame] = no_paper_columns

    def run(self, cfg: DictConfig, plan_only: bool = False) -> RunFolder | None:
        return execute(cfg, self.name, self.prepare, plan_only)


@dataclass
class Job:
    """What a command supplies to the skeleton: its data, how to score a batch (-> records, summary), how
    to turn the merged records into its tables (-> run.json extras and the text printed at the end)."""

    dataset: Any  # a data set of cce_bench.data (ImageSet, PointingSet, MapsOnImages): samples, skipped, ...
    score_batch: Callable[[dict], tuple[list[dict], dict]]
    write_tables: Callable[[RunFolder, pd.DataFrame, pd.DataFrame], tuple[dict, str]]
    desc: str
    unit: str = "img"
    model: object = None    # its pass counts go into run.json
    explainers: list = field(default_factory=list)  # their inputs per pass are halved on out-of-memory
    can_score: bool = True  # False: no method can run here, and the tables say why (no records expected)
    # The counts (cost.PassCounts) -> the passes per image of each stage (a method's maps, the scoring): the plan.
    plan_parts: Callable[[PassCounts], dict] | None = None
    # costs no probe counts (a library's metric runs passes of its own): named beside the plan until counted
    unplanned: list[str] = field(default_factory=list)
    # the images of the first batch -> stage -> (what, passes per image) of the unplanned costs, counted in it
    counted_passes: Callable[[int], dict] | None = None


def planned(job: Job, session: Session, command: str, done: int = 0) -> Plan | None:
    """The run's plan for the images not `done` yet (printed by the main process before any image), or None where
    the job has none or nothing is left."""
    if job.plan_parts is None or job.model is None or not hasattr(job.model, "passes") or \
            len(job.dataset) - done <= 0:
        return None
    cfg = session.cfg
    side = int(cfg.data.get("crop") or 224)
    if done and session.shard.is_main:
        unit = {"img": "image"}.get(job.unit, job.unit)
        print(f"plan: {done} of {len(job.dataset)} {unit}s are done in this folder; the plan counts the "
              f"{len(job.dataset) - done} left", file=sys.stderr)
    try:
        counts = PassCounts(job.model, pass_count_context(job.model, user_code(cfg)))
        plan = make_plan(job.model, len(job.dataset) - done, side, int(cfg.batch_size), job.plan_parts,
                         machine_info(session.device)["device_name"], counts)
    except Exception as exc:  # noqa: BLE001 - the plan only advises: a method the probe cannot run still runs
        if session.shard.is_main:
            print(f"plan: not available ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                  "the run goes on without it", file=sys.stderr)
        return None
    if session.shard.is_main:
        print(plan.describe(job.unit), file=sys.stderr)
        uncounted = [name for name in job.unplanned if name not in plan.parts]
        if uncounted:
            print(f"plan: not counted yet: {', '.join(uncounted)} (the library runs passes of its own: they are "
                  "counted in the first batch and planned from then on, and before later runs like this one)",
                  file=sys.stderr)
        hint = first_look_hint(plan, command, chosen_experiment())
        if hint:
            print(hint, file=sys.stderr)
    return plan


def chosen_experiment() -> str | None:
    """The run's `experiment=` choice, as Hydra recorded it (None outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().runtime.choices.get("experiment")
    except (ValueError, AttributeError):
        return None


def execute(cfg: DictConfig, command: str, prepare: Callable[[Session], Job], plan_only: bool = False
            ) -> RunFolder | None:
    """Runs a scoring command: `prepare(session)` builds its Job from the resolved config; `plan_only`
    (--dry-run) prints the plan and stops."""
    session = begin(cfg, plan_only)
    job = prepare(session)
    if session.plan_only:
        if planned(job, session, command) is None:
            print(f"plan: {len(job.dataset)} {job.unit}s; {command} has no pass count to plan with", file=sys.stderr)
        return None
    run = open_run(session.cfg, session.shard, session.device, job.dataset.samples_table(), session.maps)
    batches = batch_indices(len(job.dataset), int(session.cfg.images_per_batch))
    done = sum(len(batches[k]) for k in run.finished_batches() if k < len(batches))
    plan = planned(job, session, command, done)  # after the folder is accepted: a refused run says only why
    score = retrying_on_out_of_memory(job.score_batch, session.cfg, job.explainers, session.out_of_memory)
    run_batches(session.cfg, run, job.dataset, session.shard, score, desc=job.desc, unit=job.unit, plan=plan,
                model=job.model, maps=session.maps, counted_passes=job.counted_passes)
    if not all_shards_done(session):
        return None
    records, unreadable = run.merge()
    skipped = pd.concat([pd.DataFrame(job.dataset.skipped, columns=["image_id", "reason"]), unreadable],
                        ignore_index=True)
    run.write_csv("skipped.csv", skipped)
    if records.empty and job.can_score:
        first = f", e.g. {skipped['image_id'].iloc[0]}: {skipped['reason'].iloc[0]}" if len(skipped) else ""
        what = "pair" if job.unit == "pair" else "image"
        for empty in ("records.jsonl", "records.csv"):  # nothing in them: a folder made for this run goes
            (run.path / empty).unlink(missing_ok=True)
        raise UserError(f"no {what} of {job.dataset.name} could be scored ({len(skipped)} skipped{first})")
    saved = session.maps.merge(run.path)
    extra, text = job.write_tables(run, records, skipped)
    if saved:
        extra = {**extra, "maps": [str(path.relative_to(run.path)) for path in saved]}
    if job.model is not None and hasattr(job.model, "passes"):
        extra = {"model_inputs_this_process": job.model.passes.as_dict(), **extra}
    finish_run(run, command, session, extra)
    print(f"\n{text}\n\nwritten to {run.path}")
    return run

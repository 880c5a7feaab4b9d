"""The output folder of a run: every file is written whole or not at all, and nothing finished is lost.

Each finished batch is one JSON line (its records and the images it had to skip) appended and synced to
the process's own part file, `parts/rank<r>.jsonl`: a crash can only cut the last line, which is then
ignored and its batch done again. A rerun into the same folder skips every finished batch; a run of
another config is refused. Tables and `run.json` (status "complete") are written last, by rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

from omegaconf import OmegaConf

from ..errors import UserError
from ..safe_files import (
    RUN_SUBFOLDERS,
    append_no_follow,
    check_not_link,
    check_run_file,
    damaged,
    open_no_follow,
    write_atomic,
)

if TYPE_CHECKING:  # torch and pandas are imported where used: the command line checks a folder without them
    import pandas as pd
    import torch


def machine_info(device: torch.device) -> dict:
    import torch

    from .timing import cpu_name

    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cuda": torch.version.cuda if device.type == "cuda" else None,
    }
    return info


# Keys that do not change the numbers: a run may resume with other values of these. Model inputs per pass
# (batch_size, and each method's) are among them: a run that ran out of memory goes on with smaller ones.
NOT_IN_FINGERPRINT = ("out", "num_workers", "batch_size", "threads")


def fingerprint(cfg) -> tuple[str, dict]:
    import torch

    settings: dict = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]  # a DictConfig's
    for key in NOT_IN_FINGERPRINT:
        settings.pop(key, None)
    for knobs in (settings.get("method_knobs") or {}).values():
        if isinstance(knobs, dict):
            knobs.pop("batch_size", None)
            knobs.pop("internal_batch_size", None)
    if "device" in settings:  # cuda:0 and cuda:1 compute alike; a CPU run is not resumed on a GPU
        settings["device"] = torch.device(settings["device"]).type
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16], settings


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _differences(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.append(f"{prefix}{k}")
    return out


# Hydra's own record of a run (the config as composed, Hydra's settings, the overrides), held when the task
# starts and written into `.hydra/` with the run's config once the run is accepted, so that a refused rerun
# leaves a finished run's provenance as it was (Hydra itself is told not to write it: output_subdir null).
_HYDRA_RECORD: dict[str, str] = {}


def hold_hydra_record(task_cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    _HYDRA_RECORD.clear()
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        _HYDRA_RECORD.update({"config.yaml": OmegaConf.to_yaml(task_cfg),
                              "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})),
                              "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.overrides.task)})


# What a run folder holds before its first result: a failed start that leaves only these removes the folder.
SCAFFOLD = {".cce-bench", ".lock", ".hydra", "parts", "fingerprint.json", "config.yaml", "samples.csv", "machine.json",
            "skipped.csv"}


def holds_results(path: Path) -> bool:
    """Whether a run folder holds anything a run finished: a scored record, a map, a table. Batches whose
    every image was skipped are not results (reading the images again costs little)."""
    for entry in path.iterdir():
        if entry.name == "parts":
            if any(scored_batches(part) if part.suffix == ".jsonl" else part.is_dir() and any(part.iterdir())
                   for part in entry.iterdir() if not part.is_symlink()):
                return True
        elif entry.name not in SCAFFOLD and not entry.name.startswith("machine.rank"):
            return True
    return False


def scored_batches(part: Path) -> bool:
    """Whether a part file holds a batch with a record (a line that is not one counts, to keep it safe)."""
    import stat

    if not stat.S_ISREG(part.lstat().st_mode):
        return True  # not the run's own: kept for the user to see
    return any(not finished_batch(entry) or entry["records"] for entry in part_entries(part))


def part_entries(part: Path):
    """The lines of a part file as JSON, a line cut by a crash left out (its batch or piece is not done)."""
    with open(part, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


# The run folders this process has locked (real path -> the open lock file), so that a run that fails after
# taking its lock can still remove the folder it made. Weak: a lock ends with its RunFolder, as before.
HELD_LOCKS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def remove_unfinished_start(path: Path, keep: Path) -> None:
    """Removes a run folder this process made that holds no result, and the empty folders above it up to
    `keep` (the nearest one that existed before): a run refused at its start leaves nothing behind."""
    import fcntl
    import shutil

    if not path.is_dir() or holds_results(path) or (path / ".lock").is_symlink():
        return
    # held while removing, so no writer starts meanwhile: this process's own lock if it took one (a second
    # flock of the same file in one process would be refused), else taken here
    lock = HELD_LOCKS.pop(os.path.realpath(path), None)
    if lock is None:
        lock = os.fdopen(open_no_follow(path / ".lock", os.O_RDWR | os.O_CREAT), "a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return  # another process is writing this run (this one was refused for that)
    with lock:
        shutil.rmtree(path, ignore_errors=True)
    for parent in path.parents:
        if parent == keep or not str(parent).startswith(str(keep)):
            break
        try:
            parent.rmdir()
        except OSError:
            break


def mark_output_folder(path: Path) -> None:
    """Marks a folder as cce-bench's, so that `out=` may reuse it (and refuses folders without the mark)."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".cce-bench").is_file() or (path / ".cce-bench").is_symlink():
        write_atomic(path / ".cce-bench", "a cce-bench output folder\n")


# -- before a run starts: its folder can be made, is not another tool's, and no one else is writing it --------
RUN_MARKERS = ("fingerprint.json", ".cce-bench")  # what a cce-bench output folder holds


def nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_creatable(path: Path, shown: str) -> None:
    """A folder can be made (or written) at `path`: probed with a temporary folder in the nearest existing
    one, removed at once, so that a refused run changes nothing on disk."""
    import tempfile

    base = nearest_existing(path)
    if not base.is_dir():
        raise UserError(
            f"{shown} cannot be made: {base} is a file, not a folder; pass out=DIR to a folder you can write"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".cce-bench-probe-", dir=base))
    except OSError as exc:
        raise UserError(f"{shown} cannot be made in {base} ({exc.strerror}): pass out=DIR to a folder you can "
                        "write") from None


def lock_holder(handle: IO[str]) -> str:
    """Who holds a lock, as its holder wrote it; a holder that has just taken it is given a moment to write."""
    for _ in range(20):
        handle.seek(0)
        holder = handle.read().strip()
        if holder:
            return holder
        time.sleep(0.025)
    return "another process"


def being_written(shown: str, holder: str) -> UserError:
    return UserError(f"{shown} is being written by {holder}: wait for it to finish, or pass another out=DIR (a rerun "
                     "with the same out= after it ends resumes it)")


def check_not_locked(path: Path, shown: str) -> None:
    """Refused before anything is written while another process holds the run's lock (runs/run_folder.py)."""
    import fcntl

    lock = path / ".lock"
    if not lock.is_file():
        return
    try:
        with open(lock, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise being_written(shown, lock_holder(handle)) from None
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return  # unreadable or without flock: the run's own lock says so


def check_output_folder(path: Path, shown: str) -> None:
    """The run's folder (`shown` as the user named it) checked before anything is made: it can be made, it
    is not a file, not another tool's folder, and no other process is writing it."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{shown} is a file, not a folder: pass out=DIR")
    check_creatable(path, shown)
    if path.is_dir():
        entries = [e.name for e in path.iterdir() if e.name != ".hydra"]
        if entries and not any((path / m).exists() for m in RUN_MARKERS):
            raise UserError(f"{shown} holds files that are not a cce-bench run (e.g. {sorted(entries)[0]!r}): "
                            "pass a new or empty folder, so that nothing of yours is overwritten")
        check_not_locked(path, shown)


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        for folder in RUN_SUBFOLDERS:
            check_not_link(self.path / folder)
        try:
            (self.path / "parts").mkdir(parents=True, exist_ok=True)
            mark_output_folder(self.path)
        except OSError as exc:
            raise UserError(f"output folder {str(self.path)!r} cannot be written ({exc.strerror}): pass out=DIR "
                            "to a folder you can write") from None
        self._lock: IO[str] | None = None

    def lock(self) -> None:
        """Refuses a second process writing the same run (both would do every batch and write it twice).
        The lock is the kernel's (flock), so it ends with its process: a killed run leaves no stale lock."""
        import fcntl

        check_run_file(self.path / ".lock")
        handle = os.fdopen(open_no_follow(self.path / ".lock", os.O_RDWR | os.O_CREAT), "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(handle)
            handle.close()
            raise being_written(f"out={self.path}", holder) from None
        except OSError:  # a file system without flock (some network mounts): run unguarded
            print(f"warning: cannot lock {self.path} on this file system; do not run two processes on it",
                  file=sys.stderr)
        else:  # who holds it is written as soon as it is held, so a run refused at any later moment can name it
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}\n")
            handle.flush()
        self._lock = handle
        HELD_LOCKS[os.path.realpath(self.path)] = handle

    # -- whole files -------------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> Path:
        path = self.path / name
        write_atomic(path, text)
        return path

    def write_json(self, name: str, obj) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, default=str) + "\n")

    def write_config(self, cfg) -> Path:
        """The resolved config, and Hydra's record of the run in .hydra/ (written here, once the run is accepted)."""
        if _HYDRA_RECORD:
            (self.path / ".hydra").mkdir(exist_ok=True)
            for name, text in _HYDRA_RECORD.items():
                self.write_text(f".hydra/{name}", text)
        return self.write_text("config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path:
        return self.write_text(name, frame.to_csv(index=False))

    # -- resuming ----------------------------------------------------------------------------------
    def check_config(self, cfg) -> bool:
        """True when the folder holds batches of this same config; refuses one of another config."""
        digest, settings = fingerprint(cfg)
        stamp = self.path / "fingerprint.json"
        if not stamp.exists():
            return False
        check_run_file(stamp)
        try:
            theirs = json.loads(stamp.read_text(encoding="utf-8"))
            theirs["digest"], dict(theirs["settings"])  # noqa: B018 - the two keys it must have
        except (ValueError, TypeError, KeyError) as exc:
            raise damaged(stamp, f"{type(exc).__name__}: not the fingerprint cce-bench writes") from None
        if theirs["digest"] != digest:
            changed = _differences(theirs["settings"], settings)
            raise UserError(f"out={self.path} holds a run of another config (differs in {', '.join(changed[:5])}): "
                            "pass a new out=DIR, or the same settings to resume that run")
        return True

    def stamp_config(self, cfg) -> None:
        digest, settings = fingerprint(cfg)
        self.write_json("fingerprint.json", {"digest": digest, "settings": settings})
        if (self.path / "run.json").exists():
            (self.path / "run.json").unlink()  # the run is open again until every batch is done

    def _part_lines(self):
        for part in sorted((self.path / "parts").glob("rank*.jsonl")):
            check_run_file(part)  # records read through a link would be another file's; a FIFO would hang
            yield from part_entries(part)

    def finished_batches(self) -> dict[int, dict]:
        """Batch -> its line; a line of any other shape is not a batch this suite wrote: its batch is done again."""
        batches: dict[int, dict] = {}
        for entry in self._part_lines():
            if finished_batch(entry):
                batches.setdefault(int(entry["batch"]), entry)
        return batches

    def finished_pieces(self) -> dict[int, dict[str, dict]]:
        """The pieces of unfinished batches kept so far (batch -> piece key -> its line), see BatchPieces."""
        pieces: dict[int, dict[str, dict]] = {}
        for entry in self._part_lines():
            if finished_piece(entry):
                pieces.setdefault(entry["batch"], {}).setdefault(entry["piece"], entry)
        return pieces

    def append_piece(self, rank: int, batch: int, key: str, records: list[dict], summary: dict) -> None:
        """One finished piece of a batch (a method's records), so that an interrupted batch keeps it."""
        entry = {"batch": batch, "piece": key, "records": records, "summary": summary}
        append_no_follow(self.path / "parts" / f"rank{rank}.jsonl", json.dumps(entry, default=float) + "\n")

    def append_batch(self, rank: int, batch: int, records: list[dict], skipped: list[dict],
                     summary: dict | None = None) -> None:
        """One finished batch; `summary` holds what is aggregated rather than kept per image (curve sums)."""
        entry = {"batch": batch, "records": records, "skipped": skipped, "summary": summary or {}}
        line = json.dumps(entry, default=float) + "\n"
        append_no_follow(self.path / "parts" / f"rank{rank}.jsonl", line)

    def merge(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every finished batch, in batch order: records.jsonl/.csv and skipped.csv are rewritten whole."""
        import pandas as pd

        batches = self.finished_batches()
        records = [r for k in sorted(batches) for r in batches[k]["records"]]
        skipped = [s for k in sorted(batches) for s in batches[k]["skipped"]]
        self.write_text("records.jsonl", "".join(json.dumps(r, default=float) + "\n" for r in records))
        frame = pd.DataFrame(records)
        self.write_csv("records.csv", frame)
        return frame, pd.DataFrame(skipped, columns=["image_id", "reason"])


def has_batch_records(entry) -> bool:
    """What a batch's line and a piece's share: a batch number and records of images."""
    return (isinstance(entry, dict) and isinstance(entry.get("batch"), int) and not isinstance(entry["batch"], bool)
            and entry["batch"] >= 0 and isinstance(entry.get("records"), list)
            and all(isinstance(r, dict) and "image_id" in r for r in entry["records"]))


def finished_batch(entry) -> bool:
    """Whether a part line has the shape append_batch writes: a batch number, its records and skipped images."""
    return (has_batch_records(entry) and "piece" not in entry and isinstance(entry.get("skipped"), list)
            and all(isinstance(r, dict) for r in entry["skipped"]) and isinstance(entry.get("summary", {}), dict))


def finished_piece(entry) -> bool:
    """Whether a part line is a piece as append_piece writes it."""
    return has_batch_records(entry) and isinstance(entry.get("piece"), str) and isinstance(entry.get("summary"), dict)


class BatchPieces:
    """The pieces of one batch (compare: each method's records): those a run interrupted inside the batch kept,
    and a way to keep each new one as it finishes, so that a rerun does only the pieces still missing."""

    def __init__(self, run: RunFolder | None, rank: int, batch: int, kept: dict[str, dict]):
        self.run, self.rank, self.batch, self.kept = run, rank, batch, kept

    def done(self, key: str) -> dict | None:
        return self.kept.get(key)

    def keep(self, key: str, records: list[dict], summary: dict) -> None:
        if self.run is not None:
            self.run.append_piece(self.rank, self.batch, key, records, summary)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

"""A multirun's failed jobs, one line each, whichever launcher ran them.

A job of `-m` that fails says why in one line and leaves that line in the sweep folder
(`.failed/NUM.txt`); the other jobs go on. Jobs may run in other processes or on other machines (SLURM
through submitit), so the lines travel through the shared sweep folder, not through memory: when the
multirun ends, the launching process prints them again and exits with code 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback

FAILED = ".failed"
FAILED_JOBS: list[str] = []  # the lines of this process's last multirun, read back at its end
SAID_HERE: set[str] = set()  # lines of jobs that ran in this process (the local launcher): said already


def record_failure(sweep_dir: Path, job_num: int, line: str) -> None:
    """Leaves a failed job's line for the launching process."""
    from ..safe_files import write_atomic

    folder = Path(sweep_dir) / FAILED
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{job_num}.txt", line + "\n")
    SAID_HERE.add(line)


def collected_failures(sweep_dir: Path) -> list[str]:
    """The failed jobs' lines in job order; the folder that carried them is removed."""
    import shutil

    folder = Path(sweep_dir) / FAILED
    if not folder.is_dir() or folder.is_symlink():
        return []
    files = sorted(folder.glob("*.txt"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
    lines = [p.read_text(errors="replace").strip() for p in files if not p.is_symlink()]
    shutil.rmtree(folder, ignore_errors=True)
    return [line for line in lines if line]


class JobFailures(Callback):
    """Hydra callback (configs/hydra/default.yaml): once the multirun ends, prints the line of every failed
    job that ran elsewhere (the ones that ran here said theirs as they failed)."""

    def on_multirun_start(self, config, **kwargs) -> None:
        FAILED_JOBS.clear()
        SAID_HERE.clear()

    def on_multirun_end(self, config, **kwargs) -> None:
        lines = collected_failures(Path(config.hydra.sweep.dir))
        FAILED_JOBS.extend(lines)
        for line in lines:
            if line not in SAID_HERE:
                print(line, file=sys.stderr)

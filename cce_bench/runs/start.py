"""Starting a run as Hydra starts a job: a single run on the config composed once (its folder checked and
made, Hydra's runtime settings set), or one job of a multirun that Hydra's command line launches. A folder
made for a run that fails (or only plans) and holds no result is removed again."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import RunInterrupted, describe_error
from ..install_check import check_torch_pair


def run_composed(cfg, task: Callable, plan_only: bool = False) -> None:
    """One run on the config composed once (with Hydra's node), started as Hydra starts a job: its folder
    checked and made, Hydra's runtime settings set, the command run. A folder made here that holds no
    result when the run fails (or only plans) is removed, with the empty folders made above it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    from ..composing import without_hydra
    from .run_folder import check_output_folder, nearest_existing

    output = Path(os.path.abspath(str(cfg.out if cfg.out is not None else cfg.hydra.run.dir)))
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.output_dir = str(output)
        cfg.hydra.mode = RunMode.RUN
    HydraConfig.instance().set_config(cfg)
    task_cfg = without_hydra(cfg)
    task_cfg.out = str(output)  # the run's folder as config.yaml records it
    check_output_folder(output, f"out={cfg.out}" if cfg.out is not None else f"the run folder {cfg.hydra.run.dir}")
    check_torch_pair()  # after the config's checks, which need no torch and answer a typo at once
    kept = nearest_existing(output)
    made_here = output != kept or not any(output.iterdir())
    output.mkdir(parents=True, exist_ok=True)
    run_in_folder(task, task_cfg, output, kept, made_here, plan_only)


def run_in_folder(task: Callable, cfg, output: Path, keep: Path, made_here: bool, plan_only: bool = False) -> None:
    """The command run with Hydra's record held for its folder. A folder made for it (`made_here`) that holds
    no result when the run fails, or only plans, is removed with the empty folders above it up to `keep`."""
    from .run_folder import hold_hydra_record, remove_unfinished_start

    hold_hydra_record(cfg)
    try:
        task(cfg)
    except KeyboardInterrupt as exc:
        if made_here:
            remove_unfinished_start(output, keep)
        raise RunInterrupted(interrupted_line(output)) from exc
    except BaseException:
        if made_here:
            remove_unfinished_start(output, keep)
        raise
    if made_here and plan_only:  # a plan writes nothing
        remove_unfinished_start(output, keep)


def interrupted_line(output: Path) -> str:
    """What an interrupted run kept, where, and how to go on; or that nothing had finished."""
    from .run_folder import holds_results

    if output.is_dir() and holds_results(output):
        return (f"interrupted: what had finished is kept in {output}; rerun with out={output} to go on from there "
                "(nothing finished is computed again)")
    where = "" if output.is_dir() else f" (the folder {output} made for it is removed)"
    return f"interrupted before anything was finished: nothing was kept{where}"


def multirun_job(task: Callable, debug: bool, plan_only: bool = False) -> Callable:
    """A job as Hydra's command line runs it (a multirun's point, with any launcher): a failed job is one line
    (also kept in the sweep's folder for the end of the multirun) and the multirun goes on with the next."""
    def run(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig

        from ..composing import check_composed
        from .job_failures import record_failure

        hydra_cfg = HydraConfig.get()
        output = Path(hydra_cfg.runtime.output_dir)
        try:
            check_composed(cfg)  # Hydra's sweeper composed this job's config, the command line did not
            if cfg.out is None:
                cfg.out = str(output)
            run_in_folder(task, cfg, output, output.parent, made_here=not any(output.iterdir()), plan_only=plan_only)
        except BaseException as exc:
            if debug or isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            message, _ = describe_error(exc)
            line = f"cce-bench: error: job {hydra_cfg.job.num} ({hydra_cfg.job.override_dirname}): {message}"
            print(line, file=sys.stderr)
            record_failure(Path(hydra_cfg.sweep.dir), hydra_cfg.job.num, line)

    return run

"""`cce-bench COMMAND [hydra overrides...]`: each command runs over configs/COMMAND.yaml.

A run composes its config once, with Hydra's compose API (cce_bench/composing.py: a bad group choice, key or
value is one line, before torch is imported), and starts on that config (cce_bench/runs/start.py: its folder
checked and made, as Hydra would). Whatever is Hydra's own (-m/--multirun with any launcher, --cfg, --info, its other
flags) goes to Hydra's command line. Every exception becomes one line through `one_line_errors` (`--debug`
shows the traceback instead).
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from .commands import COMMANDS, command_help, usage
from .composing import (
    check_group_choices,
    compose_checked,
    hydra_flags_with_value,
    positional_as_override,
    register_knob_nodes,
)
from .errors import UserError, debugging, describe_error
from .install_check import check_torch_pair
from .resources import config_dir
from .runs.start import multirun_job, run_composed


def fail(message: str, code: int = 2) -> None:
    print(f"cce-bench: error: {message}", file=sys.stderr)
    sys.exit(code)


@contextlib.contextmanager
def one_line_errors(debug: bool):
    """The one place where an exception becomes `cce-bench: error: ...` and an exit code."""
    try:
        yield
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - everything the user could see as a traceback
        if debug and not isinstance(exc, UserError):
            raise
        message, code = describe_error(exc)
        fail(message, code)


def check_launcher(overrides: list[str]) -> None:
    """A SLURM launcher on a machine without SLURM: one line before Hydra makes the multirun's folder."""
    import shutil

    if any(o.replace("+", "") == "hydra/launcher=slurm" for o in overrides) and shutil.which("sbatch") is None:
        raise UserError("hydra/launcher=slurm needs SLURM (sbatch on PATH), which this machine has not: run it on the "
                        "cluster's login node, or leave hydra/launcher=slurm out to run the points here one by one")


def hand_to_hydra(command: str, overrides: list[str], task: Callable, debug: bool, plan_only: bool = False) -> None:
    """Hydra's own command line, for its flags: a multirun, --cfg, --info, --hydra-help, ..."""
    import hydra

    from .runs.job_failures import FAILED_JOBS

    printing = any(o in ("--cfg", "-c", "--info", "-i") for o in overrides)
    if printing and not any(o in ("-m", "--multirun") for o in overrides):
        if any(o in ("--cfg", "-c") for o in overrides):
            return print_config(command, overrides)
        compose_checked(command, [o for i, o in enumerate(overrides) if not o.startswith("-")
                                  and not (i > 0 and overrides[i - 1] in hydra_flags_with_value())], printing=True)
    elif not printing:
        check_launcher(overrides)
        check_torch_pair()
    register_knob_nodes()
    check_group_choices(overrides)  # a family's member becomes a choice before Hydra composes the jobs
    sys.argv = [f"cce-bench {command}", *overrides]
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=command.replace("-", "_"))(
        multirun_job(task, debug, plan_only))
    FAILED_JOBS.clear()
    try:
        app()
        if FAILED_JOBS:
            raise SystemExit(2)  # each failed job has said why in its line
    except ValueError as exc:  # Hydra's own usage errors (e.g. -m together with --cfg)
        if debug:
            raise  # --debug: every error with its traceback, a ValueError from inside the run too
        raise UserError(str(exc).splitlines()[0]) from None


def print_config(command: str, arguments: list[str]) -> None:
    """`--cfg job|hydra|all [--package KEY] [--resolve]` as Hydra prints it, from the config composed and
    checked once (its flags read by Hydra's own argument parser)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import get_args_parser
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import Container, OmegaConf

    from .composing import without_hydra

    args = get_args_parser().parse_intermixed_args(arguments)
    cfg = compose_checked(command, args.overrides, printing=True, with_hydra=True)
    HydraConfig.instance().set_config(cfg)
    shown = {"job": without_hydra, "hydra": Hydra.get_sanitized_hydra_cfg, "all": lambda c: c}[args.cfg](cfg)
    package = None if args.package == "_global_" else args.package
    absent = object()
    selected = shown if package is None else OmegaConf.select(shown, package, default=absent)
    if selected is absent:
        raise UserError(f"--package {package}: no such key in the config (`cce-bench {command} --cfg job` prints "
                        "every key)")
    if not isinstance(selected, Container):
        print("null" if selected is None else selected)
        return
    if args.resolve:
        OmegaConf.resolve(selected)
    print(("" if package is None else f"# @package {package}\n") + OmegaConf.to_yaml(selected), end="")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or debugging()
    plan_only = "--dry-run" in argv
    argv = [a for a in argv if a not in ("--debug", "--dry-run")]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then lets the task's exception through, with its traceback
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
    elif argv[0] in ("-V", "--version"):
        import cce_bench

        print(f"cce-bench {cce_bench.__version__}")
    elif argv[0] in COMMANDS and any(a in ("-h", "--help") for a in argv[1:]):
        print(command_help(argv[0]))
    else:
        with one_line_errors(debug):
            _dispatch(argv[0], argv[1:], debug, plan_only)


def _dispatch(command: str, overrides: list[str], debug: bool, plan_only: bool = False) -> None:
    if command not in COMMANDS:
        raise UserError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    entry = COMMANDS[command]
    if plan_only and not entry.scoring:
        raise UserError(
            f"--dry-run plans the scoring commands ({', '.join(n for n, e in COMMANDS.items() if e.scoring)}); "
            f"{command} has no plan: leave --dry-run out"
        )
    if not entry.hydra:
        check_torch_pair()
        return entry.load().run(overrides)
    if entry.positional:
        overrides = positional_as_override(overrides, entry.positional)
    planning = {"plan_only": True} if plan_only else {}  # only a scoring command plans (checked above)
    task = lambda cfg: entry.load().run(cfg, **planning)  # noqa: E731 - the command's module is imported only to run
    if any(o.startswith("-") for o in overrides):
        return hand_to_hydra(command, overrides, task, debug, plan_only)
    run_composed(compose_checked(command, overrides, with_hydra=True), task, plan_only)


if __name__ == "__main__":
    main()

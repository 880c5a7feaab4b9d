"""`cce-bench COMMAND [hydra overrides...]`: each command is a Hydra app over configs/COMMAND.yaml.

Everything after the command is handed to Hydra unchanged (overrides, -m/--multirun, --cfg job,
hydra.* settings), after the checks Hydra does not make well, done before Hydra creates anything: a
config-group choice that does not exist gets the known choices (and choices match without regard to
case); the config is composed once to name an unknown key's nearest keys and to check every knob against
the schema (cce_bench/schema.py); `out=` is checked. Every exception, here or in the run, becomes one
line through `one_line_errors` (`--debug` shows the traceback instead).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Callable

from .commands import COMMANDS, COMMON_KEYS
from .errors import UserError, debugging, describe_error
from .install_check import check_torch_pair
from .resources import config_dir

def usage() -> str:
    width = max(len(name) for name in COMMANDS) + 2
    lines = [f"  {name:<{width}}{entry.summary}" for name, entry in COMMANDS.items()]
    return "\n".join(["usage: cce-bench COMMAND [KEY=VALUE ...] [-m]", "", "commands:", *lines, "", USAGE_NOTES])


USAGE_NOTES = """Overrides are Hydra's: e.g. `cce-bench sweep param=M model=vgg19 data=imagenet data.root=/data/imagenet
device=cuda`, or a preset: `cce-bench sweep experiment=table1_alpha data.root=/data/imagenet`. Methods go
by one name (cce, gbp, ig, rise, gradcam_pp, scorecam, fullgrad, contrastive_gradcam, appb, calm, and any
method of captum or pytorch-grad-cam as captum_NAME, pytorch_grad_cam_NAME: `cce-bench methods`), their knobs as
method_knobs.NAME.KNOB=VALUE. `cce-bench sweep --cfg job` prints the composed config; `--help`
after a command lists its config groups.
"""


def command_help(command: str) -> str:
    entry = COMMANDS[command]
    if not entry.hydra:
        return "\n".join(
            [
                f"usage: cce-bench {command} {' '.join(k.split()[0] for k in entry.keys)}",
                "",
                entry.description,
                "",
                "examples:",
                *(f"  {e}" for e in entry.examples),
            ]
        )
    return "\n".join([f"usage: cce-bench {command} [KEY=VALUE ...] [-m]", "", entry.description, "", "main keys:",
                      *(f"  {k}" for k in entry.keys), f"  {COMMON_KEYS}", "", "examples:",
                      *(f"  {e}" for e in entry.examples),
                      "", "Every key with its range: docs/knobs.md in the project; Hydra's own help: --hydra-help"])


GROUPS = ("model", "data", "param", "experiment", "metric", "sanity")


def register_method_knobs() -> None:
    """The config `method_knobs: all`: every method's knobs class (cce_bench/method_knobs) under
    method_knobs.NAME, as Hydra structured configs. A new method is found by existing (Hydra has no glob
    in a defaults list)."""
    from hydra.core.config_store import ConfigStore

    from .method_knobs import structured_node

    ConfigStore.instance().store(group="method_knobs", name="all", node=structured_node())


def fail(message: str, code: int = 2) -> None:
    print(f"cce-bench: error: {message}", file=sys.stderr)
    sys.exit(code)


def group_options(group: str) -> dict[str, str]:
    """Known choices of a config group: lower-cased file stem, or the `name:` inside it -> file stem."""
    from omegaconf import OmegaConf

    known = {}
    for path in sorted((config_dir() / group).glob("*.yaml")):
        known[path.stem.lower()] = path.stem
        name = OmegaConf.load(path).get("name")
        if name is not None:
            known.setdefault(str(name).lower(), path.stem)
    return known


def normalise_group_choices(args: list[str]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    result = []
    for text in args:
        if text.startswith("-") or "=" not in text:
            result.append(text)  # Hydra's own flags (-m, --cfg job, ...) and their values
            continue
        try:
            (override,) = parser.parse_overrides([text])
        except OverrideParseException:
            result.append(text)  # Hydra reports its own parse errors
            continue
        group = override.key_or_group
        if group not in GROUPS or override.is_delete() or override.package:
            result.append(text)
            continue
        known = group_options(group)
        sweep = override.is_sweep_override()
        choices = list(override.sweep_string_iterator()) if sweep else [override.get_value_element_as_str()]
        if group == "experiment":  # an optional group: null means none
            known = {**known, "null": "null"}
        for choice in choices:
            if str(choice).lower() not in known:
                raise UserError(
                    f"unknown {group} {choice!r}; known: {', '.join(sorted(set(known.values()) - {'null'}))}"
                )
        fixed = [known[str(c).lower()] for c in choices]
        result.append(text[: text.index("=") + 1] + ",".join(fixed))
    return result


def library_knob_as_addition(text: str) -> str:
    """`method_knobs.captum_Occlusion.strides=[3,8,8]` -> `+method_knobs...`: a library method's knobs are not in
    the composed defaults (they are the library's arguments, checked against its signatures), so Hydra is
    told to add them."""
    from .method_knobs import current_spelling, is_library_method

    match = re.match(r"^\+?method_knobs\.(\w+)\.\w+=", text)
    if not match or not is_library_method(match.group(1)):
        return text
    name = current_spelling(match.group(1))
    if name != match.group(1):
        print(f"cce-bench: warning: method_knobs.{match.group(1)} is now method_knobs.{name}; the old name works "
              "until the next release", file=sys.stderr)
    return "+" + text.lstrip("+").replace(f"method_knobs.{match.group(1)}.", f"method_knobs.{name}.", 1)


# Hydra's flags that take the next argument as their value
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path", "-cp", "--config-name", "-cn",
                    "--config-dir", "-cd", "--experimental-rerun"}


def _hydra_quoted(text: str) -> str:
    """A path as a Hydra quoted string: in Hydra's grammar a backslash escapes only before a quote (or the
    closing quote), so only those runs of backslashes are doubled, then quotes escaped."""
    text = re.sub(r"(\\+)(?='|$)", lambda run: run.group(1) * 2, text)
    return "'" + text.replace("'", "\\'") + "'"


def _positional_as_override(args: list[str], key: str) -> list[str]:
    """`explain a.jpg b.jpg key=value` -> `key=value inputs=['a.jpg','b.jpg']` (paths quoted for Hydra)."""
    images = [a for i, a in enumerate(args) if "=" not in a and not a.startswith("-")
              and not (i > 0 and args[i - 1] in FLAGS_WITH_VALUE)]
    rest = [a for a in args if a not in images]
    if not images:
        return rest
    quoted = ",".join(_hydra_quoted(a) for a in images)
    return [*rest, f"{key}=[{quoted}]"]


def _guarded(task: Callable, debug: bool, kept: Path | None) -> Callable:
    """The task as Hydra runs it: its exceptions go through the same one place as the CLI's own. A folder
    that Hydra made for this run (`kept`: the nearest folder that existed before) and that holds no result
    when the run fails is removed, with the empty folders made above it."""
    def run(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from .runs.cost import PLAN_ONLY
        from .runs.run_folder import hold_hydra_record, remove_unfinished_start

        hydra_cfg = HydraConfig.get()
        output = Path(hydra_cfg.runtime.output_dir)
        multirun = hydra_cfg.mode == RunMode.MULTIRUN  # with any launcher: here, in other processes, on SLURM
        keep = output.parent if multirun else kept  # a multirun's job folder is made by Hydra, in the sweep's
        made_here = keep is not None and output != keep and not any(output.iterdir())
        hold_hydra_record(cfg)
        try:
            if multirun:
                task(cfg)
            else:
                with one_line_errors(debug):
                    task(cfg)
        except BaseException as exc:
            if made_here:
                remove_unfinished_start(output, keep)
            if not multirun or debug or isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            # one line per failed job, and the multirun goes on with the next (exit code 2 at the end)
            from .runs.job_failures import record_failure

            message, _ = describe_error(exc)
            line = f"cce-bench: error: job {hydra_cfg.job.num} ({hydra_cfg.job.override_dirname}): {message}"
            print(line, file=sys.stderr)
            record_failure(Path(hydra_cfg.sweep.dir), hydra_cfg.job.num, line)
            return
        if made_here and PLAN_ONLY["enabled"]:  # a plan writes nothing
            remove_unfinished_start(output, keep)

    return run


def check_launcher(overrides: list[str]) -> None:
    """A SLURM launcher on a machine without SLURM: one line before Hydra makes the multirun's folder."""
    import shutil

    launching = any(o in ("-m", "--multirun") for o in overrides) and not any(o in ("--cfg", "-c") for o in overrides)
    if (
        launching
        and any(o.replace("+", "") == "hydra/launcher=slurm" for o in overrides)
        and shutil.which("sbatch") is None
    ):
        raise UserError("hydra/launcher=slurm needs SLURM (sbatch on PATH), which this machine has not: run it on the "
                        "cluster's login node, or leave hydra/launcher=slurm out to run the points here one by one")


def plain_overrides(overrides: list[str]) -> list[str] | None:
    """The key=value overrides alone (Hydra's flags and their values dropped); None for a multirun, whose
    jobs are checked one by one when they start."""
    if any(o in ("-m", "--multirun") for o in overrides):
        return None
    return [
        o
        for i, o in enumerate(overrides)
        if not o.startswith("-") and not (i > 0 and overrides[i - 1] in FLAGS_WITH_VALUE)
    ]


def compose_checked(command: str, overrides: list[str], printing: bool = False):
    """The command's config composed as Hydra will compose it, with one line for a bad override (a key
    that does not exist gets the nearest keys) and every knob checked against the schema; every mandatory
    value set, unless the config is only `printing` (`--cfg job`, which shows the unset ones as ???)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from .schema import leaf_keys, require, suggest, unset_keys, validate, warnings_for

    def composed(items):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name=command.replace("-", "_"), overrides=items)

    try:
        cfg = composed(overrides)
    except HydraException as exc:
        text = str(exc)
        first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
        bad = re.search(r"Could not override '([^']+)'", text)
        if bad:
            key = bad.group(1)
            rest = [o for o in overrides if not re.match(rf"^[+~]*{re.escape(key)}=", o)]
            try:
                hint = suggest(key, leaf_keys(composed(rest)))
            except HydraException:
                hint = ""
            raise UserError(f"unknown key {key!r}{hint}: `cce-bench {command} --cfg job` prints every key") from None
        merging = re.match(r"Error merging override ([^=]+)=(.*)", first)
        if merging:  # a value of the wrong type for a typed knob (the knobs are structured configs)
            raise UserError(wrong_type(*merging.groups(), exc)) from None
        hint = ": a list of values needs -m (one job per value)" if "Ambiguous value" in first else ""
        raise UserError(f"bad override: {first}{hint}") from None
    validate(cfg)
    if not printing:
        require(unset_keys(cfg))
    for message in warnings_for(cfg):
        print(f"cce-bench: warning: {message}", file=sys.stderr)
    return cfg


def wrong_type(key: str, value: str, exc: Exception) -> str:
    """One line for a value Hydra could not merge into a typed key: the key's rule where it has one, else
    the type the config expects."""
    import yaml

    from .method_knobs import shown
    from .schema import RULES, knob_rules

    try:
        value = shown(yaml.safe_load(value)) if not value.startswith(("[", "{")) else value
    except yaml.YAMLError:
        pass
    parts = key.lstrip("+~").split(".")
    rule = RULES.get(".".join(parts))
    if rule is None and len(parts) == 3 and parts[0] == "method_knobs":
        rule = knob_rules(parts[1]).get(parts[2])
    if rule is not None:
        return f"{key}={value} is not valid: it must be {rule.describe()}"
    cause = exc.__cause__ or exc
    return f"{key}={value} is not valid: {str(cause).splitlines()[0]}"


RUN_MARKERS = ("fingerprint.json", ".cce-bench")  # what a cce-bench output folder holds


def nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def output_path(overrides: list[str]) -> Path | None:
    """Where the run's folder goes: out=, else hydra.run.dir= when literal, else None (the dated default)."""
    for key in ("out=", "hydra.run.dir="):
        given = [o[len(key):] for o in overrides if o.startswith(key)]
        if given and "${" not in given[-1]:
            return Path(given[-1]).expanduser()
    return None


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
                holder = handle.read().strip() or "another process"
                raise UserError(f"{shown} is being written by {holder}: wait for it to finish, or pass another "
                                "out=DIR (a rerun with the same out= after it ends resumes it)") from None
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return  # unreadable or without flock: the run's own lock says so


def check_output_folder(overrides: list[str]) -> None:
    """The run's folder checked before Hydra creates it: it can be made, it is not a file, not another
    tool's folder, and no other process is writing it."""
    given = [o[len("out="):] for o in overrides if o.startswith("out=")]
    if given and not given[-1].strip():
        raise UserError("out= is empty: pass out=DIR (a new folder, or a run's folder to resume it), or leave it out "
                        "for results/runs/<time>_<run name>")
    path = output_path(overrides)
    if path is None:
        check_creatable(Path("results") / "runs", "the run folder results/runs/...")
        return
    shown = f"out={given[-1]}" if given else f"hydra.run.dir={path}"
    if path.exists() and not path.is_dir():
        raise UserError(f"{shown} is a file, not a folder: pass out=DIR")
    check_creatable(path, shown)
    if path.is_dir():
        entries = [e.name for e in path.iterdir() if e.name != ".hydra"]
        if entries and not any((path / m).exists() for m in RUN_MARKERS):
            raise UserError(f"{shown} holds files that are not a cce-bench run (e.g. {sorted(entries)[0]!r}): "
                            "pass a new or empty folder, so that nothing of yours is overwritten")
        check_not_locked(path, shown)


def one_line_errors(debug: bool):
    """The one place where an exception becomes `cce-bench: error: ...` and an exit code."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - everything the user could see as a traceback
            if debug and not isinstance(exc, UserError):
                raise
            message, code = describe_error(exc)
            fail(message, code)

    return guard()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or debugging()
    argv = [a for a in argv if a != "--debug"]
    from .runs.cost import PLAN_ONLY

    PLAN_ONLY["enabled"] = "--dry-run" in argv
    argv = [a for a in argv if a != "--dry-run"]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then lets the task's exception through, with its traceback
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[0] in ("-V", "--version"):
        import cce_bench

        print(f"cce-bench {cce_bench.__version__}")
        return
    if argv[0] in COMMANDS and any(a in ("-h", "--help") for a in argv[1:]):
        print(command_help(argv[0]))
        return
    with one_line_errors(debug):
        _dispatch(argv[0], argv[1:], debug)


def _dispatch(command: str, overrides: list[str], debug: bool) -> None:
    if command not in COMMANDS:
        raise UserError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    entry = COMMANDS[command]
    from .runs.cost import PLAN_ONLY

    if PLAN_ONLY["enabled"] and not entry.scoring:
        raise UserError(
            f"--dry-run plans the scoring commands ({', '.join(n for n, e in COMMANDS.items() if e.scoring)}); "
            f"{command} has no plan: leave --dry-run out"
        )
    if not entry.hydra:
        check_torch_pair()
        return entry.load().run(overrides)
    if entry.positional:
        overrides = _positional_as_override(overrides, entry.positional)
    overrides = normalise_group_choices(overrides)
    overrides = [library_knob_as_addition(o) for o in overrides]

    import hydra

    register_method_knobs()
    plain = plain_overrides(overrides)
    printing = any(o in ("--cfg", "-c", "--info", "-i") for o in overrides)
    if plain is not None and not any(o in ("--help", "-h", "--hydra-help") for o in overrides):
        compose_checked(command, plain, printing)
        if not printing:
            check_output_folder(plain)
    # out=DIR is where the run's files go: Hydra's own copy of the config goes there too.
    if any(o.startswith("out=") for o in overrides) and not any(o.startswith("hydra.run.dir=") for o in overrides):
        overrides.append("hydra.run.dir=" + next(o for o in overrides if o.startswith("out="))[len("out="):])
    planned = output_path(overrides) if plain is not None else None
    kept = nearest_existing(planned if planned is not None else Path("results") / "runs") if plain is not None else None
    check_launcher(overrides)
    check_torch_pair()  # after the config's checks, which need no torch and answer a typo at once
    sys.argv = [f"cce-bench {command}", *overrides]
    config_name = command.replace("-", "_")
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(
        _guarded(lambda cfg: entry.load().run(cfg), debug, kept))
    from .runs.job_failures import FAILED_JOBS

    FAILED_JOBS.clear()
    try:
        app()
        if FAILED_JOBS:
            raise SystemExit(2)  # each failed job has said why in its line
    except ValueError as exc:  # Hydra's own usage errors (e.g. -m together with --cfg)
        if debug:
            raise  # --debug: every error with its traceback, a ValueError from inside the run too
        raise UserError(str(exc).splitlines()[0]) from None


if __name__ == "__main__":
    main()

"""Errors as the user sees them: UserError carries a message that names the problem and the fix;
`describe_error` turns any exception into one such line and an exit code (the CLI's one place)."""
from __future__ import annotations

from collections.abc import Callable

BUG_HINT = ("this is a bug in cce-bench, not in your input: rerun the same command with --debug for the "
            "traceback and report it with the command (README: Reporting a bug)")


def debugging() -> bool:
    """--debug (or CCE_BENCH_DEBUG set to anything but empty, 0 or false): tracebacks instead of one line."""
    import os

    return any(os.environ.get(key, "").strip().lower() not in ("", "0", "false", "no", "off")
               for key in ("CCE_BENCH_DEBUG", "HYDRA_FULL_ERROR"))


class UserError(Exception):
    """Bad input or set-up that the user can fix; the message names the problem and the fix."""


MEMORY_NOTE = "cce-bench memory: "


def is_allocation_failure(exc: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA), MemoryError, or the RuntimeError a CPU allocator raises."""
    allocation = isinstance(exc, RuntimeError) and any(
        t in str(exc) for t in ("can't allocate memory", "out of memory")
    )
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or allocation


class memory_asked_by:
    """`with memory_asked_by("method_knobs.cce.M= (counterfactuals per image)"):` an allocation that fails
    inside says which knob asked for the memory, instead of the general list."""

    def __init__(self, knobs: str):
        self.knobs = knobs

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        if exc is not None and is_allocation_failure(exc) and not any(
                n.startswith(MEMORY_NOTE) for n in getattr(exc, "__notes__", [])):
            exc.add_note(MEMORY_NOTE + self.knobs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Lines for the errors other modules know how to name, added by those modules (install_check: a torch and
# torchvision that do not fit), so that this module, which every other imports, imports none of them.
DESCRIBERS: list[Callable[[BaseException], str | None]] = []


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with the line that says what of the run is kept, where, and how to go on."""


def describe_error(exc: BaseException) -> tuple[str, int]:
    """(one line, exit code) for any exception: 2 for everything but an interrupt (130)."""
    import errno

    if isinstance(exc, UserError):
        return _first_line(exc) if "\n" not in str(exc) else " ".join(str(exc).split()), 2
    if isinstance(exc, KeyboardInterrupt):  # a run's says what it kept (RunInterrupted); before one, nothing was
        return (str(exc) if isinstance(exc, RunInterrupted) else "interrupted before a run started: nothing was "
                "written"), 130
    if is_allocation_failure(exc):
        asked = [n[len(MEMORY_NOTE):] for n in getattr(exc, "__notes__", []) if n.startswith(MEMORY_NOTE)]
        if asked:
            return f"out of memory: pass a smaller {asked[0]}", 2
        return ("out of memory: pass a smaller batch_size=, images_per_batch= or method_knobs.NAME.batch_size= "
                "(or smaller images: data.resize=, data.crop=)"), 2
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left writing {exc.filename or 'the output'}: free some space or pass out=DIR on another disk",
            2,
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENAMETOOLONG, errno.EILSEQ):
        name = str(exc.filename or "a path")
        shown = name if len(name) <= 80 else f"{name[:60]}...({len(name)} characters)"
        return (f"the file system refuses the name {shown} ({exc.strerror}): pass a shorter out=DIR (or rename the "
                "input) in plain characters"), 2
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"permission denied on {exc.filename or 'a file'}: pass out=DIR (or data.root=) to a place you can use",
            2,
        )
    for describe in DESCRIBERS:
        line = describe(exc)
        if line:
            return line, 2
    if type(exc).__module__.split(".")[0] in ("hydra", "omegaconf"):
        return f"bad config: {_first_line(exc)}", 2
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} -- {BUG_HINT}", 2

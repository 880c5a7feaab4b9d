"""Writing into output folders without following links: runs are often started as root on shared
machines, and a link planted in a run folder (`R/.lock -> ~/victim`) must not turn a write into the
folder into a write elsewhere. Every file the suite writes in an output folder goes through here: a
link where a file or one of the folder's own subfolders should be is refused with one line."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import UserError


def link_refused(path: Path) -> UserError:
    return UserError(f"{path} is a symbolic link: cce-bench never writes through links in its output folders; "
                     f"remove it (rm {path}) or pass another out=DIR")


def check_not_link(path: Path) -> None:
    if path.is_symlink():
        raise link_refused(path)


def check_run_file(path: Path) -> None:
    """A file a resumed run reads or appends to is a regular file of the run folder, or absent: a link is
    another place's file, and a FIFO would hang the read."""
    import stat

    check_not_link(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise UserError(f"{path} is {kind}, where the run keeps a file: this run folder was changed by something "
                        f"other than cce-bench; remove it (rm -r {path}) or pass another out=DIR")


def damaged(path: Path, why: str) -> UserError:
    """A file of a run folder that cannot be read back as cce-bench wrote it."""
    return UserError(f"{path} is damaged ({why}): this run folder was changed after cce-bench wrote it; pass a "
                     "new out=DIR (or remove the folder) to run again")


def open_no_follow(path: Path, flags: int, mode: int = 0o644) -> int:
    """os.open with O_NOFOLLOW: a link at `path` is refused (one line), never followed."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise link_refused(path) from None
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """The whole file or nothing: written beside (never through a link), fsynced, then renamed over
    `path`, which must not be a link either; the partial copy is removed on failure."""
    path = Path(path)
    check_not_link(path)
    check_not_link(path.parent) if path.parent.name in RUN_SUBFOLDERS else None
    # one name per process (several ranks may write the same file) made new here: a planted one is refused
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if tmp.is_symlink():
        raise link_refused(tmp)
    payload = data.encode("utf-8", errors="backslashreplace") if isinstance(data, str) else data
    try:
        if tmp.exists():
            tmp.unlink()  # a regular file left by a killed run of this pid: not a link (checked above)
        fd = open_no_follow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists() and not tmp.is_symlink():
            tmp.unlink()


def append_no_follow(path: Path, text: str) -> None:
    """Appends `text` (fsynced) to `path`, created if missing, never through a link."""
    check_not_link(Path(path).parent) if Path(path).parent.name in RUN_SUBFOLDERS else None
    fd = open_no_follow(Path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


# The subfolders a run folder has: a link in their place is refused like a link in a file's.
RUN_SUBFOLDERS = ("parts", ".hydra", "maps")

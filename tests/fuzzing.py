"""Hostile inputs for every key of every command's config and for every file the suite reads, and the property
they must keep (tests/test_fuzz.py runs a bounded number of examples in CI; scripts/fuzz.py runs for minutes).

The property: the checks that run before any model work either refuse the input with one `UserError` line (never
"a bug in cce-bench") or accept it with a value that the key's declared rule accepts; a file reader refuses with
one line (or skips the one map, for a map file), never hangs, never runs code from a pickle.
"""
from __future__ import annotations

import os
import pickle
import signal
import string
import zipfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

from cce_bench.commands import COMMANDS
from cce_bench.composing import compose_checked, rule_of
from cce_bench.errors import UserError
from cce_bench.schema import leaf_keys

# Values that broke a check in some release, and the edges of every kind of rule.
EDGE_VALUES = ["1e-300", "1e30", "-1e30", "1e309", "-1", "0", "-0.0", "0.5", "nan", "inf", "-inf", "", "null", "[]",
               "[1,2]", "[[1]]", "{}", "{a: 1}", "true", "false", "1_000", "0x10", "99999999999999999999", "'a b'",
               "\"x\"", "a=b", "é", "日本語", "${oc.env:HOME}", "${nope}", "[a, b]", "'1'", " 3", "3 ", "~", "tabby",
               "all", "-", "\\", "'", "[", "]"]


def override_values():
    """Hostile right-hand sides of KEY=VALUE, as a user would type them."""
    plain = st.text(alphabet=string.ascii_letters + string.digits + "._-/:", min_size=1, max_size=12)
    anything = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                       max_size=12)
    numbers = st.one_of(st.integers(-(10 ** 20), 10 ** 20).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr))
    lists = st.lists(st.one_of(numbers, plain), max_size=3).map(lambda items: "[" + ",".join(items) + "]")
    return st.one_of(st.sampled_from(EDGE_VALUES), numbers, plain, anything, lists)


@cache
def hydra_commands() -> tuple[str, ...]:
    return tuple(name for name, entry in COMMANDS.items() if entry.hydra)


@cache
def command_keys(command: str) -> tuple[str, ...]:
    """Every key of the command's default config, leaves and the nodes above them (method_knobs.cce, data)."""
    return tuple(sorted({*leaf_keys(compose_checked(command, [], printing=True)), *command_nodes(command)}))


@cache
def command_nodes(command: str) -> frozenset[str]:
    """The keys of the command's default config that hold keys."""
    leaves = leaf_keys(compose_checked(command, [], printing=True))
    return frozenset(leaf.rsplit(".", i)[0] for leaf in leaves for i in range(1, leaf.count(".") + 1))


@st.composite
def command_and_key(draw):
    """A command that composes a config, and one of its keys."""
    command = draw(st.sampled_from(hydra_commands()))
    return command, draw(st.sampled_from(command_keys(command)))


def one_line(message: str, what: str) -> None:
    assert message.strip() and "\n" not in message.strip(), f"{what}: not one line: {message!r}"
    assert "bug in cce-bench" not in message, f"{what}: called a bug: {message}"


def check_override(command: str, key: str, value: str) -> str:
    """compose_checked on KEY=VALUE: a one-line refusal, or a composed value the key's rule accepts. Returns
    'refused' or 'accepted' (for the counts scripts/fuzz.py prints)."""
    override = f"{key}={value}"
    try:
        cfg = compose_checked(command, [override], printing=True)
    except UserError as exc:
        one_line(str(exc), f"cce-bench {command} {override}")
        return "refused"
    from omegaconf import DictConfig, OmegaConf

    composed = OmegaConf.select(cfg, key, default=None)
    if isinstance(composed, DictConfig) or (composed is None and key in command_nodes(command)):
        return "accepted"  # a node given keys (its keys are checked) or emptied (its knobs at their defaults)
    rule = rule_of(key, cfg)
    assert rule is not None, f"cce-bench {command} {override}: accepted {composed!r} for a key with no rule"
    assert rule.accepts(composed), f"cce-bench {command} {override}: accepted {composed!r}, not {rule.describe()}"
    return "accepted"


def check_new_key(command: str, key: str) -> None:
    """`+KEY=1` for a key the command does not have is refused (a typo must not pass silently)."""
    try:
        compose_checked(command, [f"+{key}=1"], printing=True)
    except UserError as exc:
        one_line(str(exc), f"cce-bench {command} +{key}=1")
        return
    raise AssertionError(f"cce-bench {command} +{key}=1 was accepted: a key the command does not have")


# -- files ---------------------------------------------------------------------------------------------------------
class Planted:
    """A pickle that, if it were ever unpickled, would leave a file behind: readers must refuse it unrun."""

    marker = Path("/nonexistent")

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def huge_npy() -> bytes:
    """An .npy header claiming 10^6 x 10^6 float64 (8 TB) over a few bytes of data."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += " " * (118 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\x00" * 64


FILE_KINDS = ("missing", "folder", "fifo", "link", "empty", "bytes", "truncated", "nan", "complex", "constant",
              "other_ids", "pickle", "huge", "json_list", "wrong_rank")


def make_hostile_file(kind: str, folder: Path, suffix: str, noise: bytes, marker: Path) -> Path:
    """A hostile file of `kind` with the reader's `suffix` under `folder`."""
    path = folder / f"input_{kind}{suffix}"  # the kind in the name: a reader can tell what it was given
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        target = folder / f"elsewhere{suffix}"
        target.write_bytes(noise)
        path.symlink_to(target)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bytes":
        path.write_bytes(noise)
    elif kind == "pickle":
        Planted.marker = marker
        path.write_bytes(pickle.dumps({"ids": ["a"], "maps": Planted()}))
    elif kind == "huge":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("a.npy", huge_npy())
    elif kind == "json_list":
        path.write_text("[1, 2, 3]")
    else:
        write_array_file(kind, path, suffix, noise)
    return path


def write_array_file(kind: str, path: Path, suffix: str, noise: bytes) -> None:
    maps = {"nan": np.full((2, 8, 8), np.nan), "complex": np.ones((2, 8, 8), np.complex64),
            "constant": np.ones((2, 8, 8)), "other_ids": np.random.rand(2, 8, 8), "truncated": np.random.rand(2, 8, 8),
            "wrong_rank": np.random.rand(2, 8)}[kind]
    ids = ["../../etc/passwd", "a b"] if kind == "other_ids" else ["chelsea", "coffee"]
    if suffix == ".npz":
        np.savez(path, **dict(zip(ids, maps)))
    elif suffix in (".pt", ".pth"):
        torch.save({"ids": ids, "maps": torch.as_tensor(maps)}, path)
    else:
        path.write_text(str({"images": [], "annotations": [{"bbox": maps.tolist()}], "categories": ids}))
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: max(1, len(data) * (noise[0] if noise else 1) // 256)])


def read_maps(path: Path):
    from cce_bench.data.saved_maps import MapSkipped, SavedMaps

    maps = SavedMaps(str(path))
    for image_id in sorted(maps.ids)[:3]:
        try:
            loaded = maps.load(image_id)
        except MapSkipped:
            continue  # one map skipped, with its reason in skipped.csv: the run goes on
        # what is loaded is a true map: real, finite numbers (a complex one must not lose its imaginary part)
        assert "complex" not in path.name and np.isfinite(loaded).all(), (path, image_id)


def read_checkpoint(path: Path):
    from cce_bench.models.weights import load_state_dict

    load_state_dict(path)


def read_annotations(path: Path):
    from cce_bench.data.coco import load_coco

    load_coco(str(path))


def read_image(path: Path):
    from cce_bench.data.images import read_or_skip

    read_or_skip("input", str(path))  # a bad image is skipped with its reason, not raised


# reader name -> (the key a user gives the file under, suffix, reader)
FILE_READERS = {
    "maps (npz)": (".npz", read_maps), "maps (pt)": (".pt", read_maps), "model.checkpoint": (".pt", read_checkpoint),
    "data.annotations": (".json", read_annotations), "an image": (".jpg", read_image),
}


class Hang(Exception):
    pass


@contextmanager
def no_hang(seconds: int, what: str):
    def stop(signum, frame):
        raise Hang(f"{what}: still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_file(reader: str, kind: str, folder: Path, noise: bytes) -> str:
    """The reader on a hostile file: it returns or raises one UserError line, within 10 s, running no pickle."""
    suffix, read = FILE_READERS[reader]
    marker = folder / "pickle-ran"
    path = make_hostile_file(kind, folder, suffix, noise, marker)
    what = f"{reader} = {kind} file"
    try:
        with no_hang(10, what):
            read(path)
        outcome = "accepted"
    except UserError as exc:
        one_line(str(exc), what)
        outcome = "refused"
    assert not marker.exists(), f"{what}: a pickle in it ran"
    return outcome

"""Each method's knobs, declared once: a dataclass per method, one field per knob with its type, default,
range (a `Rule`) and a line of doc.

`method_knobs/NAME.py` holds the knobs of `explainers/NAME.py` (a method with no knob but `batch_size`
needs no file). These modules import no torch, so the command line composes `method_knobs.NAME.KNOB`
from them (Hydra structured configs), checks every value against its rule, lists the knobs
(`cce-bench methods`, docs/knobs.md) and answers a typo without loading a model; the method's class reads
the same dataclass when it is built (`Explainer.__init__`).
"""
from __future__ import annotations

import dataclasses
import importlib
from functools import cache
from pathlib import Path
from typing import ClassVar

from ..knobs import Knobs, knob, shown
from ..rules import Rule

PACKAGE_DIR = Path(__file__).resolve().parent
EXPLAINERS_DIR = PACKAGE_DIR.parent / "explainers"
# explainers' modules that are machinery, not methods
NOT_METHODS = {"__init__", "base", "layers", "lbfgs", "libraries", "targets", "user_methods"}
# Libraries whose methods go by PREFIX_ClassName (cce_bench/explainers/libraries.py); their knobs are the
# library's arguments, set as method_knobs.PREFIX_ClassName.KNOB and checked against its signatures. A
# prefix is the library's import name, which no name of the suite's own methods starts with (tested).
LIBRARY_PREFIXES = ("captum", "pytorch_grad_cam")
# Former prefixes, still understood with a warning until the next release (gradcam_ met the suite's gradcam_pp).
RENAMED_PREFIXES = {"gradcam": "pytorch_grad_cam"}
# A user's own method by import path: methods=[custom] method_knobs.custom._target_=PACKAGE.MODULE.NAME, its
# arguments as method_knobs.custom.KEY=VALUE (explainers/user_methods.py).
CUSTOM = "custom"
# The entry point group under which an installed package declares methods of its own, each by its name.
ENTRY_POINT_GROUP = "cce_bench.methods"


def batch_size_knob(doc: str = "inputs per pass; null: the method's default for the device (16 on a CPU, "
                               "64 on a GPU unless the method says otherwise)"):
    """Every method's `batch_size`, declared last in each knobs class so that a method's own knobs come first."""
    return knob(None, Rule("whole", 1, 100_000, nullable=True), doc)


@dataclasses.dataclass
class MethodKnobs(Knobs):
    """A method's knobs: subclass it in method_knobs/NAME.py, one field per knob made with `knob(...)`,
    `batch_size: int | None = batch_size_knob()` last (every method has it)."""

    kind: ClassVar[str] = "method"
    group: ClassVar[str] = "method_knobs"


@dataclasses.dataclass
class BatchOnlyKnobs(MethodKnobs):
    """The knobs of a method that has no knob of its own."""

    batch_size: int | None = batch_size_knob()


def method_names() -> list[str]:
    """The suite's methods, one per module of cce_bench/explainers (what the registry will hold)."""
    return sorted(p.stem for p in EXPLAINERS_DIR.glob("*.py") if p.stem not in NOT_METHODS)


def is_library_method(name: str) -> bool:
    """`captum_DeepLift`, `pytorch_grad_cam_EigenCAM` (or its former spelling `gradcam_EigenCAM`): a library's
    method. The suite's own `gradcam_pp` is not, although it starts with a former prefix."""
    if name in method_names():
        return False
    return any(name.startswith(prefix + "_") for prefix in (*LIBRARY_PREFIXES, *RENAMED_PREFIXES))


def plugin_method_names() -> list[str]:
    """The methods installed packages declare under the `cce_bench.methods` entry point group (read from their
    metadata, nothing imported); a name of the suite's own is left out (the suite's wins)."""
    from importlib.metadata import entry_points

    own = set(method_names()) | {CUSTOM}
    return sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP) if point.name not in own})


def has_open_knobs(name: str) -> bool:
    """A method whose knobs are not declared in this package but are the arguments of code elsewhere (a library's
    class, the user's callable, a plugin's): set as method_knobs.NAME.KEY=VALUE and checked against that code's
    signature."""
    return is_library_method(name) or name == CUSTOM or name in plugin_method_names()


def current_spelling(name: str) -> str:
    """A library method's name with a former prefix (`gradcam_EigenCAM`) as it is spelt now."""
    if name in method_names():
        return name
    for old, new in RENAMED_PREFIXES.items():
        if name.startswith(old + "_"):
            return new + name[len(old):]
    return name


@cache
def knobs_of(method: str) -> type[MethodKnobs]:
    """The knobs class of one of the suite's methods: the one MethodKnobs subclass of method_knobs/NAME.py,
    else BatchOnlyKnobs."""
    return declared_knobs(PACKAGE_DIR, __name__, method, MethodKnobs, BatchOnlyKnobs)


def declared_knobs(folder: Path, package: str, name: str, base: type[MethodKnobs], none: type[MethodKnobs]):
    """The one subclass of `base` that `folder`/NAME.py declares (the module of `package`), or `none` where
    there is no such file: how a method's or a metric's knobs are found by existing."""
    if not (folder / f"{name}.py").is_file():
        return none
    module = importlib.import_module(f"{package}.{name}")
    found = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, base)
             and c.__module__ == module.__name__]
    if len(found) != 1:
        raise TypeError(f"{folder.name}/{name}.py must define exactly one {base.__name__} subclass, defines "
                        f"{len(found)}")
    return found[0]


def structured_node() -> dict:
    """`method_knobs`: every method's knobs class under its name, for Hydra's ConfigStore."""
    return {name: knobs_of(name) for name in method_names()}


def args_section(knobs: type[MethodKnobs]) -> str:
    """The knobs as a docstring's `Args:` section (for help() on a method's class)."""
    defaults = knobs.defaults()
    lines = ["Args:"]
    for name, doc in knobs.docs().items():
        lines.append(f"    {name}: {doc} (default {shown(defaults[name])})".rstrip())
    return "\n".join(lines)

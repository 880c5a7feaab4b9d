"""Knobs declared once: a dataclass per owner (a method, a metric, a command, a data source, a model), one
field per knob with its type, default, range (a `Rule`) and a line of doc.

Torch-free: the command line composes these classes as Hydra structured configs, checks every value against
its rule before any work, and lists them (docs/knobs.md, `cce-bench methods`, `cce-bench metrics`).
"""
from __future__ import annotations

import copy
import dataclasses
import typing
from typing import ClassVar

from .errors import UserError
from .rules import Rule


def knob(default, rule: Rule | None = None, doc: str = ""):
    """A knob's field: its default, its range and its line of doc (a list default is copied per instance; a
    class default is a node of its own, made per instance)."""
    metadata = {"rule": rule, "doc": doc}
    if isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=metadata)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class Knobs:
    """Declared knobs: one field per knob made with `knob(...)`. Subclasses say whose they are (`kind`) and
    where the command line sets them (`group`)."""

    kind: ClassVar[str] = "setting"  # what the knobs belong to, for messages
    group: ClassVar[str] = ""        # where the command line sets them: GROUP.NAME.KNOB

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict:
        return dataclasses.asdict(cls())

    @classmethod
    def rules(cls) -> dict[str, Rule]:
        return {f.name: f.metadata["rule"] for f in dataclasses.fields(cls) if f.metadata.get("rule") is not None}

    @classmethod
    def docs(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}

    @classmethod
    def checked(cls, values: dict, method: str, label: str = "") -> Knobs:
        """The knobs from `values` (the rest at their defaults), each checked against its rule: one line
        for a name the method does not have or a value out of its range."""
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise UserError(f"{cls.kind} {method} has no knob {', '.join(unknown)}; its knobs: "
                            f"{', '.join(cls.names()) or 'none'} (set them as {cls.group}.{method}.KNOB=VALUE)")
        for name, rule in cls.rules().items():
            if name in values and not rule.accepts(values[name]):
                raise UserError(f"{label or method} {name}={shown(values[name])} is not valid: it must be "
                                f"{rule.describe()} ({cls.group}.{method}.{name})")
        return cls(**{name: cls.typed(name, value) for name, value in values.items()})

    @classmethod
    def typed(cls, name: str, value):
        """A checked value as its field's type says: a whole number given as 2.0 is 2, a number given as 1 is 1.0
        (the Python API takes either; the methods then compute with the declared type)."""
        hint = typing.get_type_hints(cls).get(name)
        kinds = set(typing.get_args(hint)) if typing.get_args(hint) else {hint}
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        if int in kinds:
            return int(value)
        return float(value) if float in kinds else value


def shown(value) -> str:
    """A value as the command line spells it: null, 'text', 8 for 8.0 (a typed knob turns -1 into -1.0)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)

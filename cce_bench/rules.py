"""A knob's rule: its kind and valid range, with the sentence that describes it and the check.

Torch-free and dependency-free, so that the method knobs (cce_bench/method_knobs) and the config's schema
(cce_bench/schema.py) both declare their ranges with it and the command line checks them before any import
of torch.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Rule:
    kind: str                  # "whole", "number", "bool", "text", "choice", "list", "size", "mapping", "class"
    low: float | None = None
    high: float | None = None
    nullable: bool = False
    choices: Sequence[Any] = ()
    low_open: bool = False     # low < value instead of low <= value
    high_open: bool = False    # value < high instead of value <= high
    odd: bool = False
    all_or_list: bool = False  # a list, or the one word of `choices` (methods=all)
    each: Rule | None = None   # for a list: the rule of its every item

    def describe(self) -> str:
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "size":
            high = _number(self.high) if self.high is not None else "any"
            text = f"a whole number in {_number(self.low or 1)}..{high}, or [height, width] of such numbers"
        elif self.kind == "choice":
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "text":
            text = "a text"
        elif self.kind == "mapping":
            text = "a node of keys ({KEY: VALUE, ...})"
        elif self.kind == "class":
            text = "a class name (tabby, tiger_cat) or index (281)"
        elif self.kind == "list" and self.all_or_list:
            text = f"a list [a,b,...] or {self.choices[0]}"
        elif self.kind == "list" and self.each is not None:
            text = f"a list [a,b,...], each {self.each.describe()}"
        elif self.kind == "list":
            text = "a list [a,b,...]" + (" of " + ", ".join(map(str, self.choices)) if self.choices else "")
        else:
            what = {"whole": "an odd whole number" if self.odd else "a whole number", "number": "a number"}[self.kind]
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
            if self.high is not None:
                bounds.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
            text = what + (" " + " and ".join(bounds) if bounds else "")
        return text + (", or null" if self.nullable else "")

    def accepts(self, value) -> bool:
        if value is None:
            return self.nullable
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str)
        if self.kind == "mapping":
            return isinstance(value, (dict, DictConfig))
        if self.kind == "class":
            return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "list" and self.all_or_list:
            return value in self.choices or isinstance(value, (list, ListConfig))
        if self.kind == "list":
            listed = isinstance(value, (list, tuple, ListConfig))
            return listed and all(v in self.choices for v in value if self.choices) \
                and (self.each is None or all(self.each.accepts(v) for v in value))
        if self.kind == "size":  # one side (the shorter one) or [height, width]
            sides = list(value) if isinstance(value, (list, ListConfig)) else [value]
            return len(sides) in (1, 2) and all(Rule("whole", self.low or 1, self.high).accepts(v) for v in sides)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.kind == "whole" and (not float(value).is_integer() or (self.odd and int(float(value)) % 2 == 0)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

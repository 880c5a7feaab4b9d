"""The config's schema: the type and valid range of every knob, checked on the composed config before any
work (and before Hydra makes the run folder), each failure one line with the range.

Shared keys are listed in RULES; a method's knobs take their types from its constructor's defaults (an
int knob takes whole numbers, a float any number, a bool true/false) and their ranges from the method
itself, which checks them when it is built at the start of the run.
"""
from __future__ import annotations

import difflib
import inspect
import math
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import UserError


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Rule:
    kind: str                  # "whole", "number", "bool", "text", "choice", "list", "size"
    low: float | None = None
    high: float | None = None
    nullable: bool = False
    choices: tuple = ()
    low_open: bool = False     # low < value instead of low <= value
    odd: bool = False

    def describe(self) -> str:
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "size":
            text = "a whole number >= 1, or [height, width]"
        elif self.kind == "choice":
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "text":
            text = "a text"
        elif self.kind == "list":
            text = "a list [a,b,...]" + (" of " + ", ".join(map(str, self.choices)) if self.choices else "")
        else:
            what = {"whole": "an odd whole number" if self.odd else "a whole number", "number": "a number"}[self.kind]
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
            if self.high is not None:
                bounds.append(f"<= {_number(self.high)}")
            text = what + (" " + " and ".join(bounds) if bounds else "")
        return text + (", or null" if self.nullable else "")

    def accepts(self, value) -> bool:
        if value is None:
            return self.nullable
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str)
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "list":
            return isinstance(value, (list, ListConfig)) and (not self.choices or all(v in self.choices for v in value))
        if self.kind == "size":  # one side (the shorter one) or [height, width]
            sides = list(value) if isinstance(value, (list, ListConfig)) else [value]
            return len(sides) in (1, 2) and all(Rule("whole", 1).accepts(v) for v in sides)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.kind == "whole" and (not float(value).is_integer() or (self.odd and int(value) % 2 == 0)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


WHOLE_OR_NULL = Rule("whole", 1, nullable=True)
RULES: dict[str, Rule] = {
    "seed": Rule("whole", 0, 2**32 - 1),
    "deterministic": Rule("bool"),
    "precision": Rule("choice", choices=("fp32", "tf32", "bf16")),
    "model.random_init": Rule("bool"),
    "batch_size": WHOLE_OR_NULL,
    "images_per_batch": WHOLE_OR_NULL,
    "num_workers": Rule("whole", 0),
    "data.n_images": WHOLE_OR_NULL,
    "data.crop": Rule("whole", 1),
    "data.resize": Rule("size"),
    "data.max_box_fraction": Rule("number", 0, 1, low_open=True),
    "data.interpolation": Rule("choice", choices=("nearest", "bilinear", "bicubic")),
    "metric.step": Rule("whole", 1),
    "metric.blur_size": Rule("whole", 1, odd=True),
    "metric.blur_sigma": Rule("number", 0, low_open=True),
    "sanity.modes": Rule("list", choices=("cascading", "independent")),
    "sanity.layers": WHOLE_OR_NULL,
    "sanity.fail_above": Rule("number", -1, 1),
    "sanity.enabled": Rule("bool"),
    "maps_frame": Rule("choice", choices=("auto", "input", "image")),
    "sets": Rule("whole", 1),
    "choices": Rule("whole", 2, 1000),
    "title": Rule("text"),
    "answers": Rule("list"),
    "bootstrap": Rule("whole", 1),
    "confidence": Rule("number", 0, 1, low_open=True),
    "methods": Rule("list"),
    "method": Rule("text"),
    "param.values": Rule("list"),
}


def leaf_keys(cfg, prefix: str = "") -> list[str]:
    """Every dotted key of a config, for suggestions."""
    keys = []
    for key in cfg:
        node = cfg._get_node(key) if isinstance(cfg, DictConfig) else None
        full = f"{prefix}{key}"
        if isinstance(node, DictConfig):
            keys += leaf_keys(node, f"{full}.")
        else:
            keys.append(full)
    return keys


def suggest(key: str, keys: list[str]) -> str:
    """' (did you mean X?)' for a key that is not in the config, matched on its last part and in full."""
    last = key.rsplit(".", 1)[-1].lower()
    by_last = {}
    for k in keys:
        by_last.setdefault(k.rsplit(".", 1)[-1].lower(), []).append(k)
    close = difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.7)
    matches = by_last[close[0]] if close else difflib.get_close_matches(key, keys, n=1, cutoff=0.7)
    return f" (did you mean {' or '.join(matches[:3])}?)" if matches else ""


def _value(cfg, key: str):
    node = OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False, throw_on_resolution_failure=False)
    return node


def knob_rules(name: str) -> dict[str, Rule]:
    """A method's knobs typed by its constructor's annotations: int -> whole numbers, float -> numbers."""
    from .explainers import EXPLAINERS

    kinds = {"int": "whole", "float": "number", "bool": "bool", "str": "text"}
    rules = {}
    for knob, parameter in inspect.signature(EXPLAINERS.get(name).__init__).parameters.items():
        annotation = str(parameter.annotation).replace(" ", "")
        kind = kinds.get(annotation.split("|")[0])
        if knob in ("self", "model") or kind is None:
            continue
        # batch_size: null takes the device's default (runs/runtime.py)
        nullable = "None" in annotation.split("|") or parameter.default is None or knob == "batch_size"
        low = (0 if knob == "seed" else 1) if kind == "whole" else None
        rules[knob] = Rule(kind, low, nullable=nullable)
    return rules


def method_knob_rules(cfg) -> dict[str, Rule]:
    """Every method's knob rules as method_knobs.NAME.KNOB."""
    from .explainers import EXPLAINERS

    return {f"method_knobs.{name}.{knob}": rule for name in (cfg.get("method_knobs") or {}) if name in EXPLAINERS
            for knob, rule in knob_rules(name).items()}


def check_knob_value(name: str, knob: str, value, where: str) -> None:
    """One swept value of a method's knob (param.values=[...]) against the knob's type."""
    rule = knob_rules(name).get(knob)
    if rule is not None and not rule.accepts(value):
        shown = f"'{value}'" if isinstance(value, str) else value
        raise UserError(f"{where}: {shown} is not valid for {knob}: it must be {rule.describe()}")


def unset_keys(cfg, prefix: str = "") -> list[str]:
    """The mandatory values (???) left unset, found without resolving interpolations (Hydra's own, such
    as the run folder, only resolve inside a run)."""
    keys = []
    for key in cfg:
        node = cfg._get_node(key)
        if isinstance(node, DictConfig):
            keys += unset_keys(node, f"{prefix}{key}.")
        elif node._is_missing():
            keys.append(f"{prefix}{key}")
    return keys


def require(missing: list[str]) -> None:
    """One line for the first mandatory value (???) left unset."""
    if missing:
        key = sorted(missing)[0]
        hint = {"data.root": "/path/to/imagenet", "maps": "FOLDER_OF_NPY|FILE.npz|FILE.pt"}.get(key, "VALUE")
        raise UserError(f"{key} is not set: pass {key}={hint}")


def validate(cfg) -> None:
    """Raises UserError for the first knob of the wrong type or out of its range."""
    for key, rule in {**RULES, **method_knob_rules(cfg)}.items():
        value = _value(cfg, key)
        if value == "<absent>" or (isinstance(value, str) and value.startswith("${")):
            continue
        if isinstance(value, str) and value == "???":
            continue  # mandatory values are asked for by name when the run resolves them
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        if not rule.accepts(value):
            shown = "null" if value is None else (f"'{value}'" if isinstance(value, str) else value)
            raise UserError(f"{key}={shown} is not valid: it must be {rule.describe()}")
    methods = _value(cfg, "methods")
    if isinstance(methods, (list, ListConfig)):
        if len(methods) == 0:
            raise UserError("methods=[] is empty: name at least one method, e.g. methods=[gradcam_pp,cce]")
        twice = sorted({str(n) for n in methods if list(methods).count(n) > 1})
        if twice:
            raise UserError(f"methods names {', '.join(twice)} twice: name each method once")
    swept, method, values = _value(cfg, "param.name"), _value(cfg, "method"), _value(cfg, "param.values")
    if isinstance(swept, str) and isinstance(method, str) and isinstance(values, (list, ListConfig)):
        from .explainers import EXPLAINERS

        if method in EXPLAINERS:
            for value in values:
                check_knob_value(method, swept, value, "param.values")

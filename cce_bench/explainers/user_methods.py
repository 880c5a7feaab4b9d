"""Your own method beside the suite's, without a fork.

- From the command line: `methods=[custom] method_knobs.custom._target_=my_pkg.saliency.edge_map`, where the
  target is a function `edge_map(model, images, targets, **kwargs) -> maps [B, H, W]`, a class whose instances
  are called that way (built with its own keyword arguments), or a subclass of the suite's `Explainer`.
  Further keyword arguments are `method_knobs.custom.KEY=VALUE`, checked against its signature before any
  work; its row in every table carries its name (`edge_map`).
- From an installed package: a method declared under the `cce_bench.methods` entry point group goes by the
  entry point's name in every command, and `cce-bench methods` lists it. In the package's pyproject.toml:

      [project.entry-points."cce_bench.methods"]
      edge_map = "my_pkg.saliency:edge_map"

Maps come back to the suite's one rule: relu, the input's size, min-max per map. A map of the wrong shape, a
callable that raises or one that cannot be imported is one line naming the method, never a traceback.
"""
from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any

import torch

from ..errors import UserError, debugging, is_allocation_failure
from ..method_knobs import CUSTOM, ENTRY_POINT_GROUP, plugin_method_names
from .base import EXPLAINERS, Explainer

TARGET = "_target_"
CALLED_WITH = ("model", "images", "targets")  # what the suite passes, in this order


def import_target(path: str, where: str) -> Any:
    """`package.module.NAME` (or `package.module:NAME`) -> that object; one line naming `where` when it cannot."""
    module_name, _, attribute = str(path).replace(":", ".").rpartition(".")
    if not module_name or not attribute:
        raise UserError(f"{where}={path!r} is not an import path: pass PACKAGE.MODULE.NAME")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raises on import is theirs to see
        if debugging():
            raise
        raise UserError(f"{where}={path}: cannot import {module_name} ({type(exc).__name__}: {exc}); put its package "
                        "on PYTHONPATH or install it") from None
    except SystemExit as exc:  # a script's sys.exit() at import: not the run's own exit
        raise UserError(f"{where}={path}: importing {module_name} called sys.exit({exc.code!r}): point it at a "
                        "module that defines the method, not at a script") from None
    if not hasattr(module, attribute):
        raise UserError(f"{where}={path}: module {module_name} has no {attribute}")
    return getattr(module, attribute)


def keyword_arguments(function, skip: int) -> dict:
    """The keyword arguments of `function` after its first `skip` parameters, with their defaults (None where
    it has none)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())[skip:]
    except (TypeError, ValueError):
        return {}
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default) for p in parameters
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


class UserMethod(Explainer):
    """A callable of the user's as a method of the suite: one subclass per callable (`user_method`)."""

    cost = ""
    origin = ""            # where it comes from, for messages: "my_pkg.saliency.edge_map"
    function: Any = None   # the callable, or the class whose instances are
    is_class = False
    target_knobs: dict = {}  # custom's {"_target_": path}, kept in knobs() so that the method can be built again
    call: Any = None       # an instance of the user's class (is_class), called as a function is

    @classmethod
    def arguments(cls) -> dict:
        if cls.is_class:
            return keyword_arguments(cls.function.__init__, 1)  # after self
        return keyword_arguments(cls.function, len(CALLED_WITH))

    @classmethod
    def knob_names(cls) -> list[str]:
        return [*cls.target_knobs, *cls.arguments(), "batch_size"]

    @classmethod
    def knob_rules(cls) -> dict:
        return cls.knobs_class.rules()

    def __init__(self, model, **knobs):
        super().__init__(model, batch_size=knobs.pop("batch_size", None))
        for key in self.target_knobs:
            knobs.pop(key, None)
        self.settings = {**self.arguments(), **knobs}
        given = {k: v for k, v in knobs.items()}
        self.call = self.guarded(lambda: self.function(**given)) if self.is_class else None

    def knobs(self) -> dict:
        return {**self.target_knobs, **self.settings, "batch_size": self.batch_size}

    def guarded(self, work):
        """The user's code run; what it raises is one line naming the method (--debug: the traceback)."""
        try:
            return work()
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: its failure is this method's, said in one line
            if is_allocation_failure(exc) or debugging():
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise UserError(f"method {self.label} ({self.origin}) raised {type(exc).__name__}: {first}") from None
        except SystemExit as exc:  # the user's code ending the process would lose the run's finished work
            raise UserError(f"method {self.label} ({self.origin}) called sys.exit({exc.code!r}): a method must "
                            "return maps or raise") from None

    def _attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.is_class:
            made = self.guarded(lambda: self.call(self.model, images, targets))
        else:
            made = self.guarded(lambda: self.function(self.model, images, targets, **self.settings))
        maps = torch.as_tensor(made.detach() if isinstance(made, torch.Tensor) else made)
        if maps.dim() == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        if maps.dim() != 3 or maps.shape[0] != len(images):
            raise UserError(f"method {self.label} ({self.origin}) returned maps of shape {tuple(maps.shape)}: it must "
                            f"return one map per image, [B, H, W] with B = {len(images)}")
        if maps.is_complex() or not (maps.is_floating_point() or maps.dtype in (torch.int32, torch.int64,
                                                                                  torch.uint8, torch.bool)):
            raise UserError(f"method {self.label} ({self.origin}) returned maps of dtype {maps.dtype}: return real "
                            "numbers")
        return maps.to(images.device).float()


class FromTarget:
    """Mixed into a user's own Explainer subclass named by `_target_`: it keeps the path among its knobs."""

    target_knobs: dict = {}

    def __init__(self, model, **knobs):
        for key in self.target_knobs:
            knobs.pop(key, None)
        super().__init__(model, **knobs)  # type: ignore[call-arg]  # the user's Explainer subclass

    def knobs(self) -> dict:
        return {**self.target_knobs, **super().knobs()}  # type: ignore[misc]


def user_method(found: Any, name: str, label: str, origin: str, target_knobs: dict | None = None) -> type[Explainer]:
    """The method class of a user's object: an Explainer subclass as it is (named `name`), a class or a function
    wrapped in a UserMethod; anything else is one line."""
    extra = {"name": name, "label": label, "origin": origin, "target_knobs": dict(target_knobs or {})}
    if inspect.isclass(found) and issubclass(found, Explainer):
        return type(f"User{found.__name__}", (FromTarget, found), {**extra, "label": found.label or label})
    if inspect.isclass(found) or callable(found):
        return type(f"User{label}", (UserMethod,), {**extra, "function": staticmethod(found) if not
                    inspect.isclass(found) else found, "is_class": inspect.isclass(found)})
    raise UserError(f"method {name} ({origin}) is a {type(found).__name__}, not a function, a class or an Explainer "
                    "subclass: point it at a function NAME(model, images, targets) -> maps [B, H, W]")


class Custom(Explainer):
    """`methods=[custom]`: the user's callable named by `method_knobs.custom._target_`; building it gives the
    method class of that callable (`user_method`), whose rows carry the callable's name."""

    name = CUSTOM
    label = CUSTOM

    @classmethod
    def resolved(cls, knobs: dict) -> type[Explainer]:
        path = knobs.get(TARGET)
        if not path:
            raise UserError(f"methods=[{CUSTOM}] needs its callable: pass method_knobs.{CUSTOM}.{TARGET}="
                            "PACKAGE.MODULE.NAME (a function NAME(model, images, targets) -> maps [B, H, W])")
        found = import_target(str(path), f"method_knobs.{CUSTOM}.{TARGET}")
        return user_method(found, CUSTOM, custom_label(str(path)), str(path), {TARGET: str(path)})

    @classmethod
    def unknown_knobs(cls, knobs: dict) -> list[str]:
        return cls.resolved(knobs).unknown_knobs({k: v for k, v in knobs.items() if k != TARGET})

    @classmethod
    def knob_names(cls) -> list[str]:
        return [TARGET, "batch_size", "and the callable's arguments"]

    def __new__(cls, model, **knobs):  # the callable's own method class, built with its knobs
        return cls.resolved(knobs)(model, **knobs)


def custom_label(path: str) -> str:
    """How tables name a custom method: the callable's own name (`my_pkg.saliency.edge_map` -> `edge_map`)."""
    return str(path).replace(":", ".").rsplit(".", 1)[-1]


def plugin_method(name: str) -> type[Explainer]:
    """The method an installed package declares under `name` in the `cce_bench.methods` entry point group."""
    points = [p for p in entry_points(group=ENTRY_POINT_GROUP) if p.name == name]
    if not points:
        raise UserError(f"no installed package declares the method {name}")
    point = points[0]
    try:
        found = point.load()
    except Exception as exc:  # noqa: BLE001 - the plugin's import error is its own, said in one line
        if debugging():
            raise
        raise UserError(f"method {name} (entry point {point.value}) cannot be loaded: {type(exc).__name__}: {exc}; "
                        "reinstall the package that declares it") from None
    return user_method(found, name, name, f"entry point {point.value}")


EXPLAINERS.add_source(CUSTOM, lambda: [CUSTOM], lambda name: Custom)
EXPLAINERS.add_source("entry points", plugin_method_names, plugin_method)

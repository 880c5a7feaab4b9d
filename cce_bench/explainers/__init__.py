"""Saliency methods by name, all with the call `attribute(images, target)` -> maps [B, H, W].

Every module of this package is imported here, so a method is registered by existing: a new method is
one file (a class under `@register`, named after its module) plus its knobs, cce_bench/method_knobs/NAME.py.
"""
import importlib
import pkgutil

from .base import (
    EXPLAINERS,
    Explainer,
    MethodUnavailable,
    SettingMaps,
    create_explainer,
    postprocess,
    register,
    resolve_targets,
)
from .targets import Contrast, Explanation

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from .cce import CCE, ContrastiveMaps  # noqa: E402

__all__ = [
    "CCE",
    "Contrast",
    "ContrastiveMaps",
    "EXPLAINERS",
    "Explainer",
    "Explanation",
    "MethodUnavailable",
    "SettingMaps",
    "create_explainer",
    "postprocess",
    "register",
    "resolve_targets",
]

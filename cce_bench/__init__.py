"""cce-bench: benchmarks of saliency-map explanations, starting with the tables of the CCE paper.

The public names are imported when first used (PEP 562), so that the command line answers `--help`, a
typo or a config error without loading torch and the methods first.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {"explain": ".api", "compare": ".api", "insertion_deletion": ".api", "load_images": ".api",
           "InputSettings": ".models",
           "UserError": ".errors", "EXPLAINERS": ".explainers", "Contrast": ".explainers", "METRICS": ".metrics",
           "create_metric": ".metrics",
           "create_explainer": ".explainers", "MODELS": ".models", "PixelInput": ".models", "create_model": ".models"}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cce_bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

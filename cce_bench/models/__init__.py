"""Image classifiers by name, one module per model (as timm does): each returns a `Classifier` that takes
normalised images and returns logits, and carries its `ModelFacts` (the layers methods hook into, the
per-model settings of methods), so that adding a model is one module here and one configs/model/NAME.yaml.

The pieces: `facts` (the registry and the facts record), `classifier` (the wrapper the suite runs),
`passes` (the count of model inputs), `precision` (fp32/tf32/bf16), `weights` (loading state dicts),
`inputs` (a model's input size, resize, interpolation, mean and std), `target_layer` (the CAM layer found
when none is named); `families` and `custom` build models by name and by import path.
Names are imported when first used (PEP 562), so that the config's schema reads PRECISIONS without torch.
"""
from __future__ import annotations

import importlib

_PUBLIC = {"IMAGENET_MEAN": "classifier", "IMAGENET_STD": "classifier", "Classifier": "classifier",
           "PixelInput": "classifier", "batched_logits": "classifier", "class_index": "classifier",
           "imagenet_categories": "classifier", "categories_for": "classifier",
           "check_logits": "classifier", "InputSettings": "inputs", "find_target_layer": "target_layer",
            "MODELS": "facts", "ModelFacts": "facts", "create_model": "facts",
           "facts_of": "facts", "register_model": "facts", "PassCount": "passes", "PRECISIONS": "precision",
           "set_precision": "precision", "precision_in_effect": "precision", "torchvision_imagenet_network": "weights"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_PUBLIC[name]}")
    if name == "MODELS":
        module.discover()
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

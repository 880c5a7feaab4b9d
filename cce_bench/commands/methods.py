"""`cce-bench methods [model=NAME]`: every method a command can take, by name: the suite's ten, and each
method of captum and pytorch-grad-cam (explainers/libraries.py), with what a map costs and whether it runs
on the chosen model with its default knobs (the model's architecture is built without weights to tell)."""
from __future__ import annotations

import pandas as pd

from ..errors import UserError
from ..explainers import EXPLAINERS
from ..explainers.base import COST_CLASSES
from ..explainers.user_methods import TARGET
from ..method_knobs import CUSTOM, shown
from ..models import MODELS, create_model
from ..runs.runtime import all_methods
from ..tables import to_markdown
from . import PlainCommand


def methods_listing(model) -> pd.DataFrame:
    rows = []
    for source, names in (("cce-bench", all_methods()), ("captum", EXPLAINERS.family_names("captum")),
                          ("pytorch-grad-cam", EXPLAINERS.family_names("pytorch_grad_cam")),
                          ("an installed package", EXPLAINERS.source_names("entry points")),
                          ("your code", [CUSTOM])):
        for name in names:
            cls = EXPLAINERS.get(name)
            why_not = cls.unavailable_on(model)
            rows.append({"name": name, "label": cls.label, "from": source, "cost": cls.cost,
                         f"on {model.name}": "runs" if why_not is None else why_not, "knobs": knob_summary(cls)})
    return pd.DataFrame(rows)


def knob_summary(cls) -> str:
    """The suite's methods: each knob with its default (ranges: docs/knobs.md); a library's: the knobs the
    suite adds to the library's own arguments; a user's or a plugin's: its callable's arguments."""
    if getattr(cls, "library", ""):
        return ", ".join([*cls.added_knobs(), "and the library's arguments"])
    if cls.name == CUSTOM:
        return f"{TARGET} (PACKAGE.MODULE.NAME), batch_size, and the callable's arguments"
    if hasattr(cls, "arguments"):
        return ", ".join(f"{k}={shown(v)}" for k, v in {**cls.arguments(), "batch_size": None}.items())
    return ", ".join(f"{k}={shown(v)}" for k, v in cls.knobs_class.defaults().items())


def run_methods(args: list[str]) -> pd.DataFrame:
    model_name = "efficientnet_lite0"
    for arg in args:
        if not arg.startswith("model=") or not arg[len("model="):]:
            raise UserError(f"cce-bench methods takes model=NAME only, not {arg!r}: e.g. cce-bench methods model=vgg19")
        model_name = arg[len("model="):]
    MODELS.get(model_name)  # an unknown model: one line with the known ones
    table = methods_listing(create_model(model_name, random_init=True))
    costs = "\n".join(f"- {name}: {text}" for name, text in COST_CLASSES.items())
    print(
        "Methods by name (methods=[...], method=...; knobs as "
        f"method_knobs.NAME.KNOB=VALUE):\n\n{to_markdown(table)}\n\n"
        f"Cost classes:\n{costs}\n\nThe library methods' knobs are the library's own arguments "
        "(docs/beyond.md: Library methods); your own method: methods=[custom] "
        "method_knobs.custom._target_=PACKAGE.MODULE.NAME, or a package's `cce_bench.methods` entry point "
        "(docs/methods.md: Your own method)."
    )
    return table


COMMAND = PlainCommand("methods", run_methods)

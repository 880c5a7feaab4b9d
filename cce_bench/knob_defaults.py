"""Each method's knob defaults, read from its constructor's signature without importing it.

The constructor is the one place a default is written. The command line needs the defaults to compose a
config (method_knobs.NAME.KNOB) before it knows whether the run will load torch and the methods, so it
reads them from the source: the `__init__` of the `@register` class in cce_bench/explainers/NAME.py, its
keyword defaults as literals. A test checks that this agrees with `inspect.signature` of the imported
class for every method.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

EXPLAINERS_DIR = Path(__file__).resolve().parent / "explainers"
# Libraries whose methods go by PREFIX_ClassName (cce_bench/explainers/libraries.py); their knobs are set as
# +method_knobs.PREFIX_ClassName.KNOB (the command line adds the +: they are not in the composed defaults).
LIBRARY_PREFIXES = ("captum", "gradcam")
NOT_METHODS = {"__init__", "base", "layers", "libraries"}  # the package's modules that are machinery, not methods


def method_modules() -> list[str]:
    """The method names, one per module of cce_bench/explainers (what the registry will hold)."""
    return sorted(p.stem for p in EXPLAINERS_DIR.glob("*.py") if p.stem not in NOT_METHODS)


def is_library_method(name: str) -> bool:
    """`captum_DeepLift`, `gradcam_EigenCAM`: a library's method (the suite's own `gradcam_pp` is not)."""
    return name.partition("_")[0] in LIBRARY_PREFIXES and name not in method_modules()


@lru_cache(maxsize=None)
def method_defaults(name: str) -> dict:
    """{knob: default} of the registered class of explainers/NAME.py, in signature order."""
    classes = _classes(name)
    registered = [c for c in classes.values() if any(_decorator_name(d) == "register" for d in c.decorator_list)]
    if len(registered) != 1:
        raise ValueError(f"explainers/{name}.py must hold exactly one @register class, holds {len(registered)}")
    init = _constructor(registered[0], {**_classes("base"), **classes})
    if init is None:
        raise ValueError(f"explainers/{name}.py: the method class (or a base class in its module) must define "
                         "__init__ with its knobs")
    args = init.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    knobs = [a.arg for a in positional + args.kwonlyargs if a.arg not in ("self", "model")]
    missing = [k for k in knobs if k not in defaults]
    if missing:
        raise ValueError(f"explainers/{name}.py: knob(s) {', '.join(missing)} need a default")
    try:
        values = {k: ast.literal_eval(defaults[k]) for k in knobs}
    except ValueError:
        raise ValueError(f"explainers/{name}.py: every knob default must be a literal (number, text, None, "
                         "list or tuple)") from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _classes(module: str) -> dict[str, ast.ClassDef]:
    tree = ast.parse((EXPLAINERS_DIR / f"{module}.py").read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _constructor(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]):
    """The class's own __init__, else the first one up its bases (in its module, or the base Explainer)."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        return init
    for base in cls.bases:
        name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
        if name in classes and classes[name] is not cls:
            found = _constructor(classes[name], classes)
            if found is not None:
                return found
    return None


def _decorator_name(node) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")

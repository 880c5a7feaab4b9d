"""The config's schema: the valid range of every knob, checked on the composed config before any work (and
before Hydra makes the run folder), each failure one line with the range.

Every key's rule is declared with its type, default and doc in a settings or knobs class (cce_bench/settings,
cce_bench/method_knobs, cce_bench/metric_knobs); Hydra composes those classes, so each node of the composed
config knows its class and the rules are read from it. A library method's knobs are checked against its code's
signature. A few values are legal but degenerate: WARNINGS prints a line for each and lets the run go on.
"""
from __future__ import annotations

import difflib

from omegaconf import DictConfig, ListConfig, OmegaConf

from .choices import SANITY_MODES
from .errors import UserError
from .method_knobs import has_open_knobs, knobs_of, method_names, shown
from .metric_knobs import metric_names
from .rules import Rule
from .settings import declared_rules


def _crop_fits_resize(cfg) -> str | None:
    crop, resize = _value(cfg, "data.crop"), _value(cfg, "data.resize")
    if not isinstance(crop, int) or isinstance(resize, str) or resize == "<absent>":
        return None
    sides = list(resize) if isinstance(resize, (list, ListConfig)) else [resize]
    if all(isinstance(side, int) for side in sides) and min(sides) < crop:
        return (f"data.resize={resize} is smaller than data.crop={crop}: the centre crop would be padded with black; "
                f"pass data.resize >= data.crop (ImageNet's: data.resize=256 data.crop=224)")
    return None


def _empty_out(cfg) -> str | None:
    out = _value(cfg, "out")
    if isinstance(out, str) and not out.strip():
        return ("out= is empty: pass out=DIR (a new folder, or a run's folder to resume it), or leave it out for "
                "results/runs/<time>_<run name>")
    return None


def _no_sanity_mode(cfg) -> str | None:
    modes = _value(cfg, "metric_knobs.sanity.modes")
    if isinstance(modes, (list, ListConfig)) and len(modes) == 0:
        return f"metric_knobs.sanity.modes=[] is empty: name at least one of {', '.join(SANITY_MODES)}"
    return None


def _few_curve_points(cfg) -> str | None:
    step, crop = _value(cfg, "metric_knobs.insertion_deletion.step"), _value(cfg, "data.crop")
    if isinstance(step, int) and isinstance(crop, int) and crop * crop / step < 4:  # fewer than 5 points
        return (f"metric_knobs.insertion_deletion.step={step} gives {crop * crop // step + 1} points on each "
                "insertion/deletion curve: the "
                "AUC is that of a few straight segments (the paper's step is 224)")
    return None


def _few_bootstrap_draws(cfg) -> str | None:
    draws = _value(cfg, "bootstrap")
    if isinstance(draws, int) and draws < 200:
        return f"bootstrap={draws} resamples: the interval's ends move from one seed to the next (1000 is usual)"
    return None


# Cross-key checks that refuse a run, and values that are legal but degenerate (a warning line each).
REFUSALS = (_empty_out, _crop_fits_resize, _no_sanity_mode)
WARNINGS = (_few_curve_points, _few_bootstrap_draws)


def curve_warnings(cfg) -> list[str]:
    """The curve-length warning once the model has filled in data.crop (null in the config: the model's side)."""
    message = _few_curve_points(cfg)
    return [message] if message else []


def check_cross_keys(cfg) -> None:
    """The refusals that read two keys at once (data.resize against data.crop, ...)."""
    for refusal in REFUSALS:
        message = refusal(cfg)
        if message:
            raise UserError(message)


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
    by_last: dict[str, list[str]] = {}
    for k in keys:
        by_last.setdefault(k.rsplit(".", 1)[-1].lower(), []).append(k)
    close = difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.7)
    matches = by_last[close[0]] if close else difflib.get_close_matches(key, keys, n=1, cutoff=0.7)
    return f" (did you mean {' or '.join(matches[:3])}?)" if matches else ""


def _value(cfg, key: str):
    node = OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False, throw_on_resolution_failure=False)
    return node


def knob_rules(name: str) -> dict[str, Rule]:
    """A method's knob rules: the suite's methods' from their knobs classes (cce_bench/method_knobs, no
    torch), a library method's from its adapter (which loads the library)."""
    if name in method_names():
        return knobs_of(name).rules()
    from .explainers import EXPLAINERS

    return EXPLAINERS.get(name).knob_rules()


def library_knob_rules(cfg) -> dict[str, Rule]:
    """The rules of the knobs the suite adds to a library's method (method_knobs.captum_X.baselines, ...): the
    library's own arguments are checked against its signature."""
    names = [str(n) for n in (cfg.get("method_knobs") or {}) if has_open_knobs(str(n))]
    return {f"method_knobs.{name}.{knob}": rule for name in names for knob, rule in knob_rules(name).items()}


def check_knob_value(name: str, knob: str, value, where: str) -> None:
    """One swept value of a method's knob (param.values=[...]) against the knob's rule."""
    rule = knob_rules(name).get(knob)
    if rule is not None and not rule.accepts(value):
        raise UserError(f"{where}: {shown(value)} is not valid for {knob}: it must be {rule.describe()}")


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
        hint = {"data.root": "/path/to/imagenet", "maps": "FOLDER_OF_NPY|FILE.npz|FILE.pt",
                "model._target_": "PACKAGE.MODULE.CALLABLE (returning the nn.Module)"}.get(key, "VALUE")
        raise UserError(f"{key} is not set: pass {key}={hint}")


def validate(cfg) -> None:
    """Raises UserError for the first knob out of its range: the keys the config's classes declare first, then
    the cross-key refusals, then a library method's knobs (which imports the library, and with it torch)."""
    _check_knob_nodes(cfg)
    _check_rules(cfg, declared_rules(cfg))
    check_cross_keys(cfg)
    _check_library_knob_names(cfg)
    _check_rules(cfg, library_knob_rules(cfg))
    _check_method_lists(cfg)
    _check_metrics(cfg)


def _check_metrics(cfg) -> None:
    """`metrics=[...]`: each name in the metric registry (a Quantus metric imports quantus), its knobs checked
    against the metric's signature; a metric's knobs without the metric in the list."""
    chosen = _value(cfg, "metrics")
    names = [str(n) for n in chosen] if isinstance(chosen, (list, ListConfig)) else []
    library = [str(n) for n in (cfg.get("metric_knobs") or {}) if str(n) not in metric_names()]
    if not names and not library:
        return
    from .metrics import METRICS
    from .metrics.quantus_metrics import check_metric_knobs

    for name in [*names, *library]:
        METRICS.get(name)  # an unknown name: one line with the nearest
    for name in library:  # a library metric's arguments (not in the composed defaults)
        if name not in names:
            raise UserError(f"metric_knobs.{name} is set but {name} is not in metrics=[...]: add it, or drop its knobs")
        check_metric_knobs(name, dict(cfg.metric_knobs[name] or {}))


def _check_library_knob_names(cfg) -> None:
    """The knobs of a method whose knobs are another's code's arguments (method_knobs.captum_X.KNOB, a custom
    method's, a plugin's: not in the composed defaults) against that code's signatures; a library method that
    does not exist, with the nearest name."""
    knobs = cfg.get("method_knobs") or {}
    for name in knobs:
        if str(name) in method_names():
            continue  # the suite's own: a closed node, its names checked by Hydra and its values by the rules
        from .explainers import EXPLAINERS

        cls = EXPLAINERS.get(str(name))  # not a method (a typo, an unknown member): one line with the nearest name
        given = dict(knobs[name]) if isinstance(knobs[name], DictConfig) else {}
        if hasattr(cls, "resolved"):  # custom: the callable its _target_ names, imported to read its signature
            cls = cls.resolved(given)
        unknown = cls.unknown_knobs(given)
        if unknown:
            raise UserError(f"method_knobs.{name} has no knob {', '.join(unknown)}: {cls.label}'s knobs are "
                            f"{', '.join(cls.knob_names())} (its code's arguments)")


def _resolved(cfg, key: str):
    """A key's value with its interpolations resolved; one that cannot be (`batch_size=${oc.env:HOME}`) is one line.
    Hydra's own (`${hydra:...}`) resolve only inside a run: left to it."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False)
    except OmegaConfBaseException as exc:
        if "hydra" in str(exc):
            return "<absent>"
        raise UserError(f"{key}: its interpolation cannot be resolved here ({str(exc).splitlines()[0]}): pass a "
                        "plain value") from None


def _check_rules(cfg, rules: dict[str, Rule]) -> None:
    for key, rule in rules.items():
        value = _resolved(cfg, key)
        if value == "<absent>" or (isinstance(value, str) and value.startswith("${")):
            continue
        if isinstance(value, str) and value == "???":
            continue  # mandatory values are asked for by name when the run resolves them
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        if not rule.accepts(value):
            raise UserError(f"{key}={shown(value)} is not valid: it must be {rule.describe()}")


def _check_knob_nodes(cfg) -> None:
    """method_knobs.NAME and metric_knobs.NAME hold a method's or metric's knobs: one value there (method_knobs.cce=3)
    would leave the method without any."""
    for group in ("method_knobs", "metric_knobs"):
        nodes = _value(cfg, group)
        if not isinstance(nodes, DictConfig):
            continue
        for key in nodes:
            name = str(key)
            value = OmegaConf.select(nodes, name, throw_on_resolution_failure=False)
            if value is not None and not isinstance(value, DictConfig):
                raise UserError(f"{group}.{name}={shown(value)}: it holds {name}'s knobs, not one value: set "
                                f"them as {group}.{name}.KNOB=VALUE (`cce-bench methods` and `cce-bench metrics` list "
                                "them)")


def _check_method_lists(cfg) -> None:
    methods = _value(cfg, "methods")
    if isinstance(methods, (list, ListConfig)):
        if len(methods) == 0:
            raise UserError("methods=[] is empty: name at least one method, e.g. methods=[gradcam_pp,cce]")
        twice = sorted({str(n) for n in methods if list(methods).count(n) > 1})
        if twice:
            raise UserError(f"methods names {', '.join(twice)} twice: name each method once")
        from .explainers import EXPLAINERS

        for name in methods:
            EXPLAINERS.get(str(name))  # an unknown name: one line with the nearest
    swept, method, values = _value(cfg, "param.name"), _value(cfg, "method"), _value(cfg, "param.values")
    if isinstance(swept, str) and isinstance(method, str) and isinstance(values, (list, ListConfig)):
        from .explainers import EXPLAINERS

        if method in EXPLAINERS:
            for value in values:
                check_knob_value(method, swept, value, "param.values")


def warnings_for(cfg) -> list[str]:
    """One line per legal but degenerate value of the composed config."""
    return [message for check in WARNINGS if (message := check(cfg))]

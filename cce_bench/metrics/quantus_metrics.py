"""Any Quantus metric by name (`quantus_NAME`, NAME a metric class of quantus), scored in the suite's runs:
batched on the run's device, seeded from the run's seed, per image into the records.

Quantus takes the model, the normalised images, the explained classes and the maps (as `a_batch`
[B, 1, H, W]); a localisation metric also the boxes (`s_batch`, the pointing-game data's masks); a metric
that explains again (randomisation, robustness, ...) calls `explain_func`, which here is the suite's own
explainer of the method being scored, rebuilt on the network Quantus passes (a randomised copy for MPRT).
A metric's arguments are its knobs (`metric_knobs.quantus_NAME.KNOB=VALUE`), checked by name against the
class's signature before any work. quantus is imported only when a quantus_ metric is named.
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UserError
from ..tensors import device_of
from .base import BOXES, LIBRARY, METRICS, REEXPLAINS, MapsToScore, Metric, Panel, Ranking, Scored, mean_column

PREFIX = "quantus_"

# Arguments the suite sets on every Quantus metric: one score per image, no bars or warnings of its own.
FIXED = {"return_aggregate": False, "display_progressbar": False, "disable_warnings": True}


@dataclass(frozen=True)
class MetricFacts:
    family: str            # Quantus's evaluation category, lower case
    needs: str             # "boxes" (localisation), "re-explains" (randomisation, robustness), else "-"
    higher_is_better: bool


def quantus_module():
    try:
        import quantus
    except ImportError:
        raise UserError("quantus_ metrics need the package quantus: pip install quantus==0.6.0") from None
    return quantus


def quantus_members() -> list[str]:
    """The metric classes quantus exports (Sparseness, RandomLogit, ...), by name."""
    quantus = quantus_module()
    return sorted(name for name, value in vars(quantus).items()
                  if inspect.isclass(value) and issubclass(value, quantus.Metric) and value is not quantus.Metric)


def is_quantus(name: str) -> bool:
    return str(name).startswith(PREFIX)


def quantus_class(name: str):
    """`quantus_Sparseness` -> quantus.Sparseness; a near miss: one line with the nearest name."""
    member = str(name)[len(PREFIX):]
    members = quantus_members()
    if member not in members:
        close = difflib.get_close_matches(member, members, n=1, cutoff=0.6)
        hint = f" (did you mean {PREFIX}{close[0]}?)" if close else ""
        raise UserError(f"unknown metric {name!r}{hint}: `cce-bench metrics` lists every one")
    return getattr(quantus_module(), member)


def metric_facts(name: str) -> MetricFacts:
    cls = quantus_class(name)
    family = str(getattr(cls.evaluation_category, "value", cls.evaluation_category)).lower()
    needs = NEEDS_BY_FAMILY.get(family, "-")
    direction = str(getattr(cls.score_direction, "name", cls.score_direction)).upper()
    return MetricFacts(family, needs, direction != "LOWER")


def init_parameters(name: str) -> dict[str, inspect.Parameter]:
    """The named arguments of a metric class's __init__ and its bases', each as the nearest class declares it."""
    parameters: dict[str, inspect.Parameter] = {}
    for klass in quantus_class(name).__mro__:
        init = vars(klass).get("__init__")
        if init is not None:
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    parameters.setdefault(p.name, p)
    return parameters


def knob_names(name: str) -> list[str]:
    """The arguments a metric class names in its signature (and its bases'), less those the suite sets."""
    return sorted(set(init_parameters(name)) - set(FIXED))


def check_metric_knobs(name: str, knobs: dict) -> None:
    """The knobs' names against the class's signature, and their values against its annotations (and a count
    at least 1 where the argument counts something): Quantus takes most values unchecked, and a run with a
    count of 0 or a word where a number goes ends with an empty column or a ZeroDivisionError."""
    unknown = sorted(set(knobs) - set(knob_names(name)))
    if unknown:
        raise UserError(f"metric {name} has no argument {', '.join(unknown)}; its arguments: "
                        f"{', '.join(knob_names(name))} (set them as metric_knobs.{name}.KNOB=VALUE)")
    parameters = init_parameters(name)
    for knob, value in knobs.items():
        problem = annotation_problem(str(parameters[knob].annotation), knob, value)
        if problem:
            raise UserError(f"metric_knobs.{name}.{knob}={value!r} is not valid: {problem}")


# Arguments that count something (runs, samples, steps, pixels): at least 1.
COUNT_ARGUMENTS = {"nr_runs", "nr_samples", "nr_steps", "n_perturb_samples", "features_in_step", "patch_size",
                   "subset_size", "k", "num_classes", "regions_evaluation"}


def annotation_problem(annotation: str, knob: str, value) -> str:
    """What is wrong with `value` for an argument annotated `annotation` ('' when nothing is, or when the
    annotation says nothing the command line can give)."""
    import numbers

    text = annotation.replace("typing.", "").replace("<class '", "").replace("'>", "")
    optional = text.startswith("Optional[") or "None" in text
    if value is None:
        return "" if optional or not text else "it takes a value, not null"
    if "Callable" in text and "str" not in text:
        return ("it takes a Python function, which the command line cannot give: leave it at Quantus's default, "
                "or score with Quantus directly on the saved maps (save_maps=true)")
    base = text.removeprefix("Optional[").removesuffix("]")
    if base == "bool" and not isinstance(value, bool):
        return "it must be true or false"
    if base == "int" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        return "it must be a whole number"
    if base in ("float", "Union[int, float]") and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        return "it must be a number"
    if base == "str" and not isinstance(value, str):
        return "it must be a text"
    if knob in COUNT_ARGUMENTS and isinstance(value, numbers.Real) and value < 1:
        return "it counts something, so it must be at least 1"
    return ""


def make_metric(name: str, knobs: dict, seed: int):
    """The Quantus metric object with its knobs; a metric with a `seed` argument gets the run's seed."""
    cls = quantus_class(name)
    check_metric_knobs(name, knobs)
    arguments = dict(knobs)
    if "seed" in knob_names(name):
        arguments.setdefault("seed", int(seed))
    return cls(**arguments, **FIXED)


def explain_function(explainer):
    """Quantus's explain_func: the suite's explainer of the method scored, on the network Quantus passes
    (the run's model, or a randomised copy of it), maps [B, 1, H, W] as numpy."""
    import torch

    from ..explainers import create_explainer

    def explain(model, inputs, targets, **_ignored):
        on = explainer if model is explainer.model else create_explainer(explainer.name, model, **explainer.knobs())
        device = device_of(model)
        images = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=device)
        classes = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=device).reshape(-1)
        return on.attribute(images, classes).detach().float().cpu().numpy()[:, None]

    return explain


def quantus_scores(name: str, knobs: dict, model, images, targets, maps, masks, explainer, batch_size: int,
                   seed: int) -> list[float]:
    """One score per image: the metric on the batch (images normalised [B, 3, H, W], maps [B, H, W], masks
    [B, H, W] or None), seeded with `seed` (numpy and torch) so that two runs agree record for record."""
    import torch

    facts = metric_facts(name)
    if facts.needs == "boxes" and masks is None:
        raise UserError(f"{name} is a localisation metric and needs boxes: run it on data=photos_coco or "
                        "data=coco (their COCO boxes are its s_batch)")
    if facts.needs == "re-explains" and explainer is None:
        raise UserError(f"{name} explains again, and maps from elsewhere have no method to ask: score it with the "
                        "method in `cce-bench compare methods=[...]`")
    metric = make_metric(name, knobs, seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    scores = metric(model=model, x_batch=images.detach().cpu().numpy(), y_batch=targets.detach().cpu().numpy(),
                    a_batch=maps.detach().float().cpu().numpy()[:, None],
                    s_batch=None if masks is None else masks.detach().float().cpu().numpy()[:, None],
                    channel_first=True, explain_func=None if explainer is None else explain_function(explainer),
                    device=str(images.device),
                    batch_size=int(batch_size))
    if isinstance(scores, dict):  # one list per layer randomised (MPRT): the last, the fully randomised model's
        scores = list(scores.values())[-1]
    return [float(np.mean(score)) if np.ndim(score) else float(score) for score in scores]


# Quantus's evaluation categories that score the maps (and boxes) alone, without a model pass.
MAP_ONLY_FAMILIES = ("complexity", "localisation")
# Quantus's evaluation category -> what the metric needs beyond the maps.
NEEDS_BY_FAMILY = {"localisation": BOXES, "randomisation": REEXPLAINS, "robustness": REEXPLAINS}
# A metric's arguments that `cce-bench metrics` leaves out of its listing (every metric has them).
COMMON_ARGUMENTS = ("abs", "normalise", "normalise_func", "normalise_func_kwargs", "aggregate_func",
                    "default_plot_func")


class QuantusMetric(Metric):
    """A metric class of Quantus by name (`quantus_Sparseness`): its knobs are the class's arguments
    (`metric_knobs.quantus_NAME.KNOB`), its facts read from the class (category, score direction)."""

    source = "quantus"
    section = LIBRARY
    member = ""

    @property
    def knobs(self) -> dict:
        return dict((self.cfg.get("metric_knobs") or {}).get(self.name) or {}) if self.cfg is not None else {}

    @property
    def column(self) -> str:
        return f"{self.member} {'↑' if self.higher_is_better else '↓'}"

    def check(self, has_boxes: bool, has_method: bool, command: str, has_contrast_boxes: bool = False) -> None:
        super().check(has_boxes, has_method, command, has_contrast_boxes)
        check_metric_knobs(self.name, self.knobs)

    def score(self, maps: MapsToScore) -> Scored:
        return Scored({self.name: quantus_scores(self.name, self.knobs, maps.explained_network, maps.images,
                                                 maps.targets, maps.maps, maps.masks, maps.explainer,
                                                 int(self.cfg.batch_size), maps.seed)})

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        label = self.column
        means, errors = mean_column(records, names, self.name, 1, 4)
        scored = {n: m for n, m in zip(names, means) if m is not None}
        order = sorted(scored, key=lambda n: -scored[n] if self.higher_is_better else scored[n])
        seconds, _ = mean_column(records, names, f"{self.name}_seconds", 1, 3)
        return {label: means, f"{label} SE": errors, f"{label} rank": [order.index(n) + 1 if n in scored else None
                                                                      for n in names],
                f"{label} s/img": [s if n in scored else None for n, s in zip(names, seconds)]}

    def ranking(self) -> Ranking:
        return Ranking(self.column, f"{self.column} SE", 1, self.higher_is_better)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return pd.to_numeric(records[self.name], errors="coerce") if self.name in records else None

    def panels(self) -> list[Panel]:
        return [Panel(f"{self.column} (Quantus)", self.column, "tab:cyan")]


def quantus_metric(member: str) -> type[QuantusMetric]:
    """The registry entry of one Quantus metric class: a QuantusMetric with that class's facts."""
    name = PREFIX + member
    facts = metric_facts(name)
    arguments = [k for k in knob_names(name) if k not in COMMON_ARGUMENTS]
    return type(f"Quantus{member}", (QuantusMetric,), {
        "name": name, "member": member, "label": member, "family": facts.family,
        "needs": frozenset({facts.needs} if facts.needs != "-" else set()),
        "higher_is_better": facts.higher_is_better, "what": "arguments: " + (", ".join(arguments) or "-"),
        "uncounted_passes": facts.family not in MAP_ONLY_FAMILIES,
    })


METRICS.add_family("quantus", quantus_members, quantus_metric)

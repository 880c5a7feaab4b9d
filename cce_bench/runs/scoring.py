"""What every command that scores maps shares: which class a map explains (and on which network), the run's
metrics (`metrics=[...]`, each from the metric registry) scoring one batch of maps, the one record schema,
and the randomised copies of a network for the sanity command."""
from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import UserError, debugging, is_allocation_failure
from ..metrics import MapsToScore, Metric, Scored, create_metric
from ..metrics.base import FURTHER, PROTOCOL, SECTIONS
from ..models import batched_logits
from .cost import PassCounts, Passes
from .timing import timed


def explained_classes(classifier, images: torch.Tensor, allowed: torch.Tensor | None, batch_size: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, its probability) per image: the top-1 class, or for a COCO pair (`allowed`, the ImageNet
    classes its category maps to) the best of those, as the pointing game of Score-CAM takes it."""
    return classes_of(check_finite(batched_logits(classifier, images, batch_size), classifier), allowed)


def check_finite(logits: torch.Tensor, network, ids=None) -> torch.Tensor:
    """The logits, or one line naming the model and its weights when any is NaN or infinite: the argmax of
    NaN is class 0 ("tench"), and every score after it would be garbage marked complete."""
    finite = torch.isfinite(logits).all(1)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        which = f" for {ids[first]}" if ids is not None else ""
        raise UserError(
            f"{getattr(network, 'weights_source', 'the model')} gives NaN or infinite outputs{which}: its "
            "weights are broken; pass a checkpoint that holds trained, finite weights (model.checkpoint=PATH)"
        )
    return logits


def classes_of(logits: torch.Tensor, allowed: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`explained_classes` from the logits already computed."""
    if allowed is not None:
        targets = logits.masked_fill(~allowed.to(logits.device), float("-inf")).argmax(1)
    else:
        targets = logits.argmax(1)
    return targets, logits.softmax(1).gather(1, targets[:, None])[:, 0]


def explained_network(explainer, model):
    """The network an explainer explains: its own classifier where it has one (CALM), else the run's model."""
    return explainer.own_classifier if explainer.own_classifier is not None else model


class ClassesPerNetwork:
    """The explained classes of one batch per network, each computed once: the run's model is asked
    once however many methods explain it; a method with its own classifier (CALM) asks that one."""

    def __init__(self, images: torch.Tensor, allowed: torch.Tensor | None, batch_size: int):
        self.images, self.allowed, self.batch_size = images, allowed, batch_size
        self._logits: dict[int, torch.Tensor] = {}

    def logits(self, network) -> torch.Tensor:
        if id(network) not in self._logits:
            self._logits[id(network)] = check_finite(batched_logits(network, self.images, self.batch_size), network)
        return self._logits[id(network)]

    def __call__(self, network, allowed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(class, probability) per image; `allowed` replaces the batch's own (the contrastive game's Q)."""
        return classes_of(self.logits(network), self.allowed if allowed is None else allowed)


def batch_records(batch: dict, model, targets: torch.Tensor, method: str, per_image: dict | None = None,
                  target_prob: torch.Tensor | None = None, **shared) -> list[dict]:
    """One record per item of a batch, the schema every scoring command writes to records.csv:
    `index` (position in the data set), `image_id` (the data set's id; for a COCO pair `image:category`),
    `target` and `target_name` (the class explained), `target_prob` where known, `method`, then `shared`
    (the same for the whole batch) and `per_image` (name -> one value per item)."""
    categories = getattr(model, "categories", None)
    records = []
    for i, image_id in enumerate(batch["image_id"]):
        target = int(targets[i])
        record = {"index": batch["index"][i], "image_id": image_id, "target": target,
                  "target_name": categories[target] if categories else str(target)}
        if target_prob is not None:
            record["target_prob"] = float(target_prob[i])
        record["method"] = method
        record.update(shared)
        record.update({key: values[i] for key, values in (per_image or {}).items()})
        records.append(record)
    return records


class RunMetrics:
    """The metrics of one run, each made once from `metrics=[...]`: scores a batch of maps with every one of
    them, flags blank or broken maps first (scored as no explanation), and keeps the warnings it has given
    (once per metric and method in this run, not in the process: a second run warns again)."""

    def __init__(self, names: list[str], cfg: DictConfig):
        self.metrics = [create_metric(name, cfg) for name in names]
        self.warned: set = set()
        self.failures: dict[str, str] = {}  # a library metric -> why it could not score (the first time)
        self.library_passes: dict[str, Passes] = {}  # a library metric -> the model passes it has made so far

    @property
    def names(self) -> list[str]:
        return [metric.name for metric in self.metrics]

    def __iter__(self):
        return iter(self.metrics)

    def score(self, maps: MapsToScore) -> tuple[dict[str, list], dict]:
        """Per image `map_flag` and each metric's record columns; the batch's sums (insertion/deletion's curves)."""
        flags = map_flags(maps.maps)
        self.warn_flagged(maps, flags)
        broken = torch.tensor([flag == "not finite" for flag in flags], device=maps.maps.device).view(
            -1, *[1] * (maps.maps.dim() - 1))
        maps.maps = torch.where(broken, torch.zeros_like(maps.maps, dtype=torch.float), maps.maps.float())
        per_image: dict[str, list] = {"map_flag": flags}
        sums: dict = {}
        for metric in self.metrics:
            scored = self.scored_or_empty(metric, maps)
            per_image.update(scored.per_image)
            sums.update(scored.sums or {})
        return per_image, sums

    def warn_flagged(self, maps: MapsToScore, flags: list[str | None]) -> None:
        """One warning line per method and flag (map_flag), the first time in this run."""
        for image_id, flag in zip(maps.ids or [str(i) for i in range(len(flags))], flags):
            if flag and (maps.method, flag) not in self.warned:
                self.warned.add((maps.method, flag))
                print(f"warning: {maps.method or 'a'}'s map of {image_id} is {flag}: scored as no explanation "
                      "(records.csv: map_flag); check the method's knobs", file=sys.stderr)

    def scored_or_empty(self, metric: Metric, maps: MapsToScore) -> Scored:
        """A library's metric, timed (`NAME_seconds`, per image); one that cannot score this method, model or
        data is one line (once) and empty cells, not a failed run. The suite's own metrics fail as the method does."""
        if metric.source == "cce-bench":
            return metric.score(maps)
        try:
            seconds, scored = self.counting(metric, maps)
            scored.per_image[f"{metric.name}_seconds"] = [seconds / len(maps.images)] * len(maps.images)
            return scored
        except Exception as exc:  # noqa: BLE001 - a metric that cannot run here is its cells', not the run's
            if is_allocation_failure(exc) or debugging():
                raise
            label = maps.explainer.label if maps.explainer is not None else "these maps"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            why = str(exc) if isinstance(exc, UserError) else f"the library raised {type(exc).__name__}: {first}"
            self.failures.setdefault(metric.name, why)
            if (metric.name, label) not in self.warned:
                self.warned.add((metric.name, label))
                print(f"warning: {metric.name} cannot score {label}: {why} (its cells are empty)", file=sys.stderr)
            empty = [None] * len(maps.images)
            return Scored({metric.name: empty, f"{metric.name}_seconds": list(empty)})

    def counting(self, metric: Metric, maps: MapsToScore) -> tuple[float, Scored]:
        """A library metric's score of `maps`, timed, with the passes it made through the run's model added to
        `library_passes` (the plan counts them from the first batch on)."""
        counts = getattr(maps.model, "passes", None)
        before = dict(counts.as_dict()) if counts is not None else {}
        seconds, scored = timed(lambda: metric.score(maps), maps.images.device)
        if counts is not None and metric.uncounted_passes:
            made = Passes.between(before, counts.as_dict())
            self.library_passes[metric.name] = self.library_passes.get(metric.name, Passes()) + made
        return seconds, scored

    def library_stage(self, metric: Metric, run_shape: dict) -> dict:
        """What a library metric's passes per image depend on: the metric and its knobs, and the run's shape
        (`run_shape`: the methods and their knobs, the seeds, the image side), which the metric may explain again."""
        return {"metric": metric.name, "knobs": metric.given_knobs(), **run_shape}

    def counted_before(self, counts: PassCounts, run_shape: dict) -> dict[str, Passes]:
        """The library metrics' passes per image where a run of this shape counted them (its first batch)."""
        known = {metric.name: counts.known(self.library_stage(metric, run_shape))
                 for metric in self.metrics if metric.uncounted_passes}
        return {name: passes for name, passes in known.items() if passes is not None}

    def counted_now(self, images: int, run_shape: dict) -> dict[str, tuple[dict, Passes]]:
        """Per library metric that runs the model: (what its count depends on, its passes per image so far, over
        `images`), for the plan after the first batch."""
        return {metric.name: (self.library_stage(metric, run_shape), self.library_passes[metric.name] * (1 / images))
                for metric in self.metrics if metric.name in self.library_passes and images > 0}

    def check_scored(self, records: pd.DataFrame) -> None:
        """Refuses to complete a run in which a library metric scored no image at all: a column of blanks is
        not a result. The records and maps stay in the run folder."""
        for metric in self.metrics:
            if metric.source == "cce-bench" or not len(records):
                continue
            if metric.name not in records or records[metric.name].isna().all():
                why = self.failures.get(metric.name, "every cell of its column in records.csv is empty")
                raise UserError(f"{metric.name} scored no image ({why}): fix metric_knobs.{metric.name}.KNOB or "
                                "leave it out of metrics=[...]; the run is not marked complete")

    def table(self, records: pd.DataFrame, names: list[str], labels: list[str],
              run_columns: Callable[[pd.DataFrame, pd.DataFrame, list[str]], None] | None = None) -> pd.DataFrame:
        """A row per method (`names`, printed as `labels`): each metric's columns in the order of their sections
        (metrics/base.py), the number of images after the paper's protocols, and `run_columns(table, records,
        names)` (compare: the median explained probability, seconds per map) after the suite's further scores."""
        table = pd.DataFrame({"method": labels})
        for section in SECTIONS:
            for metric in self.metrics:
                if metric.section == section:
                    for column, values in metric.columns(records, names).items():
                        table[column] = values
            if section == PROTOCOL:
                table["images"] = [int(records.loc[records["method"] == n, "image_id"].nunique()) if len(records) else 0
                                   for n in names]
            if section == FURTHER and run_columns is not None:
                run_columns(table, records, names)
        return table

    def extra_maps(self, explainer) -> int:
        """Maps of `explainer` per image beyond the scored one (another class, a randomised model)."""
        return sum(metric.maps_asked(explainer) for metric in self.metrics)

    def unplanned(self) -> list[str]:
        """The metrics whose passes no probe counts (a library's, which runs its own): counted in a first batch."""
        return [metric.name for metric in self.metrics if metric.uncounted_passes]

    def passes(self, side: int) -> Passes:
        """Model passes of the scoring per map (insertion/deletion's curves)."""
        return Passes(forward=sum(metric.forward_passes(side) for metric in self.metrics))


def default_metrics(has_boxes: bool, has_method: bool, has_scenes: bool = False) -> list[str]:
    """`metrics: null`: the suite's own metrics that this run can score: insertion/deletion; the pointing game
    where the data has boxes; on part scenes, part deletion and distractibility (and contrast part and target
    sensitivity, with a method to ask again); with a method to ask again, class deviation and the sanity check."""
    return (["insertion_deletion"] + (["pointing_game"] if has_boxes else [])
            + (["part_deletion", "distractibility"] if has_scenes else [])
            + (["contrast_part", "target_sensitivity"] if has_scenes and has_method else [])
            + (["class_sensitivity", "sanity"] if has_method else []))


def run_metrics(cfg: DictConfig, has_boxes: bool, has_method: bool, command: str) -> RunMetrics:
    """The run's metrics (`metrics=[...]`, or the defaults where null), each checked against what this run
    can give it (boxes, a method to ask again) before any work."""
    chosen = cfg.get("metrics")
    has_scenes = OmegaConf.select(cfg, "data.name") == "parts"
    names = [str(n) for n in chosen] if chosen is not None else default_metrics(has_boxes, has_method, has_scenes)
    if not names:
        raise UserError(f"metrics=[] leaves {command} nothing to score: name at least one (`cce-bench metrics` lists "
                        "them), or metrics=null for the suite's own")
    metrics = RunMetrics(names, cfg)
    for metric in metrics:
        metric.check(has_boxes, has_method, command)
    return metrics


def map_flags(maps: torch.Tensor) -> list[str | None]:
    """Per map: "not finite" (a NaN or infinite value), "all zero" (nothing marked), else None."""
    flat = maps.detach().reshape(maps.shape[0], -1).float()
    finite = torch.isfinite(flat).all(1).tolist()
    marked = (torch.nan_to_num(flat, nan=0.0).abs().amax(1) > 0).tolist()
    return [None if f and m else ("not finite" if not f else "all zero") for f, m in zip(finite, marked)]


def mean_curves(run) -> dict:
    """Mean insertion and deletion curve per key of the batches' curve sums (swept value, method), over
    every finished batch."""
    totals: dict = {}
    for entry in run.finished_batches().values():
        for value, sums in entry.get("summary", {}).get("curves", {}).items():
            t = totals.setdefault(value, {"n": 0, "insertion": 0, "deletion": 0})
            t["n"] += sums["n"]
            t["insertion"] = np.add(t["insertion"], sums["insertion"])
            t["deletion"] = np.add(t["deletion"], sums["deletion"])
    return {
        v: {"n": t["n"], "insertion": (t["insertion"] / t["n"]).tolist(), "deletion": (t["deletion"] / t["n"]).tolist()}
        for v, t in totals.items()
    }


def write_curve_tables(run, table, header: str) -> str:
    """table.csv, table.md (header + table), curves.json and the curve plots of an insertion/deletion run;
    returns the text printed at the end."""
    from ..figures import plot_sweep
    from ..tables import Table

    text = Table(table, header).write(run)
    curves = mean_curves(run)
    if curves:  # a run without insertion/deletion has no curves
        run.write_json("curves.json", curves)
        plot_sweep(run.path)
    return text

"""What every command that scores maps shares: which class a map explains (and on which network), the
protocol's scores of one batch of maps (insertion/deletion always, the pointing game where the data has
boxes), the one record schema, and the randomised copies of a network for the sanity check."""
from __future__ import annotations

import sys

import numpy as np
import torch
from omegaconf import DictConfig

from ..errors import UserError, debugging, is_allocation_failure
from ..metrics.insertion_deletion import insertion_deletion
from ..metrics.quantus_metrics import is_quantus, quantus_scores
from ..metrics.pointing_game import energy_pointing_game
from ..metrics.sanity import Randomiser
from ..models import batched_logits
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
    for i, image_id in enumerate(batch["id"]):
        target = int(targets[i])
        record = {"index": batch["index"][i], "image_id": image_id, "target": target,
                  "target_name": categories[target] if categories else str(target)}
        if target_prob is not None:
            record["target_prob"] = float(target_prob[i])
        record["method"] = method
        record.update(shared)
        record.update({key: values[i] for key, values in (per_image or {}).items()})
        records.append(record)
    warn_flagged(records)
    return records


class Randomisers:
    """One Randomiser per network explained (the run's model; a method's own classifier, CALM's)."""

    def __init__(self, seed: int):
        self.seed = seed
        self._by_model: dict = {}

    def of(self, model) -> Randomiser:
        if id(model) not in self._by_model:
            self._by_model[id(model)] = Randomiser(model, self.seed)
        return self._by_model[id(model)]


def protocol_scores(model, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, cfg: DictConfig,
                    masks: torch.Tensor | None = None) -> tuple[dict[str, list[float]], dict]:
    """Per image `ins_auc`, `del_auc` (and `proportion` with box masks) and `map_flag` (a map that is all
    zero or not finite, scored as zeros: its scores are those of no explanation); and the batch's curve sums."""
    flags = map_flags(maps)
    broken = torch.tensor([flag == "not finite" for flag in flags], device=maps.device).view(
        -1, *[1] * (maps.dim() - 1)
    )
    maps = torch.where(broken, torch.zeros_like(maps, dtype=torch.float), maps.float())
    scores = insertion_deletion(model, images, maps, targets, step=int(cfg.metric.step), batch_size=int(cfg.batch_size),
                                blur_size=int(cfg.metric.blur_size), blur_sigma=float(cfg.metric.blur_sigma))
    per_image = {"ins_auc": scores.insertion_auc.tolist(), "del_auc": scores.deletion_auc.tolist(), "map_flag": flags}
    if masks is not None:
        per_image["proportion"] = energy_pointing_game(maps, masks.to(maps.device)).tolist()
    curves = {"n": len(images), "insertion": scores.insertion_curve.sum(0).tolist(),
              "deletion": scores.deletion_curve.sum(0).tolist()}
    return per_image, curves


def map_flags(maps: torch.Tensor) -> list[str | None]:
    """Per map: "not finite" (a NaN or infinite value), "all zero" (nothing marked), else None."""
    flat = maps.detach().reshape(maps.shape[0], -1).float()
    finite = torch.isfinite(flat).all(1).tolist()
    marked = (torch.nan_to_num(flat, nan=0.0).abs().amax(1) > 0).tolist()
    return [None if f and m else ("not finite" if not f else "all zero") for f, m in zip(finite, marked)]


WARNED: set = set()


def warn_flagged(records: list[dict]) -> None:
    """One warning line per method whose maps are flagged (map_flag), the first time it happens in this process."""
    for record in records:
        flag, method = record.get("map_flag"), record.get("method")
        if flag and (method, flag) not in WARNED:
            WARNED.add((method, flag))
            print(f"warning: {method}'s map of {record['image_id']} is {flag}: scored as no explanation (records.csv: "
                  "map_flag); check the method's knobs", file=sys.stderr)


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
    run.write_json("curves.json", mean_curves(run))
    plot_sweep(run.path)
    return text


WARNED_METRICS: set = set()


def library_metric_scores(network, explainer, images, targets, maps, masks, cfg, seed: int) -> dict[str, list]:
    """Each Quantus metric of `metrics=` on a method's maps (`explainer` None: maps from elsewhere, `score`):
    per image its score and seconds (the batch's time over its images). A metric that cannot run on this
    method, model or data is one line (once) and empty cells, not a failed run."""
    per_image: dict[str, list] = {}
    for name in [str(n) for n in cfg.get("metrics") or [] if is_quantus(str(n))]:
        knobs = dict((cfg.get("metric_knobs") or {}).get(name) or {})
        try:
            seconds, values = timed(lambda: quantus_scores(name, knobs, network, images, targets, maps, masks,
                                                           explainer, int(cfg.batch_size), seed), images.device)
        except Exception as exc:  # noqa: BLE001 - a metric that cannot run here is its cells', not the run's
            if is_allocation_failure(exc) or debugging():
                raise
            label = explainer.label if explainer is not None else "these maps"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            why = str(exc) if isinstance(exc, UserError) else f"the library raised {type(exc).__name__}: {first}"
            if (name, label) not in WARNED_METRICS:
                WARNED_METRICS.add((name, label))
                print(f"warning: {name} cannot score {label}: {why} (its cells are empty)", file=sys.stderr)
            per_image[name], per_image[f"{name}_seconds"] = [None] * len(images), [None] * len(images)
            continue
        per_image[name], per_image[f"{name}_seconds"] = values, [seconds / len(images)] * len(images)
    return per_image

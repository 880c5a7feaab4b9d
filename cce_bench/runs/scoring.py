"""What every command that scores maps shares: which class a map explains (and on which network), the
protocol's scores of one batch of maps (insertion/deletion always, the pointing game where the data has
boxes), the one record schema, and the randomised copies of a network for the sanity check."""
from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig

from ..metrics.insertion_deletion import insertion_deletion
from ..metrics.pointing_game import energy_pointing_game
from ..metrics.sanity import Randomiser
from ..models import batched_logits


def explained_classes(classifier, images: torch.Tensor, allowed: torch.Tensor | None, batch_size: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, its probability) per image: the top-1 class, or for a COCO pair (`allowed`, the ImageNet
    classes its category maps to) the best of those, as the pointing game of Score-CAM takes it."""
    return classes_of(batched_logits(classifier, images, batch_size), allowed)


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
            self._logits[id(network)] = batched_logits(network, self.images, self.batch_size)
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
    return records


class Randomisers:
    """One Randomiser per network explained (the run's model; a method's own classifier, CALM's)."""

    def __init__(self, seed: int):
        self.seed, self._by_model = seed, {}

    def of(self, model) -> Randomiser:
        if id(model) not in self._by_model:
            self._by_model[id(model)] = Randomiser(model, self.seed)
        return self._by_model[id(model)]


def protocol_scores(model, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, cfg: DictConfig,
                    masks: torch.Tensor | None = None) -> tuple[dict[str, list[float]], dict]:
    """Per image `ins_auc`, `del_auc` (and `proportion` with box masks); and the batch's curve sums."""
    scores = insertion_deletion(model, images, maps, targets, step=int(cfg.metric.step), batch_size=int(cfg.batch_size),
                                blur_size=int(cfg.metric.blur_size), blur_sigma=float(cfg.metric.blur_sigma))
    per_image = {"ins_auc": scores.insertion_auc.tolist(), "del_auc": scores.deletion_auc.tolist()}
    if masks is not None:
        per_image["proportion"] = energy_pointing_game(maps, masks.to(maps.device)).tolist()
    curves = {"n": len(images), "insertion": scores.insertion_curve.sum(0).tolist(),
              "deletion": scores.deletion_curve.sum(0).tolist()}
    return per_image, curves


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
    return {v: {"n": t["n"], "insertion": (t["insertion"] / t["n"]).tolist(), "deletion": (t["deletion"] / t["n"]).tolist()}
            for v, t in totals.items()}


def write_curve_tables(run, table, header: str) -> str:
    """table.csv, table.md (header + table), curves.json and the curve plots of an insertion/deletion run;
    returns the text printed at the end."""
    from ..figures import plot_sweep
    from ..tables import to_markdown

    text = f"{header}\n\n{to_markdown(table)}"
    run.write_csv("table.csv", table)
    run.write_text("table.md", f"{text}\n")
    run.write_json("curves.json", mean_curves(run))
    plot_sweep(run.path)
    return text

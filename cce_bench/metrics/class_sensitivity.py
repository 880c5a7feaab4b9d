"""Class sensitivity: does a method's map change when another class is asked for?

The CCE paper's abstract names a "Class Deviation Score" without a public definition. The suite
reconstructs it (REC, docs/protocols.md) as the literature's class-sensitivity tests do: for each image,
the map for the explained class p and the map for another class o, both post-processed to [0, 1] at the
input size, compared by a similarity; the deviation is 1 - similarity (0: the same map whatever the class,
the mark of a class-insensitive method). Which other class is asked is a choice:

- `second`: the most likely class other than p and the model's top-1 (the second class for a top-1 p):
  the hardest contrast, the one a contrastive explanation is about;
- `random`: a class drawn uniformly among the others, seeded per image (Sixt et al. 2020's random-logit
  test, as Quantus's RandomLogit);
- `least`: the least likely class (Rebuffi et al. 2020).

Similarity: `ssim` (default; scikit-image, 7 x 7 window, data range 1, as Quantus's RandomLogit) or
`spearman` (rank correlation of the two maps).
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import torch

from ..choices import OTHER_CLASSES
from .base import FURTHER, REEXPLAINS, MapsToScore, Metric, Panel, Ranking, Scored, mean_column, register_metric
from .sanity import spearman, ssim

SIMILARITY_FUNCTIONS = {"ssim": ssim, "spearman": spearman}  # one per name of choices.SIMILARITIES (tested)


def other_classes(logits: torch.Tensor, targets: torch.Tensor, rule: str, seed: int = 0,
                  image_ids: list[str] | None = None) -> torch.Tensor:
    """The other class o per image [B] by `rule` (OTHER_CLASSES). `random` draws from a generator seeded by
    (seed, image id), so that an image gets the same class in any batch, process or device."""
    from ..explainers.base import other_top_classes

    logits = logits.detach()
    if rule == "second":
        return other_top_classes(logits, targets, 1)[:, 0]
    if rule == "least":
        return logits.argmin(1)
    if rule == "random":
        classes = logits.shape[1]
        ids = image_ids if image_ids is not None else [str(i) for i in range(len(targets))]
        drawn = []
        for image_id, target in zip(ids, targets.tolist()):
            rng = np.random.default_rng([int(seed), zlib.crc32(str(image_id).encode("utf-8"))])
            pick = int(rng.integers(classes - 1))
            drawn.append(pick + (pick >= target))  # uniform over the classes other than the target
        return torch.tensor(drawn, device=targets.device)
    raise ValueError(f"unknown other-class rule {rule!r}: one of {', '.join(OTHER_CLASSES)}")


def class_deviation(maps: torch.Tensor, other_maps: torch.Tensor, similarity: str = "ssim") -> torch.Tensor:
    """1 - similarity of each image's map for its class and its map for the other class: maps [B, H, W]
    in [0, 1] -> [B] (float64)."""
    if maps.shape != other_maps.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and other_maps {tuple(other_maps.shape)} must have one shape")
    similar = SIMILARITY_FUNCTIONS[similarity]
    a, b = maps.detach().cpu().double().numpy(), other_maps.detach().cpu().double().numpy()
    return torch.tensor([1.0 - similar(a[i], b[i]) for i in range(len(a))], dtype=torch.float64)


@register_metric
class ClassSensitivity(Metric):
    """Class deviation: the method's map for another class of the same image, against its map for the
    explained class (knobs: `metric_knobs.class_sensitivity.other`, `.similarity`)."""

    label = "class deviation"
    family = "randomisation"
    what = "class deviation: 1 - similarity of the maps for the explained and another class"
    higher_is_better = True
    needs = frozenset({REEXPLAINS})
    extra_maps = 1
    section = FURTHER

    def score(self, maps: MapsToScore) -> Scored:
        from ..explainers import postprocess

        others = other_classes(maps.logits(maps.explained_network), maps.targets, str(self.other), int(self.cfg.seed),
                               maps.ids)
        other_maps = postprocess(maps.explainer.raw_attribute(maps.images, others), maps.size)
        deviation = class_deviation(maps.maps, other_maps, str(self.similarity))
        return Scored({"class_deviation": deviation.tolist(), "other_class": others.tolist()})

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        means, errors = mean_column(records, names, "class_deviation", 1, 3)
        return {"Class dev": means, "Class dev SE": errors}

    def ranking(self) -> Ranking:
        return Ranking("Class dev", "Class dev SE", 1)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return records["class_deviation"] if "class_deviation" in records else None

    def panels(self) -> list[Panel]:
        return [Panel("class deviation ↑", "Class dev", "tab:orange")]

    def caption(self) -> str:
        return (f"Class dev = class deviation, 1 - {self.similarity} of the maps for the explained class and the "
                f"{self.other} class (0: the same map whatever the class)")

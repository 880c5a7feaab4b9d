"""Single deletion on the part scenes (FunnyBirds' single-deletion protocol, Hesse et al., ICCV 2023): per
scene, the Spearman rank correlation between the map's mass on each part and the drop of the explained
logit when that part alone is removed (the scene drawn again without it). 1: the map ranks the parts as the
model relies on them; 0: no relation; -1: the reverse. A map with the same mass on every part carries no
ranking and scores 0 (sanity.spearman's rule)."""
from __future__ import annotations

import torch

from .base import FURTHER, SCENES, MapsToScore, MeanMetric, Scored, register_metric
from .sanity import spearman


def part_masses(maps: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """The map's mass on each part: maps [h, w] (taken through relu at the masks' size), parts [k, H, W] -> [k]."""
    from .pointing_game import energy_maps

    energy = energy_maps(maps[None], parts[:1])[0]
    return (energy[None] * parts.to(energy.device, energy.dtype)).sum(dim=(1, 2))


@register_metric
class PartDeletion(MeanMetric):
    """Spearman of each map's mass per part against the explained logit's drop when that part is removed."""

    label = "part deletion"
    family = "ground truth"
    what = ("FunnyBirds' single deletion: Spearman of the map's mass per part against the logit drop when that part "
            "is removed")
    higher_is_better = True
    needs = frozenset({SCENES})
    section = FURTHER
    record, column, scale, digits, colour = "part_deletion", "Part del", 1, 3, "tab:olive"

    def forward_passes(self, side: int) -> float:
        return 1 + 5  # the scene whole and without each of its (at most five) parts

    def score(self, maps: MapsToScore) -> Scored:
        from ..parts.ground_truth import scene_truth

        truth = scene_truth(self, maps)
        scores, drops_seen = [], []
        for row, image_id in enumerate(maps.ids):
            logits = truth.removal_logits(maps.explained_network, image_id, maps.images.device)
            explained = logits[:, int(maps.targets[row])]
            drops = (explained[0] - explained[1:]).numpy()
            masses = part_masses(maps.maps[row], truth.scene_masks(image_id)["parts"]).double().cpu().numpy()
            scores.append(spearman(masses, drops))
            drops_seen.append(float(drops.mean()))
        return Scored({"part_deletion": scores, "part_drop": drops_seen})

    def caption(self) -> str:
        return ("Part del = Spearman of the map's mass per part against the explained logit's drop when that part is "
                "removed (FunnyBirds' single deletion)")

"""Distractibility on the part scenes (data=parts): the share of the map's energy off the object (on the
distractors and the background), for a model that the reliance check showed to ignore them. The map is taken as
the pointing game takes it (relu, min-max to [0, 1] at the input's size), so a constant map scores the share of
the image off the object; a map on the object alone scores 0, one on the distractors alone 1. Lower is better."""
from __future__ import annotations

import torch

from .base import FURTHER, SCENES, MapsToScore, MeanMetric, Scored, register_metric
from .pointing_game import energy_inside, energy_maps


def off_object_share(maps: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
    """Per map, its energy off the object over its whole energy: maps [B, h, w], objects [B, H, W] bool -> [B]."""
    energy = energy_maps(maps, objects)
    return 1 - energy_inside(energy, objects) / energy.sum(dim=(1, 2))


@register_metric
class Distractibility(MeanMetric):
    """The share of each map's energy on the distractors and the background of a part scene."""

    label = "distractibility"
    family = "ground truth"
    what = "the share of the map's energy off the object (on distractors and background) of a part scene"
    higher_is_better = False
    needs = frozenset({SCENES})
    section = FURTHER
    record, column, scale, digits, colour = "distractibility", "Distract", 1, 3, "tab:brown"

    def score(self, maps: MapsToScore) -> Scored:
        from ..parts.ground_truth import scene_truth

        truth = scene_truth(self, maps)
        objects = torch.stack([truth.scene_masks(i)["object"] for i in maps.ids])
        return Scored({"distractibility": off_object_share(maps.maps, objects.to(maps.maps.device)).tolist()})

    def caption(self) -> str:
        return "Distract = share of the map's energy on a part scene's distractors and background (lower is better)"

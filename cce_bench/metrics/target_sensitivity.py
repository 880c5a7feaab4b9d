"""Target sensitivity on the part scenes (FunnyBirds' protocol, Hesse et al., ICCV 2023): for a scene of class
c and two of its slots i and j (scenes in turn over the slots, j the next), class c1 differs from c in slot i
alone and class c2 in slot j alone, so c1 shares the scene's part j but not its part i, and c2 the reverse. The
method's map for c1 should put more mass on part j than on part i, its map for c2 more on part i than on part
j. Per scene: the mean of the two checks (1: both hold, 0.5: one, 0: neither); a method whose map ignores the
class it is asked about gives the same map twice, which passes one check at most (0.5)."""
from __future__ import annotations

import torch

from .base import FURTHER, REEXPLAINS, SCENES, MapsToScore, MeanMetric, Scored, register_metric
from .part_deletion import part_masses


def slot_pair(scene) -> tuple[int, int]:
    """The two slots compared: i in turn over the scenes, j the next."""
    count = len(scene.parts)
    return scene.index % count, (scene.index + 1) % count


@register_metric
class TargetSensitivity(MeanMetric):
    """Whether the maps for two classes that share different parts with the scene lie on their own shared part."""

    label = "target sensitivity"
    family = "ground truth"
    what = ("FunnyBirds' target sensitivity: the maps for two classes one slot away each put more mass on the part "
            "the class shares with the scene")
    higher_is_better = True
    needs = frozenset({SCENES, REEXPLAINS})
    extra_maps = 2
    section = FURTHER
    record, column, scale, digits, colour = "target_sensitivity", "Target sens", 1, 3, "tab:pink"

    def score(self, maps: MapsToScore) -> Scored:
        from ..explainers import postprocess
        from ..parts.ground_truth import scene_truth

        truth = scene_truth(self, maps)
        scenes = [truth.scene(i) for i in maps.ids]
        pairs = [slot_pair(s) for s in scenes]
        device = maps.images.device
        first = torch.tensor([truth.world.neighbour(s.label, i) for s, (i, _) in zip(scenes, pairs)], device=device)
        second = torch.tensor([truth.world.neighbour(s.label, j) for s, (_, j) in zip(scenes, pairs)], device=device)
        map_first = postprocess(maps.explainer.raw_attribute(maps.images, first), maps.size)
        map_second = postprocess(maps.explainer.raw_attribute(maps.images, second), maps.size)
        scores = []
        for b, (image_id, (i, j)) in enumerate(zip(maps.ids, pairs)):
            parts = truth.scene_masks(image_id)["parts"]
            on_first, on_second = part_masses(map_first[b], parts), part_masses(map_second[b], parts)
            scores.append((float(on_first[j] > on_first[i]) + float(on_second[i] > on_second[j])) / 2)
        return Scored({"target_sensitivity": scores})

    def caption(self) -> str:
        return ("Target sens = FunnyBirds' target sensitivity: the maps for two classes one slot away from the scene's "
                "each on the part that class shares with it (1 both, 0.5 one, 0 neither)")

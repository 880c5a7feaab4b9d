"""Contrast on the part scenes (data=parts): "why P rather than Q?" for Q the class that differs from P in one
slot alone (the slot chosen per scene, scenes in turn over the slots), so the answer's ground truth is that
slot. Two numbers per named map of the method's answer (a one-map method answers with its map of P; CE with its
contrast map; CCE with `unified`, `M_sup` and `M_pro`, each scored):

- `contrast_slot`: the share of the map's energy (relu, min-max, as the pointing game takes it) on the part in
  that slot; the part's own mask scores 1, a flat map the part's share of the image (`contrast_area`, recorded
  beside it);
- `contrast_rho`: the Spearman correlation between the map's mass on each part and the drop of
  logit_P - logit_Q when that part alone is removed (the scene drawn again without it).
"""
from __future__ import annotations

import pandas as pd
import torch

from .base import FURTHER, REEXPLAINS, SCENES, MapsToScore, Metric, Panel, Ranking, Scored, mean_column, register_metric
from .part_deletion import part_masses
from .pointing_game import energy_inside, energy_maps
from .sanity import spearman


def contrast_slot(scene) -> int:
    """The slot in which Q differs from P: scenes in turn over the slots."""
    return scene.index % len(scene.parts)


def answer_maps(maps: MapsToScore, p: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
    """The method's answer to "why P rather than Q?" by record suffix: "" the answer, "@NAME" its other named
    maps. A method with no answer of its own to "rather than Q" answers with its map of P, made already."""
    from ..explainers.targets import Contrast

    if not maps.explainer.answers_contrast():
        return {"": maps.maps}
    answer = maps.explainer.explain(maps.images, Contrast(p, q))
    return {("" if name == answer.main else f"@{name}"): named for name, named in answer.maps.items()}


@register_metric
class ContrastPart(Metric):
    """"Why P rather than Q?" on part scenes where Q differs from P in one slot: the map's energy on that slot."""

    label = "contrast part"
    family = "ground truth"
    what = ("'why P rather than Q?' with Q one slot away: the share of the answer's energy on that slot, and Spearman "
            "of its mass per part against the drop of logit_P - logit_Q when the part is removed")
    higher_is_better = True
    needs = frozenset({SCENES, REEXPLAINS})
    extra_maps = 1
    section = FURTHER

    def forward_passes(self, side: int) -> float:
        return 1 + 5  # the scene whole and without each of its (at most five) parts

    def maps_asked(self, explainer) -> int:
        return 1 if explainer.answers_contrast() else 0  # else its map of P, made already

    def score(self, maps: MapsToScore) -> Scored:
        from ..parts.ground_truth import scene_truth

        truth = scene_truth(self, maps)
        scenes = [truth.scene(i) for i in maps.ids]
        p = maps.targets.long()
        q = torch.tensor([truth.world.neighbour(int(p[b]), contrast_slot(s)) for b, s in enumerate(scenes)],
                         device=p.device)
        named = answer_maps(maps, p, q)
        columns: dict[str, list] = {"contrast_area": [], "contrast_class": q.tolist()}
        for b, (image_id, scene) in enumerate(zip(maps.ids, scenes)):
            parts = truth.scene_masks(image_id)["parts"]
            slot_mask = parts[contrast_slot(scene)]
            columns["contrast_area"].append(float(slot_mask.float().mean()))
            logits = truth.removal_logits(maps.explained_network, image_id, maps.images.device)
            gap = logits[:, int(p[b])] - logits[:, int(q[b])]
            gaps = gap[0] - gap[1:]  # per part, the drop of z_P - z_Q when it is removed
            for suffix, answer in named.items():
                energy = energy_maps(answer[b:b + 1], slot_mask[None])
                share = float(energy_inside(energy, slot_mask[None].to(energy.device))[0] / energy.sum())
                rho = spearman(part_masses(answer[b], parts).double().cpu().numpy(), gaps.numpy())
                columns.setdefault(f"contrast_slot{suffix}", []).append(share)
                columns.setdefault(f"contrast_rho{suffix}", []).append(rho)
        return Scored(columns)

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        table: dict[str, list] = {}
        extra = sorted({str(c).split("@", 1)[1] for c in records.columns if str(c).startswith("contrast_slot@")})
        for suffix, title in [("", ""), *[(f"@{name}", f" ({name})") for name in extra]]:
            for record, column in (("contrast_slot", "Contrast slot"), ("contrast_rho", "Contrast ρ")):
                means, errors = mean_column(records, names, record + suffix, 1, 3)
                table[column + title], table[f"{column}{title} SE"] = means, errors
        return table

    def ranking(self) -> Ranking:
        return Ranking("Contrast slot", "Contrast slot SE", 1)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return records["contrast_slot"] if "contrast_slot" in records else None

    def panels(self) -> list[Panel]:
        return [Panel("contrast part: energy on the slot that makes Q ↑", "Contrast slot", "tab:cyan")]

    def caption(self) -> str:
        return ("Contrast slot = share of the 'why P rather than Q?' map's energy on the one slot where Q differs "
                "from P (a flat map scores the slot's share of the image: contrast_area in records.csv); Contrast ρ = "
                "Spearman of its mass per part against the drop of logit_P - logit_Q when the part is removed; (NAME) "
                "= a method's other named maps (CCE's M_sup, M_pro)")

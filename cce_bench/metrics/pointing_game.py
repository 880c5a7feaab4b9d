"""The energy-based pointing game (Wang et al., Score-CAM, CVPR-W 2020), and its contrastive variant.

Proportion = sum(map inside the box mask) / sum(map), for a map taken through relu and min-max to
[0, 1] at the input resolution. A map without energy (constant) spreads it evenly, which gives the
mask's share of the image.

Contrastive (REC, the suite's): on an image with two annotated categories P and Q, the answer to "why P
rather than Q?" should lie on P, not on Q: share = E_P / (E_P + E_Q), E_X the map's energy inside X's
boxes (a pixel in both boxes counts in both). 1: all on P; 0.5: no preference (also a map with no energy
on either box); 0: all on Q.
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..tensors import min_max
from .base import BOXES, PROTOCOL, MapsToScore, Metric, Panel, Ranking, Scored, mean_column, register_metric


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Proportion of each map's energy inside its mask: maps [B, h, w], masks [B, H, W] (bool) -> [B]."""
    maps = energy_maps(maps, masks)
    return energy_inside(maps, masks) / maps.sum(dim=(1, 2))


def contrastive_share(maps: torch.Tensor, masks: torch.Tensor, contrast_masks: torch.Tensor) -> torch.Tensor:
    """E_P / (E_P + E_Q) per map: the share of its energy in P's boxes (`masks`) among its energy in P's and
    Q's (`contrast_masks`); 0.5 where neither box holds any. maps [B, h, w], masks [B, H, W] -> [B]."""
    if contrast_masks.shape != masks.shape:
        raise UserError(
            f"masks {tuple(masks.shape)} and contrast_masks {tuple(contrast_masks.shape)} must have one shape"
        )
    maps = energy_maps(maps, masks)
    on_p, on_q = energy_inside(maps, masks), energy_inside(maps, contrast_masks)
    both = on_p + on_q
    return torch.where(both > 0, on_p / both.clamp_min(torch.finfo(both.dtype).tiny), torch.full_like(both, 0.5))


def energy_maps(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Maps as the game scores them: relu, at the masks' size (bilinear), min-max to [0, 1] (a constant
    map becomes ones: its energy spread evenly)."""
    if maps.dim() != 3 or masks.dim() != 3 or maps.shape[0] != masks.shape[0]:
        raise UserError(
            f"maps [B, H, W] and masks [B, H, W] must match in B, got {tuple(maps.shape)} and {tuple(masks.shape)}"
        )
    if not torch.isfinite(maps).all():
        raise UserError("maps hold NaN or infinite values: fix the explanation (e.g. torch.nan_to_num) first")
    maps = maps.float().clamp_min(0)
    if maps.shape[-2:] != masks.shape[-2:]:
        maps = F.interpolate(maps[:, None], size=masks.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return min_max(maps, constant=1.0)


def energy_inside(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return (maps * masks.to(maps.device, torch.float32)).sum(dim=(1, 2))




@register_metric
class PointingGame(Metric):
    """The energy-based pointing game of each map on the data's boxes (%)."""

    label = "pointing game"
    family = "localisation"
    what = "the energy-based pointing game (Score-CAM's): the share of the map's energy inside the boxes"
    higher_is_better = True
    units = "%"
    needs = frozenset({BOXES})
    section = PROTOCOL

    def score(self, maps: MapsToScore) -> Scored:
        assert maps.masks is not None  # check() refuses a run without boxes before any work
        return Scored({"proportion": energy_pointing_game(maps.maps, maps.masks.to(maps.maps.device)).tolist()})

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        means, errors = mean_column(records, names, "proportion", 100, 2)
        return {"Proportion (%)": means, "Proportion SE": errors}

    def ranking(self) -> Ranking:
        return Ranking("Proportion (%)", "Proportion SE", 100)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return records["proportion"] if "proportion" in records else None

    def panels(self) -> list[Panel]:
        return [Panel("pointing game (%) ↑", "Proportion (%)", "tab:blue")]

    def caption(self) -> str:
        return "Proportion = energy-based pointing game (%)"

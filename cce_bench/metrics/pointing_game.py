"""The energy-based pointing game (Wang et al., Score-CAM, CVPR-W 2020).

Proportion = sum(map inside the box mask) / sum(map), for a map taken through relu and min-max to
[0, 1] at the input resolution. A map without energy (constant) spreads it evenly, which gives the
mask's share of the image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..tensors import min_max


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Proportion of each map's energy inside its mask: maps [B, h, w], masks [B, H, W] (bool) -> [B]."""
    if maps.dim() != 3 or masks.dim() != 3 or maps.shape[0] != masks.shape[0]:
        raise UserError(f"maps [B, H, W] and masks [B, H, W] must match in B, got {tuple(maps.shape)} and {tuple(masks.shape)}")
    if not torch.isfinite(maps).all():
        raise UserError("maps hold NaN or infinite values: fix the explanation (e.g. torch.nan_to_num) first")
    maps = maps.float().clamp_min(0)
    if maps.shape[-2:] != masks.shape[-2:]:
        maps = F.interpolate(maps[:, None], size=masks.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    maps = min_max(maps, constant=1.0)
    masks = masks.to(maps.device, torch.float32)
    return (maps * masks).sum(dim=(1, 2)) / maps.sum(dim=(1, 2))

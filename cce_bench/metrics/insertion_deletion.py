"""Insertion and deletion (Petsiuk et al., BMVC 2018), as the RISE authors' evaluation code defines them.

Pixels are ranked by descending saliency (ties in raster order), and `step` pixels change per step:
deletion sets them to 0 in normalised space (the data set's mean colour), insertion puts the original
pixels back into a blurred copy. The score is the softmax probability of the explained class; the AUC of
a curve a_0..a_n is the trapezoid over x in [0, 1]. Every (image, step) point of both curves is one item
of one stream of model inputs, built on the device from a rank map, so that a forward pass is always
full and nothing returns to the host until the curves are done.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter1d

from ..errors import UserError
from ..models import batched_logits
from ..progress import counted
from .base import PROTOCOL, MapsToScore, Metric, Panel, Ranking, Scored, mean_column, register_metric


@dataclass
class InsertionDeletion:
    """Per-image AUCs [B] and curves [B, n + 1] (n = ceil(H * W / step))."""

    insertion_auc: torch.Tensor
    deletion_auc: torch.Tensor
    insertion_curve: torch.Tensor
    deletion_curve: torch.Tensor


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under curves [..., n + 1] sampled at x = 0, 1/n, ..., 1."""
    n = curve.shape[-1] - 1
    return (curve.sum(-1) - curve[..., 0] / 2 - curve[..., -1] / 2) / n


@lru_cache(maxsize=8)
def _gaussian_1d(size: int, sigma: float) -> tuple:
    # The RISE code blurs a unit impulse with scipy's gaussian_filter (reflect mode) on a size x size
    # grid; that kernel is separable, so it is the outer product of this 1-D kernel with itself.
    impulse = np.zeros(size)
    impulse[size // 2] = 1.0
    return tuple(gaussian_filter1d(impulse, sigma).tolist())


def blur_kernel(size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    k = torch.tensor(_gaussian_1d(int(size), float(sigma)), dtype=torch.float32)
    return torch.outer(k, k)


def blur(images: torch.Tensor, size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Per-channel convolution with zero padding size // 2, in whatever space `images` are (normalised)."""
    c = images.shape[1]
    kernel = blur_kernel(size, sigma).to(images).expand(c, 1, size, size)
    return F.conv2d(images, kernel, padding=size // 2, groups=c)


def saliency_ranks(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Rank of every pixel [B, H*W] by descending saliency, ties broken in raster order."""
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.shape[-2:] != size:
        maps = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    flat = maps.reshape(maps.shape[0], -1).float()
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def _check_inputs(images: torch.Tensor, maps: torch.Tensor) -> None:
    if images.dim() != 4:
        raise UserError(f"images must be a [B, C, H, W] tensor, got shape {tuple(images.shape)}")
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3 or maps.shape[0] != images.shape[0]:
        raise UserError(f"maps must be [B, H, W] with B = {images.shape[0]} (one map per image), "
                        f"got shape {tuple(maps.shape)}")
    if not torch.isfinite(maps).all():
        raise UserError("maps hold NaN or infinite values: fix the explanation (e.g. torch.nan_to_num) first")


def check_protocol(step, blur_size, blur_sigma) -> None:
    """The protocol's settings as the Python API takes them (the command line checks its knobs' rules first)."""
    if int(step) != step or int(step) < 1:
        raise UserError(f"step={step} must be a positive number of pixels per step")
    if int(blur_size) != blur_size or int(blur_size) < 1 or int(blur_size) % 2 == 0:
        raise UserError(f"blur_size={blur_size} must be an odd positive kernel size")
    if float(blur_sigma) <= 0:
        raise UserError(f"blur_sigma={blur_sigma} must be > 0")


@torch.inference_mode()
def insertion_deletion(model, images: torch.Tensor, maps: torch.Tensor, targets=None, step: int = 224,
                       batch_size: int = 32, blur_size: int = 11, blur_sigma: float = 5.0) -> InsertionDeletion:
    """Insertion and deletion curves and AUCs for one map per image.

    `images` are what the model takes (normalised [B, 3, H, W]); `model` returns logits; `maps` are
    [B, h, w] (resized to H x W bilinearly if needed); `targets` are class indices [B] (default: the
    model's top-1 class on each image). `batch_size` is the number of model inputs per forward pass.
    """
    check_protocol(step, blur_size, blur_sigma)
    _check_inputs(images, maps)
    device = images.device
    b, _, h, w = images.shape
    n_steps = math.ceil(h * w / int(step))
    if targets is None:
        targets = batched_logits(model, images, batch_size).argmax(1)
    targets = torch.as_tensor(targets, device=device).long().reshape(b)
    ranks = saliency_ranks(maps.to(device), (h, w)).view(b, 1, h, w)
    blurred = blur(images, blur_size, blur_sigma)

    # One stream of items (curve, image, k), k the number of steps done.
    curve_idx, image_idx, k_idx = torch.meshgrid(
        torch.arange(2, device=device), torch.arange(b, device=device),
        torch.arange(n_steps + 1, device=device), indexing="ij")
    curve_idx, image_idx, k_idx = curve_idx.flatten(), image_idx.flatten(), k_idx.flatten()
    # Where a pixel has changed it comes from `finish`, else from `start` (curve 0: deletion, 1: insertion).
    start = torch.stack([images, blurred])
    finish = torch.stack([torch.zeros_like(images), images])
    scores = torch.empty(curve_idx.numel(), device=device)
    for first in counted(range(0, curve_idx.numel(), int(batch_size)), f"insertion/deletion: {b} maps", unit="pass"):
        sl = slice(first, first + int(batch_size))
        ci, ii = curve_idx[sl], image_idx[sl]
        changed = ranks[ii] < (k_idx[sl] * int(step)).view(-1, 1, 1, 1)
        inputs = torch.where(changed, finish[ci, ii], start[ci, ii])
        probs = model(inputs).float().softmax(dim=1)
        scores[sl] = probs.gather(1, targets[ii].view(-1, 1))[:, 0]
    curves = scores.view(2, b, n_steps + 1)
    return InsertionDeletion(insertion_auc=auc(curves[1]), deletion_auc=auc(curves[0]),
                             insertion_curve=curves[1], deletion_curve=curves[0])


@register_metric
class InsertionDeletionMetric(Metric):
    """Insertion and deletion AUCs of each map (100 x; Diff = Ins - Del); knobs: `metric_knobs.insertion_deletion.*`."""

    label = "insertion/deletion"
    family = "faithfulness"
    what = "Petsiuk et al.'s insertion/deletion AUC (RISE's protocol)"
    higher_is_better = True
    units = "100 x AUC"
    section = PROTOCOL

    def protocol(self) -> dict:
        return {"step": int(self.step), "blur_size": int(self.blur_size), "blur_sigma": float(self.blur_sigma)}

    def score(self, maps: MapsToScore) -> Scored:
        scores = insertion_deletion(maps.model, maps.images, maps.maps, maps.targets,
                                    batch_size=int(self.cfg.batch_size), **self.protocol())
        curves = {"n": len(maps.images), "insertion": scores.insertion_curve.sum(0).tolist(),
                  "deletion": scores.deletion_curve.sum(0).tolist()}
        return Scored({"ins_auc": scores.insertion_auc.tolist(), "del_auc": scores.deletion_auc.tolist()}, curves)

    def forward_passes(self, side: int) -> float:
        return 2 * (math.ceil(side * side / int(self.step)) + 1)  # both curves, n + 1 points each

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        scored = records.assign(diff=records["ins_auc"] - records["del_auc"]) if "ins_auc" in records else records
        columns: dict[str, list] = {}
        for column, record in (("Ins", "ins_auc"), ("Del", "del_auc"), ("Diff", "diff")):
            columns[column], columns[f"{column} SE"] = mean_column(scored, names, record, 100, 2)
        return columns

    def ranking(self) -> Ranking:
        return Ranking("Diff", "Diff SE", 100)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return records["ins_auc"] - records["del_auc"] if "ins_auc" in records else None

    def panels(self) -> list[Panel]:
        return [Panel("Ins ↑ (100 x AUC)", "Ins", "tab:green"), Panel("Del ↓ (100 x AUC)", "Del", "tab:red"),
                Panel("Diff = Ins - Del ↑", "Diff", "tab:blue")]

    def caption(self) -> str:
        return (f"Ins/Del = 100 x mean insertion/deletion AUC (step {self.step}), Diff = Ins - Del, SE = standard "
                "error over the images")

"""The Python API for people who bring their own model or maps."""
from __future__ import annotations

import torch

from .explainers import create_explainer
from .metrics.insertion_deletion import InsertionDeletion
from .metrics.insertion_deletion import insertion_deletion as _insertion_deletion


def explain(model, images: torch.Tensor, method: str = "cce", targets=None, **knobs) -> torch.Tensor:
    """Saliency maps [B, H, W] in [0, 1] for `images` (what `model` takes: normalised [B, 3, H, W]).

    `model` returns logits; `targets` are class indices (default: the top-1 class). Knobs are the
    method's (cce_bench/method_knobs/NAME.py), listed with their defaults under Args in
    `help(cce_bench.EXPLAINERS.get("cce"))`.
    """
    return create_explainer(method, model, **knobs).attribute(images, targets)


def insertion_deletion(model, images: torch.Tensor, maps: torch.Tensor, targets=None, step: int = 224,
                       batch_size: int = 32, blur_size: int = 11, blur_sigma: float = 5.0) -> InsertionDeletion:
    """Per-image insertion and deletion AUCs and curves (README: The protocol); see `metrics.insertion_deletion`."""
    return _insertion_deletion(model, images, maps, targets, step=step, batch_size=batch_size,
                               blur_size=blur_size, blur_sigma=blur_sigma)

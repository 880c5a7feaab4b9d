"""The small tensor conventions every layer shares, written once: pixel space [0, 1] <-> the model's
normalised space, channel statistics as plain lists, and min-max of saliency maps."""
from __future__ import annotations

import torch


def channel_view(values, like: torch.Tensor) -> torch.Tensor:
    """Per-channel values (list, tuple or tensor) as [1, C, 1, 1] on `like`'s device and dtype."""
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).reshape(1, -1, 1, 1)


def channel_list(values) -> list[float]:
    """Per-channel values (a [1, C, 1, 1] buffer, list or tuple) as a plain list of floats."""
    return torch.as_tensor(values, dtype=torch.float32).flatten().tolist()


def to_pixels(images: torch.Tensor, mean, std) -> torch.Tensor:
    """Normalised images -> pixel space (not clamped)."""
    return images * channel_view(std, images) + channel_view(mean, images)


def to_normalised(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    """Pixel space [0, 1] -> the model's normalised input."""
    return (pixels - channel_view(mean, pixels)) / channel_view(std, pixels)


def min_max(maps: torch.Tensor, constant: float = 0.0) -> torch.Tensor:
    """Each map [..., H, W] to [0, 1] by its own minimum and maximum; a constant map (no span) becomes
    `constant` everywhere: 0 for a map that shows nothing, 1 where a protocol spreads it evenly."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - lo
    scaled = (maps - lo) / span.clamp_min(torch.finfo(maps.dtype).tiny)
    return torch.where(span > 0, scaled, torch.full_like(maps, constant))


def device_of(module: torch.nn.Module) -> torch.device:
    """Where a module runs: its first parameter's device, else its first buffer's (a network of fixed
    operations has no parameters), else the CPU."""
    tensor: torch.Tensor | None = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")

"""The wrapper every model runs in: a network on normalised input with its normalisation and class names.

The suite's metrics work in the model's normalised input space (docs/protocols.md: Insertion/deletion),
while CCE perturbs in pixel space; `PixelInput` wraps a classifier so that it takes images in [0, 1] and
normalises inside.
"""
from __future__ import annotations

import difflib
from typing import Any

import torch
import torchvision
from torch import nn

from ..errors import UserError
from ..tensors import channel_list, device_of, to_normalised, to_pixels
from .inputs import IMAGENET_MEAN, IMAGENET_STD, InputSettings
from .passes import CountBackward, PassCount

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Classifier", "PixelInput", "batched_logits", "categories_for",
           "check_logits", "class_index", "imagenet_categories"]


def imagenet_categories() -> list[str]:
    # The 1000 ImageNet class names in index order, shipped with torchvision (no download).
    return list(torchvision.models.VGG19_Weights.IMAGENET1K_V1.meta["categories"])


def categories_for(outputs: int, path: str | None = None) -> list[str]:
    """Class names for a model of `outputs` classes: from a file (one a line), else ImageNet's for 1000
    outputs, else the class indices as names."""
    if path:
        from pathlib import Path

        file = Path(str(path)).expanduser()
        if not file.is_file():
            raise UserError(f"model.categories={path}: no such file: pass a text file with one class name a line")
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        names = [line.strip() for line in lines if line.strip()]
        if len(names) != outputs:
            raise UserError(f"model.categories={path} has {len(names)} class names but the model has {outputs} "
                            "outputs: pass a file with one name for each output, in output order")
        return names
    return imagenet_categories() if outputs == 1000 else [str(i) for i in range(outputs)]


@torch.no_grad()
def check_logits(net: nn.Module, size: int, name: str) -> int:
    """The number of classes of `net`, checked to map [B, 3, size, size] images to [B, classes] logits."""
    parameter = next(net.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    try:
        out = net(torch.zeros(2, 3, size, size, device=device))
    except Exception as exc:  # any error of the user's module: one line naming it
        raise UserError(f"model {name} fails on a [2, 3, {size}, {size}] batch ({type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}): a classifier must take "
                        "normalised images [B, 3, H, W]; set model.input_size= to its input side") from None
    shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2 or out.shape[1] < 2:
        raise UserError(f"model {name} returns {shape} for a [2, 3, {size}, {size}] batch: a classifier must return "
                        "logits shaped [B, classes] (at least 2 classes)")
    return int(out.shape[1])


def class_index(name, categories: list[str]) -> int:
    """A class by index or by name (case and '_' versus ' ' do not matter): 'tiger_cat' -> 282."""
    text = str(name).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(categories):
            raise UserError(f"class index {index} is outside 0..{len(categories) - 1}")
        return index
    wanted = text.lower().replace("_", " ")
    lowered = [c.lower() for c in categories]
    if wanted in lowered:
        return lowered.index(wanted)
    close = difflib.get_close_matches(wanted, lowered, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(categories[lowered.index(c)]) for c in close)}?" if close else ""
    raise UserError(f"unknown class {name!r}: pass an ImageNet class name or index{hint}")


class Classifier(nn.Module):
    """A network on normalised input, with what is needed to feed and read it."""

    def __init__(self, name: str, net: nn.Module, inputs: InputSettings, categories: list[str]):
        super().__init__()
        self.name = name
        self.inputs = inputs  # input size, resize, interpolation, mean, std: what the data sources feed it
        self.net = net.eval().to(memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        for module in self.net.modules():
            # Gradient methods hook activations (captum, pytorch-grad-cam): in-place ones break the hooks.
            if getattr(module, "inplace", False):
                setattr(module, "inplace", False)  # noqa: B010 - nn.Module's typing has no `inplace`
        self.register_buffer("mean", torch.tensor(inputs.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(inputs.std, dtype=torch.float32).view(1, 3, 1, 1))
        self.categories = categories
        self.autocast_dtype: torch.dtype | None = None  # set_precision(model, "bf16") sets bfloat16
        self.passes = PassCount()
        # facts of the network built, where they depend on the builder's options (facts.create_model reads them)
        self.own_facts: Any = None
        self.facts = None  # the model's ModelFacts, set by create_model
        self.weights_source = "the model"  # e.g. "model vgg19 with checkpoint PATH", set by create_model
        self.eval()  # the wrapper too: libraries that check `model.training` (Quantus) see an evaluated model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with_gradient = torch.is_grad_enabled() and images.requires_grad
        self.passes.add(images.shape[0], with_gradient)
        # channels_last runs the convolutions 2-4x faster on CPU and is the fast path on GPU too.
        images = images.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:
            logits = self.net(images)
        else:
            with torch.autocast(images.device.type, dtype=self.autocast_dtype):
                logits = self.net(images).float()  # softmax, losses and argmax stay in float32
        return CountBackward.apply(logits, self.passes) if with_gradient else logits

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return to_normalised(pixels, self.mean, self.std)

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        return to_pixels(images, self.mean, self.std)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """(mean, std) as plain lists, what the data transforms take."""
        return channel_list(self.mean), channel_list(self.std)


@torch.inference_mode()
def batched_logits(model, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """The model's logits (float32) for `images`, `batch_size` inputs per forward pass."""
    return torch.cat([model(images[s:s + batch_size]).float() for s in range(0, images.shape[0], batch_size)])


class PixelInput(nn.Module):
    """Takes images in [0, 1] and normalises inside, so that perturbations live in pixel space."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        device = device_of(model)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(to_normalised(pixels, self.mean, self.std))

"""A model's input settings: the side of its square input, the resize before the centre crop, the
interpolation, and the channel mean and std. They belong to the model (timm's `pretrained_cfg`,
torchvision's weight transforms), and the data sources read them from there; a `data.resize`,
`data.crop` or `data.interpolation` override wins over them."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class InputSettings:
    """size: the crop's side (the model's input is size x size); resize: the shorter side before the crop
    (an int), or [height, width]; ImageNet's classic evaluation is Resize(256) + CenterCrop(224)."""

    size: int = 224
    resize: int | tuple[int, int] = 256
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @classmethod
    def from_crop_fraction(cls, size: int, crop_fraction: float, interpolation: str, mean, std) -> InputSettings:
        """timm's convention: the image is resized to floor(size / crop_fraction), then centre-cropped."""
        return cls(int(size), math.floor(int(size) / float(crop_fraction)), known_interpolation(interpolation),
                   tuple(float(v) for v in mean), tuple(float(v) for v in std))

    @classmethod
    def from_timm(cls, pretrained_cfg: dict) -> InputSettings:
        """From a timm model's pretrained_cfg (input_size, crop_pct, interpolation, mean, std)."""
        size = int(pretrained_cfg.get("input_size", (3, 224, 224))[-1])
        return cls.from_crop_fraction(
            size, pretrained_cfg.get("crop_pct") or 0.875, pretrained_cfg.get("interpolation") or "bicubic",
            pretrained_cfg.get("mean", IMAGENET_MEAN), pretrained_cfg.get("std", IMAGENET_STD))

    @classmethod
    def from_torchvision(cls, weights) -> InputSettings:
        """From a torchvision weights entry's transforms() (ImageClassification: crop_size, resize_size,
        interpolation, mean, std)."""
        transforms = weights.transforms()
        return cls(int(transforms.crop_size[0]), int(transforms.resize_size[0]),
                   known_interpolation(transforms.interpolation.value),
                   tuple(float(v) for v in transforms.mean), tuple(float(v) for v in transforms.std))

    def as_data(self) -> dict:
        """The settings as the data configs spell them (data.resize, data.crop, data.interpolation)."""
        resize = list(self.resize) if isinstance(self.resize, tuple) else self.resize
        return {"resize": resize, "crop": self.size, "interpolation": self.interpolation}

    def describe(self) -> str:
        return (f"{self.size} x {self.size} input, resized to {self.resize} then centre-cropped, {self.interpolation}, "
                f"mean {tuple(round(v, 3) for v in self.mean)}, std {tuple(round(v, 3) for v in self.std)}")


def resolve_input_settings(inputs: InputSettings, data_cfg) -> InputSettings:
    """The settings a run feeds its model, decided in this one place (as timm's resolve_data_config): the
    model's own, with a data config's resize, crop and interpolation where it sets them (not null)."""
    resize, crop, interpolation = (data_cfg.get(key) for key in ("resize", "crop", "interpolation"))
    if resize is not None:
        resize = int(resize) if isinstance(resize, (int, float)) else tuple(int(side) for side in resize)
    return replace(inputs, size=inputs.size if crop is None else int(crop),
                   resize=inputs.resize if resize is None else resize,
                   interpolation=inputs.interpolation if interpolation is None else str(interpolation))


def known_interpolation(name: str) -> str:
    """timm names a few interpolations the data sources do not have ('random', 'lanczos'): bicubic then."""
    name = str(name).lower()
    return name if name in INTERPOLATIONS else "bicubic"

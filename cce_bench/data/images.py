"""Image files: decoding any photo to RGB, the model's preprocessing, a data set of image files that skips
unreadable ones, seeded sampling, and the real photos bundled with scikit-image (the offline default).

Each item is a dict: `index`, `id` (stable name), `path`, `image` (normalised [3, H, W] tensor) and
`label` (the ImageNet index where the data set knows it, else -1); an unreadable file gives an item
with `error` instead, which the batch leaves out and the run lists in skipped.csv. The explained class
is decided later, from the model (the top-1 class on the clean image).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from ..errors import UserError
from .registry import DATASETS

# Natural photos that scikit-image ships inside its wheel, in the order the default run takes them.
# What they show is written beside each; the model's top-1 class is what gets explained.
BUNDLED_PHOTOS = [
    ("chelsea", "chelsea.png", "a tabby cat"),
    ("coffee", "coffee.png", "a cup of espresso on a saucer"),
    ("camera", "camera.png", "a photographer with a camera on a tripod (grayscale)"),
    ("motorcycle", "motorcycle_left.png", "a motorcycle"),
    ("rocket", "rocket.jpg", "a rocket on its launch pad"),
    ("astronaut", "astronaut.png", "an astronaut in front of a flag"),
]


@dataclass(frozen=True)
class Sample:
    id: str
    path: str
    label: int


def preprocessing(mean, std, resize=256, crop=224, interpolation="bilinear") -> T.Compose:
    """Resize(256) + CenterCrop(224) by default; `resize=[224, 224]` gives the RISE variant."""
    size = int(resize) if isinstance(resize, (int, float)) else [int(s) for s in resize]
    return T.Compose([
        T.ToImage(),
        T.Resize(size, interpolation=InterpolationMode(interpolation), antialias=True),
        T.CenterCrop(int(crop)),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(list(mean), list(std)),
    ])


def load_rgb(path: str) -> Image.Image:
    """Any photo as 8-bit RGB: grayscale and CMYK are converted, 16-bit is scaled (not clipped), and
    transparency is laid over white."""
    with Image.open(path) as opened:
        opened.load()
        img: Image.Image = opened
        if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            values = np.asarray(img, dtype=np.float64)
            top = 65535.0 if values.max() > 255 else 255.0
            img = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")


def not_a_regular_file(path: str) -> str | None:
    """Why `path` must not be opened as an image (a FIFO would block forever, a device or a folder is
    no image, a symlink loop or a dangling link cannot be followed), or None for a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot follow {path}: {exc.strerror}"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
        return f"{path} is {kind}, not a regular file"
    return None


def read_or_skip(sample_id: str, path: str) -> tuple[Image.Image | None, dict | None]:
    """The image, or the item of an image that cannot be read (not a regular file, corrupt, truncated,
    not an image, a decompression bomb): the batch goes on without it, and the run records why."""
    reason = not_a_regular_file(path)
    if reason is None:
        try:
            return load_rgb(path), None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is this one file's problem
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = (
                f"cannot read {path}: {type(exc).__name__}: {detail}"
                if isinstance(exc, Image.DecompressionBombError)
                else f"cannot read {path}: {detail}"
            )
    return None, {"image_id": sample_id, "path": path, "error": reason}


def printable(name: str) -> str:
    """A file name as text that can be written anywhere (bytes that are not UTF-8 shown as \\xNN)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def utf8_or_none(name: str) -> str | None:
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return None


class ImageSet(Dataset):
    has_boxes = False

    def __init__(self, name: str, samples: list[Any], transform, skipped: list | None = None):
        # samples: Sample, or a source's own kind with an id and a path (coco.PointingSample)
        self.name = name
        self.samples = samples
        self.transform = transform
        self.skipped = skipped or []  # left out before reading (id, reason)

    def samples_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"image_id": s.id, "path": s.path, "label": s.label} for s in self.samples])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        image, skipped = read_or_skip(s.id, s.path)
        if skipped:
            return skipped
        return {"index": index, "image_id": s.id, "path": s.path, "label": s.label, "image": self.transform(image)}

    @staticmethod
    def collate(items: list[dict]) -> dict:
        return collate_images(items)


def seeded_sample(samples: list[Sample], n_images: int | None, seed: int, what: str,
                  skipped: list | None = None) -> list[Sample]:
    """The same `n_images` of a data set for the same seed on any machine (samples sorted by id first),
    drawn from the images that can be opened: with `skipped` given, a drawn file that cannot (a FIFO, a
    dangling link, not an image) is listed there and the next one in the seeded order takes its place."""
    samples = sorted(samples, key=lambda s: s.id)
    if n_images is None or n_images == len(samples):  # every image: one that cannot be read is skipped when read
        return samples
    if int(n_images) < 1:
        raise UserError(f"data.n_images={n_images} must be at least 1")
    if n_images > len(samples):
        raise UserError(f"data.n_images={n_images} is larger than the {len(samples)} images in {what}: "
                        f"pass data.n_images={len(samples)} or less")
    order = np.random.default_rng(seed).permutation(len(samples))
    if skipped is None:
        return [samples[i] for i in np.sort(order[: int(n_images)])]
    chosen = []
    for i in order:
        problem = cannot_open(samples[i].path)
        if problem:
            skipped.append({"image_id": samples[i].id, "reason": problem})
            continue
        chosen.append(int(i))
        if len(chosen) == int(n_images):
            return [samples[k] for k in sorted(chosen)]
    raise UserError(f"data.n_images={n_images} is larger than the {len(chosen)} images in {what} that can be opened "
                    f"({len(samples) - len(chosen)} cannot: see the first, {skipped[0]['reason']}): pass "
                    f"data.n_images={len(chosen)} or less" if chosen else
                    f"none of the {len(samples)} images in {what} can be opened (the first: {skipped[0]['reason']})")


def cannot_open(path: str) -> str | None:
    """Why `path` cannot be opened as an image, from its file type and header only (no decoding), or None."""
    reason = not_a_regular_file(path)
    if reason:
        return reason
    try:
        with Image.open(path):
            return None
    except Exception as exc:  # noqa: BLE001 - any header failure is this one file's problem
        return f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def collate_images(items: list[dict]) -> dict:
    good = [it for it in items if "error" not in it]
    return {
        "index": [it["index"] for it in good],
        "image_id": [it["image_id"] for it in good],
        "path": [it["path"] for it in good],
        "label": torch.tensor([it["label"] for it in good], dtype=torch.long),
        "image": torch.stack([it["image"] for it in good]) if good else torch.empty(0, 3, 0, 0),
        "skipped": [{"image_id": it["image_id"], "reason": it["error"]} for it in items if "error" in it],
    }


@DATASETS.register("photos")
def bundled_photos(name: str, transform, n_images: int | None = None, seed: int = 0, **_) -> ImageSet:
    """The first `n_images` of BUNDLED_PHOTOS (a fixed order, so the default run is the same everywhere)."""
    samples = [Sample(pid, str(bundled_photo_path(pid)), -1) for pid, _, _ in BUNDLED_PHOTOS]
    if n_images is not None:
        if not 1 <= int(n_images) <= len(samples):
            raise UserError(f"data.n_images={n_images} is outside 1..{len(samples)}, the number of bundled photos: "
                            "pass a smaller data.n_images, or data=imagenet data.root=PATH for more images")
        samples = samples[: int(n_images)]
    return ImageSet(name, samples, transform)


def bundled_photo_path(name: str) -> Path:
    """The file of a bundled photo by its id (chelsea, coffee, ...)."""
    import skimage.data

    return Path(skimage.data.__file__).parent / dict((pid, f) for pid, f, _ in BUNDLED_PHOTOS)[name]


def image_file(name: str) -> str:
    """A file, or the name of a photo bundled with scikit-image (chelsea, coffee, ...)."""
    if os.path.lexists(Path(name).expanduser()):  # read_or_skip says why one that is no regular file cannot be read
        return str(Path(name).expanduser())
    bundled = [pid for pid, _, _ in BUNDLED_PHOTOS]
    if name in bundled:
        return str(bundled_photo_path(name))
    raise UserError(f"image {name!r} does not exist: pass an image file, or a bundled photo "
                    f"({', '.join(bundled)})")

"""Image sets: the real photos bundled with scikit-image (offline default) and a local ImageNet folder.

Each item is a dict: `id` (stable name), `path`, `image` (normalised [3, H, W] tensor) and `label` (the
ImageNet index where the data set knows it, else -1). The explained class is decided later, from the
model (protocols.md: the top-1 class on the clean image).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from .errors import UserError
from .registry import Registry

DATASETS: Registry["ImageSet"] = Registry("data set")

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
    with Image.open(path) as img:
        return img.convert("RGB")


class ImageSet(Dataset):
    def __init__(self, name: str, samples: list[Sample], transform):
        self.name = name
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        return {"id": s.id, "path": s.path, "label": s.label, "image": self.transform(load_rgb(s.path))}


def seeded_sample(samples: list[Sample], n_images: int | None, seed: int, what: str) -> list[Sample]:
    """The same `n_images` of a data set for the same seed on any machine (samples sorted by id first)."""
    samples = sorted(samples, key=lambda s: s.id)
    if n_images is None or n_images == len(samples):
        return samples
    if int(n_images) < 1:
        raise UserError(f"data.n_images={n_images} must be at least 1")
    if n_images > len(samples):
        raise UserError(f"data.n_images={n_images} is larger than the {len(samples)} images in {what}: "
                        f"pass data.n_images={len(samples)} or less")
    chosen = np.sort(np.random.default_rng(seed).permutation(len(samples))[: int(n_images)])
    return [samples[i] for i in chosen]


def create_dataset(data_cfg, mean, std, seed: int = 0) -> ImageSet:
    """Build the data set named by `data_cfg.name` with the model's normalisation."""
    cfg = dict(data_cfg)
    name = cfg.pop("name")
    transform = preprocessing(mean, std, cfg.pop("resize", 256), cfg.pop("crop", 224),
                              cfg.pop("interpolation", "bilinear"))
    samples = DATASETS.get(name)(seed=seed, **cfg)
    return ImageSet(name, samples, transform)


@DATASETS.register("photos")
def bundled_photos(n_images: int | None = None, seed: int = 0, **_) -> list[Sample]:
    """The first `n_images` of BUNDLED_PHOTOS (a fixed order, so the default run is the same everywhere)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    samples = [Sample(pid, str(folder / filename), -1) for pid, filename, _ in BUNDLED_PHOTOS]
    if n_images is None:
        return samples
    if not 1 <= int(n_images) <= len(samples):
        raise UserError(f"data.n_images={n_images} is outside 1..{len(samples)}, the number of bundled photos: "
                        "pass a smaller data.n_images, or data=imagenet data.root=PATH for more images")
    return samples[: int(n_images)]


def _imagenet_wnids() -> list[str]:
    import timm.data

    info = timm.data.ImageNetInfo()
    return [info.index_to_label_name(i) for i in range(1000)]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


@DATASETS.register("imagenet")
def imagenet_folder(root: str | None = None, split: str = "val", n_images: int | None = 1000, seed: int = 0,
                    **_) -> list[Sample]:
    """ILSVRC2012 images from a local folder: torchvision's layout (root/val/<wnid>/*.JPEG), a plain
    class-per-folder tree (root/<class>/*), or a flat folder of images (labels unknown)."""
    if not root or str(root) == "???":
        raise UserError("data.root is not set: pass data.root=/path/to/imagenet (the folder holding val/)")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(f"data root {str(base)!r} does not exist: pass data.root=/path/to/imagenet")
    if (base / split).is_dir():
        base = base / split
    classes = sorted(d.name for d in os.scandir(base) if d.is_dir())
    wnid_index = {w: i for i, w in enumerate(_imagenet_wnids())}
    by_wnid = bool(classes) and all(c in wnid_index for c in classes)
    samples = []
    if classes:
        for ci, cls in enumerate(classes):
            label = wnid_index[cls] if by_wnid else ci
            for dirpath, _, files in os.walk(base / cls):
                samples += [Sample(os.path.relpath(os.path.join(dirpath, f), base), os.path.join(dirpath, f), label)
                            for f in files if _is_image(f)]
    else:
        samples = [Sample(f, str(base / f), -1) for f in os.listdir(base) if _is_image(f)]
    if not samples:
        raise UserError(f"no images ({', '.join(IMG_EXTENSIONS[:4])}, ...) under {str(base)!r}: "
                        "pass data.root=PATH to a folder of class folders of images")
    return seeded_sample(samples, n_images, seed, f"{str(base)!r}")


def collate(items: list[dict]) -> dict:
    return {
        "id": [it["id"] for it in items],
        "path": [it["path"] for it in items],
        "label": torch.tensor([it["label"] for it in items]),
        "image": torch.stack([it["image"] for it in items]),
    }


def image_batches(dataset: ImageSet, batch_size: int, num_workers: int = 0) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=collate)

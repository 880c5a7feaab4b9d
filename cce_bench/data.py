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
    """Any photo as 8-bit RGB: grayscale and CMYK are converted, 16-bit is scaled (not clipped), and
    transparency is laid over white."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            values = np.asarray(img, dtype=np.float64)
            top = 65535.0 if values.max() > 255 else 255.0
            img = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")


def read_or_skip(sample_id: str, path: str) -> tuple[Image.Image | None, dict | None]:
    """The image, or the item of an image that cannot be read (corrupt, truncated, not an image): the
    batch goes on without it, and the run records why."""
    try:
        return load_rgb(path), None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for corrupt or truncated files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, {"id": sample_id, "path": path, "error": f"cannot read {path}: {reason}"}


class ImageSet(Dataset):
    def __init__(self, name: str, samples: list[Sample], transform):
        self.name = name
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        image, skipped = read_or_skip(s.id, s.path)
        if skipped:
            return skipped
        return {"index": index, "id": s.id, "path": s.path, "label": s.label, "image": self.transform(image)}


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
    good = [it for it in items if "error" not in it]
    return {
        "index": [it["index"] for it in good],
        "id": [it["id"] for it in good],
        "path": [it["path"] for it in good],
        "label": torch.tensor([it["label"] for it in good], dtype=torch.long),
        "image": torch.stack([it["image"] for it in good]) if good else torch.empty(0, 3, 0, 0),
        "skipped": [{"id": it["id"], "reason": it["error"]} for it in items if "error" in it],
    }


def collate_for(dataset: Dataset):
    return collate_pointing if isinstance(dataset, PointingSet) else collate


def image_batches(dataset: Dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=collate_for(dataset))


# -- COCO for the pointing game -----------------------------------------------------------------------

@dataclass(frozen=True)
class PointingSample:
    """One (image, category) pair: the union of the category's boxes is the mask to point into."""

    id: str
    path: str
    image_id: int
    category: str
    classes: tuple        # ImageNet classes mapped to the category; the target is the best-scoring one
    boxes: tuple          # COCO [x, y, w, h] in the original image, x the column and y the row
    width: int
    height: int


def coco_to_imagenet() -> dict[str, list[int]]:
    """The shipped COCO-category -> ImageNet-classes mapping (see assets/coco_to_imagenet.json)."""
    import json

    from .resources import asset_path

    doc = json.loads(asset_path("coco_to_imagenet.json").read_text(encoding="utf-8"))
    return {**doc["geirhos16"], **doc["added"]}


def box_mask(boxes, width: int, height: int) -> torch.Tensor:
    """[height, width] mask of the union of COCO boxes, by pixel centres (a pixel (row r, column c) is in a
    box [x, y, w, h] when x <= c + 0.5 < x + w and y <= r + 0.5 < y + h)."""
    cols = torch.arange(width) + 0.5
    rows = torch.arange(height) + 0.5
    mask = torch.zeros(height, width, dtype=torch.bool)
    for x, y, w, h in boxes:
        mask |= ((rows >= y) & (rows < y + h))[:, None] & ((cols >= x) & (cols < x + w))[None, :]
    return mask


def load_coco(annotations: str):
    from pycocotools.coco import COCO

    path = Path(annotations).expanduser()
    if not path.is_file():
        raise UserError(f"COCO annotation file {str(path)!r} does not exist: pass data.annotations=PATH "
                        "(e.g. DIR/annotations/instances_val2017.json)")
    import contextlib
    import io
    import json

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            return COCO(str(path))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AssertionError) as exc:
        raise UserError(f"COCO annotation file {str(path)!r} is not COCO instances JSON ({type(exc).__name__}): "
                        "pass the instances_val2017.json of COCO") from None


def coco_pairs(coco, images_dir: str, mapping: dict, max_box_fraction: float = 0.5,
               skipped: list | None = None) -> list[PointingSample]:
    """Every (image, mapped category) pair with at least one non-crowd box. A pair is left out (and
    noted in `skipped`) when one of its boxes covers more than `max_box_fraction` of the image (the
    Score-CAM filter) or when no box has positive area inside the image."""
    skipped = [] if skipped is None else skipped
    by_name = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    mapped = {name: classes for name, classes in mapping.items() if name in by_name}
    if not mapped:
        raise UserError("the COCO annotation file has none of the mapped categories "
                        f"({', '.join(sorted(mapping)[:6])}, ...): pass COCO's instances file")
    pairs = []
    for name, classes in sorted(mapped.items()):
        cat_id = by_name[name]
        for image_id in sorted(coco.getImgIds(catIds=[cat_id])):
            info = coco.loadImgs(image_id)[0]
            width, height = int(info["width"]), int(info["height"])
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[cat_id], iscrowd=False))
            boxes = []
            for ann in anns:
                x, y, w, h = (float(v) for v in ann["bbox"])
                x0, y0 = max(x, 0.0), max(y, 0.0)
                x1, y1 = min(x + w, width), min(y + h, height)
                if x1 > x0 and y1 > y0:
                    boxes.append((x0, y0, x1 - x0, y1 - y0))
            pair_id = f"{image_id}:{name}"
            if not boxes:
                skipped.append({"id": pair_id, "reason": "no box of positive area inside the image"})
                continue
            if max(w * h for _, _, w, h in boxes) > max_box_fraction * width * height:
                skipped.append({"id": pair_id, "reason": f"a box covers more than {max_box_fraction:g} of the image"})
                continue
            pairs.append(PointingSample(pair_id, str(Path(images_dir) / info["file_name"]), image_id, name,
                                        tuple(classes), tuple(boxes), width, height))
    return pairs


class PointingSet(Dataset):
    """(image, category) pairs with their box masks, transformed together by the same torchvision ops."""

    def __init__(self, name: str, samples: list[PointingSample], transform, skipped: list):
        self.name, self.samples, self.transform, self.skipped = name, samples, transform, skipped

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        from torchvision import tv_tensors

        s = self.samples[index]
        image, skipped = read_or_skip(s.id, s.path)
        if skipped:
            return skipped
        if image.size != (s.width, s.height):
            return {"id": s.id, "path": s.path, "error": f"{s.path} is {image.size[0]}x{image.size[1]} but the "
                    f"annotations say {s.width}x{s.height}: is it the image that data.annotations describes?"}
        mask = tv_tensors.Mask(box_mask(s.boxes, s.width, s.height)[None].to(torch.uint8))
        image, mask = self.transform(image, mask)
        allowed = torch.zeros(1000, dtype=torch.bool)
        allowed[list(s.classes)] = True
        return {"index": index, "id": s.id, "path": s.path, "label": -1, "image": image, "mask": mask[0].bool(),
                "allowed": allowed, "category": s.category}


def create_pointing_dataset(data_cfg, mean, std, seed: int = 0) -> PointingSet:
    cfg = dict(data_cfg)
    transform = preprocessing(mean, std, cfg.get("resize", 256), cfg.get("crop", 224), cfg.get("interpolation", "bilinear"))
    if cfg["name"] == "photos_coco":
        import skimage.data

        from .resources import asset_path

        annotations = str(asset_path("photos_coco.json"))
        images_dir = str(Path(skimage.data.__file__).parent)
    elif cfg["name"] == "coco":
        root = cfg.get("root")
        if not root or str(root) == "???":
            raise UserError("data.root is not set: pass data.root=/path/to/coco (holding val2017/ and annotations/)")
        if not Path(root).expanduser().is_dir():
            raise UserError(f"data root {str(root)!r} does not exist: pass data.root=/path/to/coco")
        annotations = str(Path(root).expanduser() / cfg.get("annotations", "annotations/instances_val2017.json"))
        images_dir = str(Path(root).expanduser() / cfg.get("images", "val2017"))
    else:
        raise UserError(f"unknown pointing-game data {cfg['name']!r}; known: coco, photos_coco")
    skipped: list = []
    pairs = coco_pairs(load_coco(annotations), images_dir, coco_to_imagenet(),
                       float(cfg.get("max_box_fraction", 0.5)), skipped)
    inside = [p for p in pairs if _mask_survives(p, transform)]
    kept = {p.id for p in inside}
    skipped += [{"id": p.id, "reason": "the boxes lie outside the center crop"} for p in pairs if p.id not in kept]
    pairs = inside
    if not pairs:
        raise UserError(f"no (image, category) pair of {cfg['name']} is left to evaluate "
                        f"({len(skipped)} skipped): raise data.max_box_fraction or check the annotations")
    if cfg.get("n_images") is not None:
        keep = {s.id for s in seeded_sample([Sample(p.id, p.path, -1) for p in pairs], int(cfg["n_images"]), seed,
                                            f"the {len(pairs)} evaluable pairs of {cfg['name']}")}
        pairs = [p for p in pairs if p.id in keep]
    return PointingSet(cfg["name"], pairs, transform, skipped)


def _mask_survives(pair: PointingSample, transform) -> bool:
    from torchvision import tv_tensors

    mask = tv_tensors.Mask(box_mask(pair.boxes, pair.width, pair.height)[None].to(torch.uint8))
    return bool(transform(mask).any())


def collate_pointing(items: list[dict]) -> dict:
    batch = collate(items)
    good = [it for it in items if "error" not in it]
    batch["mask"] = torch.stack([it["mask"] for it in good]) if good else torch.empty(0, 0, 0, dtype=torch.bool)
    batch["allowed"] = torch.stack([it["allowed"] for it in good]) if good else torch.empty(0, 1000, dtype=torch.bool)
    batch["category"] = [it["category"] for it in good]
    return batch

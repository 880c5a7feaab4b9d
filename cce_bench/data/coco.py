"""COCO for the pointing game: (image, category) pairs with their box masks, read through pycocotools,
from a local COCO (`coco`) or the COCO-format file shipped with the suite for the bundled photos
(`photos_coco`). Categories map to ImageNet classes by the shipped mapping."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..errors import UserError
from .images import ImageSet, Sample, collate_images, read_or_skip, seeded_sample
from .registry import DATASETS

IMAGENET_CLASSES = 1000


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


@dataclass(frozen=True)
class ContrastSample(PointingSample):
    """"Why P rather than Q?" on one image: P's pair (the fields above) with a second category Q of the
    same image, its mapped classes and boxes."""

    contrast_category: str = ""
    contrast_classes: tuple = ()
    contrast_boxes: tuple = ()


def contrast_pairs(pairs: list[PointingSample]) -> list[ContrastSample]:
    """Every ordered (P, Q) of two evaluable pairs of one image whose categories map to disjoint ImageNet
    classes: each is asked both ways ("why bench rather than bottle?" and "why bottle rather than bench?")."""
    by_image: dict = {}
    for pair in pairs:
        by_image.setdefault(pair.image_id, []).append(pair)
    out = []
    for image_pairs in by_image.values():
        for p in image_pairs:
            for q in image_pairs:
                if p is not q and not set(p.classes) & set(q.classes):
                    out.append(ContrastSample(f"{p.image_id}:{p.category}-vs-{q.category}", p.path, p.image_id,
                                              p.category, p.classes, p.boxes, p.width, p.height,
                                              q.category, q.classes, q.boxes))
    return out


def class_mapping(categories: tuple = ()) -> dict[str, list[int]]:
    """COCO category names -> the model's classes: the shipped ImageNet mapping for a model of ImageNet's 1000
    classes (or none given); for a model of classes of its own (parts_cnn), each of its class names to itself,
    as the files of `cce-bench export-parts` name their categories."""
    if categories and len(categories) != IMAGENET_CLASSES:
        return {str(name): [index] for index, name in enumerate(categories)}
    return coco_to_imagenet()


def coco_to_imagenet() -> dict[str, list[int]]:
    """The shipped COCO-category -> ImageNet-classes mapping (see assets/coco_to_imagenet.json)."""
    import json

    from ..resources import asset_path

    doc = json.loads(asset_path("coco_to_imagenet.json").read_text(encoding="utf-8"))
    return {**doc["geirhos16"], **doc["added"]}


MAX_SIDE = 65535  # JPEG's largest side; a box mask of a larger declared side would not fit in memory


def image_size(info: dict) -> tuple[int, int] | str:
    """(width, height) of a COCO image entry, or why they are not usable (the entry's pairs are skipped)."""
    values = (info.get("width"), info.get("height"))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and 0 < v <= MAX_SIDE
           for v in values):
        return int(values[0]), int(values[1])  # type: ignore[arg-type]  # numbers, checked above
    return (f"image {info.get('id')} has width {values[0]!r} and height {values[1]!r}: the annotation file must give "
            f"both as whole numbers of pixels > 0 (at most {MAX_SIDE})")


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
            coco = COCO(str(path))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AssertionError, UnicodeDecodeError) as exc:
        raise UserError(f"COCO annotation file {str(path)!r} is not COCO instances JSON ({type(exc).__name__}): "
                        "pass the instances_val2017.json of COCO") from None
    problem = coco_structure_problem(coco.dataset)
    if problem:
        raise UserError(
            f"COCO annotation file {str(path)!r} is malformed: {problem}: pass the instances_val2017.json of COCO"
        )
    return coco


def coco_structure_problem(dataset) -> str | None:
    """What makes a file unusable as a whole (the lists and their keys); single bad entries are skipped later."""
    if not isinstance(dataset, dict):
        return f"the top level is a {type(dataset).__name__}, not an object"
    for key in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(key), list):
            return f"it has no list {key!r}"
    for key, needed in (("images", ("id", "file_name", "width", "height")), ("categories", ("id", "name"))):
        for entry in dataset[key]:
            missing = [k for k in needed if not isinstance(entry, dict) or k not in entry]
            if missing:
                return f"an entry of {key!r} has no {missing[0]!r}"
    for entry in dataset["categories"]:
        if not isinstance(entry["name"], str):
            return f"category {entry['id']!r} has the name {entry['name']!r}, not a text"
    return None


def _sorted_ids(ids) -> list:
    try:
        return sorted(ids)
    except TypeError:  # ids of mixed types in a malformed file
        return sorted(ids, key=str)


def _is_box(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def boxes_or_reason(coco, image_id, cat_id, max_box_fraction: float) -> tuple[dict, tuple, int, int] | str:
    """(the image's entry, its non-crowd boxes of the category clipped to the image, its width and height), or
    why the pair is left out."""
    if isinstance(image_id, bool) or image_id not in coco.imgs:  # True == 1 would find image 1
        return f"an annotation points at image id {image_id}, which the file does not list"
    info = coco.imgs[image_id]
    size = image_size(info)
    if isinstance(size, str):
        return size
    width, height = size
    if not isinstance(info["file_name"], str) or not info["file_name"]:
        return f"its file_name {info['file_name']!r} is not a file name"
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[cat_id], iscrowd=False))
    bad = [a.get("id") for a in anns if not _is_box(a.get("bbox"))]
    if bad:
        return f"annotation {bad[0]} has no bbox [x, y, w, h] of numbers"
    boxes = []
    for ann in anns:
        x, y, w, h = (float(v) for v in ann["bbox"])
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1, y1 = min(x + w, width), min(y + h, height)
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1 - x0, y1 - y0))
    if not boxes:
        return "no box of positive area inside the image"
    if max(w * h for _, _, w, h in boxes) > max_box_fraction * width * height:
        return f"a box covers more than {max_box_fraction:g} of the image"
    return info, tuple(boxes), width, height


def coco_pairs(coco, images_dir: str, mapping: dict, max_box_fraction: float = 0.5,
               skipped: list | None = None, source: str = "the COCO annotation file") -> list[PointingSample]:
    """Every (image, mapped category) pair with at least one non-crowd box. A pair is left out (and
    noted in `skipped`) when one of its boxes covers more than `max_box_fraction` of the image (the
    Score-CAM filter) or when no box has positive area inside the image."""
    skipped = [] if skipped is None else skipped
    by_name = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    mapped = {name: classes for name, classes in mapping.items() if name in by_name}
    if not mapped:
        raise UserError(f"{source} has none of the categories the model's classes map to "
                        f"({', '.join(sorted(mapping)[:6])}, ...): pass COCO's instances file (for an ImageNet "
                        "model), or a file whose categories are the model's class names (cce-bench export-parts)")
    pairs = []
    for name, classes in sorted(mapped.items()):
        cat_id = by_name[name]
        for image_id in _sorted_ids(coco.getImgIds(catIds=[cat_id])):
            pair_id = f"{image_id}:{name}"
            found = boxes_or_reason(coco, image_id, cat_id, max_box_fraction)
            if isinstance(found, str):
                skipped.append({"image_id": pair_id, "reason": found})
                continue
            info, boxes, width, height = found
            pairs.append(PointingSample(pair_id, str(Path(images_dir) / info["file_name"]), image_id, name,
                                        tuple(classes), boxes, width, height))
    return pairs


class PointingSet(ImageSet):
    """(image, category) pairs with their box masks, transformed together by the same torchvision ops."""

    has_boxes = True

    def __init__(self, name: str, samples: list, transform, skipped: list | None = None,
                 class_count: int = IMAGENET_CLASSES):
        super().__init__(name, samples, transform, skipped)
        self.class_count = class_count  # the length of each item's `allowed`: the model's classes

    def samples_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"image_id": s.id, "path": s.path, "category": s.category, "boxes": list(s.boxes),
                              **({"contrast_category": s.contrast_category, "contrast_boxes": list(s.contrast_boxes)}
                                 if isinstance(s, ContrastSample) else {})}
                             for s in self.samples])

    @staticmethod
    def collate(items: list[dict]) -> dict:
        return collate_pointing(items)

    def __getitem__(self, index: int) -> dict:
        from torchvision import tv_tensors

        s = self.samples[index]
        image, skipped = read_or_skip(s.id, s.path)
        if skipped or image is None:
            return skipped or {}
        if image.size != (s.width, s.height):
            return {"image_id": s.id, "path": s.path, "error": f"{s.path} is {image.size[0]}x{image.size[1]} but the "
                    f"annotations say {s.width}x{s.height}: is it the image that data.annotations describes?"}
        mask = tv_tensors.Mask(box_mask(s.boxes, s.width, s.height)[None].to(torch.uint8))
        image, mask = self.transform(image, mask)
        item = {"index": index, "image_id": s.id, "path": s.path, "label": -1, "image": image, "mask": mask[0].bool(),
                "allowed": class_set(s.classes, self.class_count), "category": s.category}
        if isinstance(s, ContrastSample):
            contrast = tv_tensors.Mask(box_mask(s.contrast_boxes, s.width, s.height)[None].to(torch.uint8))
            item.update(
                contrast_mask=self.transform(contrast)[0].bool(),
                contrast_allowed=class_set(s.contrast_classes, self.class_count),
                contrast_category=s.contrast_category,
            )
        return item


def class_set(classes, count: int = IMAGENET_CLASSES) -> torch.Tensor:
    """The model's `count` classes (ImageNet's 1000) as a mask, true for `classes`."""
    allowed = torch.zeros(count, dtype=torch.bool)
    allowed[list(classes)] = True
    return allowed


@DATASETS.register("photos_coco")
def bundled_photos_coco(name: str, transform, seed: int = 0, categories: tuple = (), **cfg) -> PointingSet:
    """The COCO-format boxes shipped for the bundled photos (assets/photos_coco.json)."""
    from ..resources import asset_path
    from .images import bundled_photo_path

    images_dir = str(bundled_photo_path("chelsea").parent)
    return pointing_pairs(name, str(asset_path("photos_coco.json")), images_dir, transform, seed,
                          categories=categories, **cfg)


@DATASETS.register("coco")
def coco_folder(name: str, transform, seed: int = 0, root: str | None = None,
                annotations: str = "annotations/instances_val2017.json", images: str = "val2017",
                categories: tuple = (), **cfg) -> PointingSet:
    """A local COCO: root/annotations/instances_val2017.json and root/val2017/ (or any COCO-format folder, such as
    the part scenes that `cce-bench export-parts` writes, whose categories are the model's class names)."""
    if not root or str(root) == "???":
        raise UserError("data.root is not set: pass data.root=/path/to/coco (holding val2017/ and annotations/)")
    if not Path(root).expanduser().is_dir():
        what = "is a file, not a folder" if Path(root).expanduser().exists() else "does not exist"
        raise UserError(f"data root {str(root)!r} {what}: pass data.root=/path/to/coco")
    base = Path(root).expanduser()
    return pointing_pairs(name, str(base / annotations), str(base / images), transform, seed, categories=categories,
                          **cfg)


def pointing_pairs(name: str, annotations: str, images_dir: str, transform, seed: int = 0,
                   n_images: int | None = None, max_box_fraction: float = 0.5, contrastive: bool = False,
                   categories: tuple = (), **_) -> PointingSet:
    """The evaluable (image, category) pairs: filtered as `coco_pairs` does, then those whose boxes
    survive the center crop, then (with `n_images`) a seeded sample. `contrastive`: instead of the pairs,
    every (image, P, Q) of two of them (`contrast_pairs`), sampled likewise. `categories`: the model's class
    names (`class_mapping`)."""
    skipped: list = []
    mapping = class_mapping(categories)
    pairs = coco_pairs(load_coco(annotations), images_dir, mapping, float(max_box_fraction), skipped,
                       source=f"COCO annotation file {annotations!r}")
    inside = [p for p in pairs if _mask_survives(p, transform)]
    kept = {p.id for p in inside}
    skipped += [{"image_id": p.id, "reason": "the boxes lie outside the center crop"}
                for p in pairs if p.id not in kept]
    pairs = inside
    if not pairs:
        first = f"; the first: {skipped[0]['image_id']}: {skipped[0]['reason']}" if skipped else ""
        raise UserError(
            f"no (image, category) pair of {name} ({annotations}) is left to evaluate ({len(skipped)} skipped{first}): "
            "raise data.max_box_fraction or check the annotations"
        )
    evaluated: list[Any] = pairs
    if contrastive:
        evaluated = contrast_pairs(pairs)
        if not evaluated:
            raise UserError(f"no image of {name} has two evaluable categories mapped to ImageNet: the contrastive "
                            "game needs images with two annotated objects (COCO has many; raise data.max_box_fraction)")
    what = "(image, P, Q) questions" if contrastive else "evaluable pairs"
    if n_images is not None:
        keep = {s.id for s in seeded_sample([Sample(p.id, p.path, -1) for p in evaluated], int(n_images), seed,
                                            f"the {len(evaluated)} {what} of {name}")}
        evaluated = [p for p in evaluated if p.id in keep]
    count = len(categories) if categories and len(categories) != IMAGENET_CLASSES else IMAGENET_CLASSES
    return PointingSet(name, evaluated, transform, skipped, class_count=count)


def _mask_survives(pair: PointingSample, transform) -> bool:
    from torchvision import tv_tensors

    mask = tv_tensors.Mask(box_mask(pair.boxes, pair.width, pair.height)[None].to(torch.uint8))
    return bool(transform(mask).any())


def collate_pointing(items: list[dict]) -> dict:
    batch = collate_images(items)
    good = [it for it in items if "error" not in it]
    batch["mask"] = torch.stack([it["mask"] for it in good]) if good else torch.empty(0, 0, 0, dtype=torch.bool)
    batch["allowed"] = (torch.stack([it["allowed"] for it in good]) if good
                        else torch.empty(0, IMAGENET_CLASSES, dtype=torch.bool))
    batch["category"] = [it["category"] for it in good]
    if good and "contrast_mask" in good[0]:
        batch["contrast_mask"] = torch.stack([it["contrast_mask"] for it in good])
        batch["contrast_allowed"] = torch.stack([it["contrast_allowed"] for it in good])
        batch["contrast_category"] = [it["contrast_category"] for it in good]
    return batch

"""The part scenes as files that other tools read: an image folder with a folder per class (named by the
class's index and name, so that the folders in sorted order are the classes in order) and a COCO-format
annotation file (pycocotools reads it) whose masks are COCO RLE:

- per scene, the object: its category is the scene's class (named as the model names it), its mask the union
  of its parts and its box theirs (`compare data=coco` points into it, as the pointing game of data=parts does);
- each part: category `part:SLOT`, with its type (`part_type`) and whether it defines the class;
- each distractor: category `distractor`.

PNG keeps the pixels exact: a file read back is the scene drawn again, byte for byte.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .scenes import GENERATOR_VERSION, SHAPES, SLOTS, PartsWorld

ANNOTATIONS = "annotations.json"
IMAGES = "images"


def class_folder(world: PartsWorld, label: int) -> str:
    """A class's folder: its index, zero-padded, then its name (sorted folders are the classes in order)."""
    return f"{label:03d}-{world.class_name(label)}"


def export_categories(world: PartsWorld) -> list[dict]:
    """The classes (ids 1..n, in order), then one category per part slot, then `distractor`."""
    classes = [{"id": label + 1, "name": world.class_name(label), "supercategory": "object"}
               for label in range(len(world.classes))]
    slots = [{"id": len(classes) + 1 + slot, "name": f"part:{SLOTS[slot]}", "supercategory": "part"}
             for slot in range(world.parts)]
    distractor = {"id": len(classes) + len(slots) + 1, "name": "distractor", "supercategory": "distractor"}
    return [*classes, *slots, distractor]


def mask_annotation(number: int, image_id: int, category: int, mask: np.ndarray, **extra) -> dict:
    """One COCO annotation of a mask: its RLE, box [x, y, w, h] and area, as pycocotools computes them."""
    from pycocotools import mask as rle

    encoded = rle.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"id": number, "image_id": image_id, "category_id": category, "iscrowd": 0,
            "segmentation": {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")},
            "bbox": [float(v) for v in rle.toBbox(encoded)], "area": float(rle.area(encoded)), **extra}


def scene_annotations(world: PartsWorld, scene, drawn, image_id: int, first: int) -> list[dict]:
    """The object's, each part's and each distractor's annotations of one drawn scene, numbered from `first`."""
    n_classes = len(world.classes)
    distractor = n_classes + world.parts + 1
    whole = np.any(np.stack(list(drawn.part_masks.values())), axis=0)
    entries: list[tuple[int, np.ndarray, dict]] = [(scene.label + 1, whole, {})]
    entries += [(n_classes + 1 + part.slot, drawn.part_masks[part.slot], {"part_type": SHAPES[part.kind]})
                for part in scene.parts]
    entries += [(distractor, mask, {}) for _, mask in sorted(drawn.distractor_masks.items())]
    return [mask_annotation(first + k, image_id, category, mask, **extra)
            for k, (category, mask, extra) in enumerate(entries)]


def export_scenes(world: PartsWorld, split: str, count: int, folder: Path, progress: bool = True) -> dict:
    """Write the first `count` scenes of `split` under `folder` (images/CLASS/ID.png and annotations.json, the
    annotation file last, so that a folder with it is complete); returns the counts written."""
    images: list[dict] = []
    annotations: list[dict] = []
    for index in tqdm(range(count), desc="export-parts", unit="scene", dynamic_ncols=True, disable=not progress):
        scene = world.scene(split, index)
        drawn = world.render(scene)
        relative = f"{class_folder(world, scene.label)}/{scene.image_id}.png"
        path = folder / IMAGES / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(drawn.image).save(path)
        images.append({"id": index + 1, "file_name": relative, "width": world.side, "height": world.side,
                       "scene": scene.image_id})
        annotations += scene_annotations(world, scene, drawn, index + 1, len(annotations) + 1)
    info = {"description": "cce-bench part scenes", "generator_version": GENERATOR_VERSION, "split": split,
            "world": {"scene_seed": world.seed, "parts": world.parts, "types": world.types, "side": world.side,
                      "distractors": world.distractors}}
    document = {"info": info, "images": images, "annotations": annotations, "categories": export_categories(world)}
    partial = folder / f".{ANNOTATIONS}.partial"
    partial.write_text(json.dumps(document) + "\n", encoding="utf-8")
    partial.replace(folder / ANNOTATIONS)
    return {"scenes": count, "classes": len(world.classes), "annotations": len(annotations)}

"""Data sets behind one registry, split by source: image files and the bundled photos (`images`), a local
ImageNet folder (`imagenet`), COCO pairs with boxes (`coco`). Every data set has `name`, `samples`,
`skipped`, `has_boxes`, `samples_table()` and `collate(items)`. Every module of this package is imported
here, so a source is registered by existing (one module plus configs/data/NAME.yaml)."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from torch.utils.data import DataLoader

from ..models.inputs import resolve_input_settings
from .images import (
    BUNDLED_PHOTOS,
    ImageSet,
    Sample,
    bundled_photo_path,
    image_file,
    load_rgb,
    preprocessing,
    read_or_skip,
    seeded_sample,
)
from .registry import DATASETS

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def create_dataset(data_cfg, inputs, seed: int = 0, categories: tuple = ()) -> Any:
    """The data set named by `data_cfg.name`, fed as the model takes its input (`inputs`, the model's
    InputSettings); a resize, crop or interpolation that `data_cfg` sets (not null) wins. `categories`: the
    model's class names, for a source that maps its own categories to them (COCO)."""
    settings = resolve_input_settings(inputs, data_cfg)
    transform = preprocessing(settings.mean, settings.std, settings.resize, settings.size, settings.interpolation)
    cfg = {key: value for key, value in dict(data_cfg).items() if key not in ("resize", "crop", "interpolation")}
    source = DATASETS.get(cfg["name"])
    if categories and "categories" in inspect.signature(source).parameters:
        cfg["categories"] = tuple(categories)
    return source(transform=transform, seed=seed, **cfg)


def image_batches(dataset: Any, batch_size: int, num_workers: int = 0) -> DataLoader:
    """The data set's batches, collated by its own `collate` (images, or images with their box masks)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=dataset.collate)


__all__ = [
    "BUNDLED_PHOTOS",
    "DATASETS",
    "ImageSet",
    "Sample",
    "bundled_photo_path",
    "create_dataset",
    "image_file",
    "image_batches",
    "load_rgb",
    "preprocessing",
    "read_or_skip",
    "seeded_sample",
]

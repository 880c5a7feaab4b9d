"""The data sets by name (`data=photos|imagenet|coco|photos_coco`): each entry takes the config's keys
(with `name`), the model's `transform` and the `seed`, and returns a torch Dataset."""
from __future__ import annotations

from ..registry import Registry

DATASETS: Registry = Registry("data set")

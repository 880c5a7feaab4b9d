"""`data=parts`: the part scenes of cce_bench/parts (objects whose class is known from their parts), drawn from
the world's seed; each item carries its class, the union of its parts' masks as the pointing game's "boxes", and
its scene (`image_id` = SPLIT_INDEX), which the part metrics draw again with parts removed or swapped."""
from __future__ import annotations

import pandas as pd
import torch
from PIL import Image

from ..errors import UserError
from ..parts.scenes import SPLITS, PartsWorld
from .images import ImageSet, Sample, collate_images
from .registry import DATASETS

# The largest scene count a run may ask for: scenes are drawn on the fly, but each is a model input.
MAX_SCENES = 1_000_000


def world_of(cfg) -> PartsWorld:
    """The world of a `data=parts` config node (scene_seed, parts, types, side, distractors)."""
    return PartsWorld(seed=int(cfg["scene_seed"]), parts=int(cfg["parts"]), types=int(cfg["types"]),
                      side=int(cfg["side"]), distractors=int(cfg["distractors"]))


WORLD_KEYS = ("scene_seed", "parts", "types", "side", "distractors")


def world_overrides(data) -> dict:
    """The world's keys that differ from the default world's, as a later command must repeat them."""
    from ..settings.data import PartScenesData

    default = PartScenesData()
    return {key: data[key] for key in WORLD_KEYS if data[key] != getattr(default, key)}


class PartScenes(ImageSet):
    """The first `n_images` scenes of a split (classes in turn, so balanced), transformed as the model takes them."""

    has_boxes = True

    def __init__(self, name: str, world: PartsWorld, split: str, n_images: int, transform):
        samples = [Sample(f"{split}_{i:06d}", f"parts://{split}/{i}", i % len(world.classes)) for i in range(n_images)]
        super().__init__(name, samples, transform)
        self.world, self.split = world, split
        self.categories = [world.class_name(label) for label in range(len(world.classes))]

    def samples_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"image_id": s.id, "label": s.label, "class": self.categories[s.label]}
                             for s in self.samples])

    def __getitem__(self, index: int) -> dict:
        from torchvision import tv_tensors

        scene = self.world.scene(self.split, index)
        drawn = self.world.render(scene)
        parts = torch.from_numpy(sum(m.astype("uint8") for m in drawn.part_masks.values()) > 0)
        image, mask = self.transform(Image.fromarray(drawn.image), tv_tensors.Mask(parts[None].to(torch.uint8)))
        allowed = torch.zeros(len(self.categories), dtype=torch.bool)
        allowed[scene.label] = True
        return {"index": index, "image_id": scene.image_id, "path": self.samples[index].path, "label": scene.label,
                "image": image, "mask": mask[0].bool(), "allowed": allowed, "category": self.categories[scene.label]}

    @staticmethod
    def collate(items: list[dict]) -> dict:
        batch = collate_images(items)
        batch["mask"] = torch.stack([it["mask"] for it in items])
        batch["allowed"] = torch.stack([it["allowed"] for it in items])
        batch["category"] = [it["category"] for it in items]
        return batch


@DATASETS.register("parts")
def part_scenes(name: str, transform, n_images: int | None = 500, split: str = "test", **world) -> PartScenes:
    """`n_images` scenes of `split` in the world that `world`'s keys describe (scene_seed, parts, types, side,
    distractors)."""
    if split not in SPLITS:
        raise UserError(f"data.split={split!r} is not a split of the part scenes: pass one of {', '.join(SPLITS)}")
    count = 500 if n_images is None else int(n_images)
    if not 1 <= count <= MAX_SCENES:
        raise UserError(f"data.n_images={count} must be in 1..{MAX_SCENES}")
    return PartScenes(name, world_of(world), split, count, transform)

"""`cce-bench export-parts`: the part scenes of a world (data=parts: its seed, parts, types, side, distractors;
`data.split`, the first `data.n_images`) written as files: an image folder with a folder per class and a
COCO-format annotation file of the objects, parts and distractors (cce_bench/parts/export.py), which
`compare data=coco` and other tools read."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from ..data.parts import WORLD_KEYS, world_of, world_overrides
from ..errors import UserError
from ..parts.export import ANNOTATIONS, IMAGES, export_scenes
from ..runs.run_folder import mark_output_folder
from ..runs.runtime import resolve
from . import PlainCommand


def run_export_parts(cfg: DictConfig) -> Path:
    cfg = resolve(cfg)
    output = Path(cfg.out)
    if (output / ANNOTATIONS).exists():
        raise UserError(f"{output} already holds exported scenes ({ANNOTATIONS}): pass another out=DIR")
    mark_output_folder(output)
    world = world_of(cfg.data)
    count = 500 if cfg.data.n_images is None else int(cfg.data.n_images)
    written = export_scenes(world, str(cfg.data.split), count, output)
    changed = world_overrides(cfg.data)
    model_world = (" 'model.world=" + json.dumps({"name": "parts", **{k: cfg.data[k] for k in WORLD_KEYS}})
                   .replace('"', "").replace(" ", "") + "'") if changed else ""
    print(f"{written['scenes']} scenes of {cfg.data.split} ({written['classes']} classes) in {output / IMAGES} (a "
          f"folder per class) and {output / ANNOTATIONS} (COCO: {written['annotations']} masks of objects, parts and "
          f"distractors); score them as files with: cce-bench compare data=coco data.root={output} "
          f"data.images={IMAGES} data.annotations={ANNOTATIONS} model=parts_cnn{model_world}")
    return output


COMMAND = PlainCommand("export-parts", run_export_parts)

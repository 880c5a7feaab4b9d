"""`cce-bench train-parts`: train the small CNN on the part scenes of a world (data=parts: its seed, parts,
types, side, distractors), check its held-out accuracy and its reliance on the parts, and keep its weights in
the cache where `model=parts_cnn` finds them (keyed by the generator's version and the world)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from ..data.parts import world_of
from ..errors import UserError
from ..parts.training import MIN_ACCURACY, reliance_check, save_trained, scene_tensor, train_parts_cnn, weights_path
from ..runs.run_folder import mark_output_folder
from ..runs.runtime import resolve, seed_everything
from . import PlainCommand


def run_train_parts(cfg: DictConfig) -> Path:
    cfg = resolve(cfg)
    output = Path(cfg.out)
    mark_output_folder(output)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    world = world_of(cfg.data)
    net, report = train_parts_cnn(world, int(cfg.model.train_scenes), int(cfg.model.epochs), seed=int(cfg.seed))
    if report["accuracy"] < MIN_ACCURACY:
        raise UserError(f"the CNN reached {report['accuracy']:.2%} held-out accuracy (needs {MIN_ACCURACY:.0%}) in "
                        f"{report['seconds']:.0f} s: nothing was kept; pass model.epochs={2 * int(cfg.model.epochs)} "
                        "to train longer")
    reliance = reliance_check(lambda images: net(scene_tensor(images)), world)
    report["reliance"] = {"part_rate": reliance.part_rate, "distractor_rate": reliance.distractor_rate,
                          "scenes": reliance.scenes, "passes": reliance.passes}
    print(f"reliance check: {reliance.describe()}", file=sys.stderr)
    if not reliance.passes:
        raise UserError("the trained CNN fails the reliance check (its logits do not follow the parts): nothing was "
                        f"kept; train longer (model.epochs={2 * int(cfg.model.epochs)}) or with another seed")
    path = weights_path(world)
    save_trained(net, report, path)
    (output / "training.json").write_text(json.dumps({**report, "weights": str(path)}, indent=2) + "\n")
    print(f"parts_cnn trained in {report['seconds']:.0f} s on {report['train_scenes']} scenes: held-out accuracy "
          f"{report['accuracy']:.2%}; weights in {path}; use them with: cce-bench compare data=parts model=parts_cnn"
          + "".join(f" data.{key}={value}" for key, value in world_overrides(cfg.data).items()))
    return path


def world_overrides(data: DictConfig) -> dict:
    """The world's keys that differ from the default world's, as a later command must repeat them."""
    from ..settings.data import PartScenesData

    default = PartScenesData()
    return {key: data[key] for key in ("scene_seed", "parts", "types", "side", "distractors")
            if data[key] != getattr(default, key)}


COMMAND = PlainCommand("train-parts", run_train_parts)

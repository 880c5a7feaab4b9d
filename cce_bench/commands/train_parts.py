"""`cce-bench train-parts`: train the small CNN on the part scenes of a world (data=parts: its seed, parts,
types, side, distractors), check its held-out accuracy and its reliance on the parts, and keep its weights in
the cache where `model=parts_cnn` finds them (keyed by the generator's version and the world)."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from ..data.parts import world_of, world_overrides
from ..parts.network import OWN
from ..parts.training import save_trained, trained_and_checked, weights_path
from ..runs.run_folder import mark_output_folder
from ..runs.runtime import resolve, seed_everything
from . import PlainCommand


def run_train_parts(cfg: DictConfig) -> Path:
    cfg = resolve(cfg)
    output = Path(cfg.out)
    mark_output_folder(output)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    world = world_of(cfg.data)
    architecture = str(cfg.model.architecture)
    net, report, _ = trained_and_checked(world, int(cfg.model.train_scenes), int(cfg.model.epochs), seed=int(cfg.seed),
                                         architecture=architecture)
    path = weights_path(world, architecture)
    save_trained(net, report, path)
    (output / "training.json").write_text(json.dumps({**report, "weights": str(path)}, indent=2) + "\n")
    print(f"{architecture} trained in {report['seconds']:.0f} s on {report['train_scenes']} scenes: held-out accuracy "
          f"{report['accuracy']:.2%}; weights in {path}; use them with: cce-bench compare data=parts model=parts_cnn"
          + (f" model.architecture={architecture}" if architecture != OWN else "")
          + "".join(f" data.{key}={value}" for key, value in world_overrides(cfg.data).items()))
    return path


COMMAND = PlainCommand("train-parts", run_train_parts)

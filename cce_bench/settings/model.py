"""The models' settings: the keys every model has, a family member's (`model=torchvision_NAME`, `timm_NAME`)
and a model of your own by import path (`model=custom`, an open node: every other key is its argument)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from ..knobs import Knobs, knob
from ..models.inputs import INTERPOLATIONS
from ..rules import Rule
from .data import SIDE


@dataclass
class ModelSettings(Knobs):
    """A model of the suite: its name (a module of cce_bench/models) and where its weights come from."""

    group = "model"
    name: str = knob(MISSING, Rule("text"), "the model (a module of cce_bench/models, or FAMILY_NAME)")
    checkpoint: str | None = knob(None, Rule("text", nullable=True),
                                  "PATH to a state dict (loaded with weights_only=True); null: the library's cache")
    download: bool = knob(False, Rule("bool"), "true: let the library download the weights (needs network)")
    random_init: bool = knob(False, Rule("bool"), "true: random weights, for timing without downloads "
                                                  "(scripts/bench_table.py)")
    target_layer: str | None = knob(None, Rule("text", nullable=True),
                                    "the CAM methods' layer (a dotted path); null: the model's own, or found by the "
                                    "rule (docs/models.md)")


@dataclass
class TorchvisionModel(ModelSettings):
    """model=torchvision_NAME: any torchvision classification model, with its weights' input settings."""

    weights: str = knob("DEFAULT", Rule("text"), "torchvision's weights entry: DEFAULT, IMAGENET1K_V1, ...")


@dataclass
class TimmModel(ModelSettings):
    """model=timm_NAME: any timm model, with its pretrained_cfg's input settings (weights from the Hugging Face
    cache, $HF_HOME/hub, or `checkpoint`)."""


@dataclass
class CustomModel(ModelSettings):
    """model=custom model._target_=my_pkg.nets.build: your own classifier by import path. The callable returns
    an nn.Module mapping normalised images [B, 3, H, W] to logits [B, classes]; any other model.KEY=VALUE is
    passed to it as an argument."""

    name: str = knob("custom", Rule("text"), "custom")
    _target_: str = knob(MISSING, Rule("text"), "PACKAGE.MODULE.CALLABLE, importable (its module on PYTHONPATH)")
    input_size: int = knob(224, Rule("whole", *SIDE), "the side of the square input")
    resize: int | None = knob(None, Rule("whole", *SIDE, nullable=True),
                              "the shorter side before the centre crop; null: input_size / 0.875 (256 for 224)")
    interpolation: str = knob("bilinear", Rule("choice", choices=INTERPOLATIONS), "the resize's interpolation")
    mean: list = knob([0.485, 0.456, 0.406], Rule("list", each=Rule("number", -1e6, 1e6)),
                      "the input normalisation's mean (ImageNet's)")
    std: list = knob([0.229, 0.224, 0.225], Rule("list", each=Rule("number", 0, 1e6, low_open=True)),
                     "the input normalisation's standard deviation, each > 0")
    categories: str | None = knob(None, Rule("text", nullable=True),
                                  "FILE with one class name a line, in output order; null: ImageNet's for 1000 outputs")


@dataclass
class PartsModel(ModelSettings):
    """model=parts_cnn: the small CNN the suite trains on its part scenes, for the run's data=parts."""

    world: Any = knob("${oc.select:data,null}", Rule("mapping", nullable=True),
                      "the part scenes it is trained on: the run's data=parts (its scene_seed, parts, types, side, "
                      "distractors); else the default world")
    train_scenes: int = knob(8000, Rule("whole", 64, 10_000_000), "training scenes, when it is trained (no cache)")
    epochs: int = knob(4, Rule("whole", 1, 1000), "passes over them")
    architecture: str = knob("parts_cnn", Rule("text"), "the network trained: parts_cnn (the suite's small CNN), or "
                             "any torchvision_NAME / timm_NAME, from scratch with the world's classes")


# model=FAMILY_NAME: the family's settings with its name (composing.register_family_member).
FAMILIES = {"torchvision": TorchvisionModel, "timm": TimmModel}
# Choices that are open nodes: any other key is an argument of the user's code.
OPEN_MODELS = {"custom": CustomModel}

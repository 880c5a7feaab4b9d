"""The model registry and each model's facts: what a method needs to know about a network that the
network cannot say itself. A model module registers its builder with its facts in one place:

    @register_model("vgg19", ModelFacts(target_layer="features.35", perceptual_layers=(...)))
    def vgg19(checkpoint=None, download=False, random_init=False) -> Classifier: ...

Besides the registered models, two families make a builder for any member by name (`torchvision_NAME`,
`timm_NAME`: models/families.py), and `custom` builds the user's own module by import path
(models/custom.py). A model whose facts name no target layer gets one by the rule of models/target_layer.py.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass, replace

from ..registry import Registry

MODELS: Registry = Registry("model")

# The modules of this package that are pieces of the machinery, not models.
PIECES = {"classifier", "facts", "inputs", "passes", "precision", "target_layer", "weights"}


@dataclass(frozen=True)
class ModelFacts:
    """Per-model facts the methods read (None: the model has no default; the method then asks for a knob).

    target_layer: the CAM methods' layer (Grad-CAM++, Score-CAM, contrastive Grad-CAM), a dotted path
        into the network: the last convolutional block, whose output is pooled into the logits.
    perceptual_layers: APPB's phi_l, the layers whose outputs its perceptual distance compares.
    rise: RISE's (N masks, grid cells per side, keep probability) for this model. The default, 4000
        masks of a 7x7 grid kept with probability 0.5, is the common re-implementation setting (e.g.
        xplique's); the RISE paper's own per-model text was not available to check.
    """

    target_layer: str | None = None
    perceptual_layers: tuple[str, ...] | None = None
    rise: tuple[int, int, float] = (4000, 7, 0.5)
    # why the model has no target layer (a transformer), for the CAM methods' line saying they cannot run
    no_target_layer: str | None = None


def register_model(name: str, facts: ModelFacts):
    """Registers a model builder `(checkpoint, download, random_init) -> Classifier` with its facts."""
    def add(builder):
        builder.facts = facts
        return MODELS.register(name)(builder)

    return add


def discover() -> None:
    """Imports every model module of this package, so that a model is registered by existing."""
    for module in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        if module.name not in PIECES:
            importlib.import_module(f"{__package__}.{module.name}")


def facts_of(model) -> ModelFacts:
    """The facts of a Classifier (set when it is built); a bare network gets the defaults (no layers)."""
    facts = getattr(model, "facts", None)
    return facts if isinstance(facts, ModelFacts) else ModelFacts()


def create_model(name: str, checkpoint: str | None = None, device="cpu", download: bool = False,
                 random_init: bool = False, precision: str | None = None, target_layer: str | None = None,
                 **options):
    """Look a classifier up by name (`efficientnet_lite0`, `vgg19`, `torchvision_resnet18`, `timm_resnet18`,
    `custom`) and load its weights; `random_init` keeps the architecture's own random initialisation (for
    timing without weights); `precision` (PRECISIONS) is set when given, else torch's settings are left as
    they are; `target_layer` overrides the CAM methods' layer (else the model's facts, else the rule of
    models/target_layer.py); `options` are the builder's own (a torchvision member's `weights`, a custom
    model's `_target_` and arguments)."""
    from .precision import set_precision

    discover()
    builder = MODELS.get(name)
    model = builder(checkpoint=checkpoint, download=download, random_init=random_init, **options)
    # a builder whose network depends on its options (parts_cnn's architecture) gives the model facts of its own
    model.facts = facts_with_layer(getattr(model, "own_facts", None) or builder.facts, model, target_layer)
    # what the model's weights are, for messages about them
    model.weights_source = f"model {name}" + (f" with checkpoint {checkpoint}" if checkpoint else
                                               " with random weights" if random_init else " with its own weights")
    if precision is not None:
        set_precision(model, precision)
    return model.to(device)


def facts_with_layer(facts: ModelFacts, model, target_layer: str | None) -> ModelFacts:
    """The facts with the CAM methods' layer: the one named, else the facts', else the one the rule finds
    (said on stderr, as a run records it in config.yaml)."""
    from ..errors import UserError
    from .target_layer import find_target_layer

    if target_layer:
        try:
            model.net.get_submodule(str(target_layer))
        except AttributeError:
            raise UserError(f"model.target_layer={target_layer}: the model has no such module: pass a dotted path "
                            "that `print(model)` shows (e.g. layer4.1), or leave it null to have one found") from None
        return replace(facts, target_layer=str(target_layer))
    if facts.target_layer is not None:
        return facts
    found = find_target_layer(model.net, model.inputs.size)
    if found.path is not None:
        print(f"model {model.name}: target layer {found.path} (the last map before the pooling; "
              "model.target_layer=PATH names another)", file=sys.stderr)
    return replace(facts, target_layer=found.path, no_target_layer=found.why_none)

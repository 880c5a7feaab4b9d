"""VGG-19 (torchvision, IMAGENET1K_V1): the paper's model for Tables 1-4."""
from __future__ import annotations

from torch import nn

from .classifier import Classifier
from .facts import ModelFacts, register_model
from .weights import torchvision_classifier

FACTS = ModelFacts(
    target_layer="features.35",  # the last conv block's ReLU, as Grad-CAM++ and Score-CAM take VGG
    # APPB's phi_l: the ReLU outputs 11, 13, 15, 17, 20, 22 (the authors' vgg19_bn ReLUs 16..32)
    perceptual_layers=("features.11", "features.13", "features.15", "features.17", "features.20", "features.22"),
)


class AvgPoolUnlessSeven(nn.Module):
    """VGG's AdaptiveAvgPool2d((7, 7)) is an identity at 224x224 input, and its backward is a
    non-deterministic CUDA kernel: skip it when the input is already 7x7."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        return x if x.shape[-2:] == (7, 7) else self.pool(x)


@register_model("vgg19", FACTS)
def vgg19(checkpoint=None, download=False, random_init=False) -> Classifier:
    model = torchvision_classifier("vgg19", checkpoint, download, random_init)
    model.net.avgpool = AvgPoolUnlessSeven(model.net.avgpool)
    return model

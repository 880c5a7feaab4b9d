"""ResNet-50 (torchvision, IMAGENET1K_V1)."""
from __future__ import annotations

from .classifier import Classifier
from .facts import ModelFacts, register_model
from .weights import torchvision_classifier

FACTS = ModelFacts(
    target_layer="layer4.2",  # the last bottleneck block
    perceptual_layers=("layer2", "layer3"),  # APPB: this suite's choice, two mid-level stages
    rise=(
        6000,
        8,
        0.1,
    ),  # the RISE authors' released PyTorch code (eclique/RISE, Saliency.py: generate_masks(N=6000, s=8, p1=0.1))
)


@register_model("resnet50", FACTS)
def resnet50(checkpoint=None, download=False, random_init=False) -> Classifier:
    return torchvision_classifier("resnet50", checkpoint, download, random_init)

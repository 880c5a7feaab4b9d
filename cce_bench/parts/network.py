"""The networks the suite trains on the part scenes (`model=parts_cnn`): its own small CNN (four 3x3 convolution
blocks with batch norm, the first three followed by 2x2 max pooling, global average pooling and one linear layer;
its last block, `features.3`, is the CAM methods' layer), or, with `model.architecture`, any torchvision_NAME or
timm_NAME architecture, from scratch with the world's classes."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..errors import UserError

OWN = "parts_cnn"

WIDTHS = (16, 32, 64, 64)


def parts_cnn_network(classes: int) -> nn.Module:
    blocks: list[nn.Module] = []
    channels = 3
    for index, width in enumerate(WIDTHS):
        block = [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        if index < len(WIDTHS) - 1:
            block.append(nn.MaxPool2d(2))
        blocks.append(nn.Sequential(*block))
        channels = width
    return nn.Sequential(OrderedDict(features=nn.Sequential(*blocks), pool=nn.AdaptiveAvgPool2d(1),
                                     flatten=nn.Flatten(), classifier=nn.Linear(channels, classes)))


def folded_batch_norms(net: nn.Module) -> nn.Module:
    """The suite's CNN (in eval mode) with each block's batch norm folded into its convolution, left as an identity so
    that every layer keeps its name: the same function, one layer less per block, about half the time per gradient
    pass on a CPU (docs/measurements.md)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net.eval()
    for block in net.get_submodule("features").children():
        conv, norm = block.get_submodule("0"), block.get_submodule("1")
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            block.register_module("0", fuse_conv_bn_eval(conv, norm))
            block.register_module("1", nn.Identity())
    return net


def parts_network(architecture: str, classes: int) -> nn.Module:
    """The untrained network of `architecture` (OWN, torchvision_NAME or timm_NAME) with `classes` outputs."""
    if architecture == OWN:
        return parts_cnn_network(classes)
    family, _, name = architecture.partition("_")
    if family == "torchvision":
        import torchvision

        if name in torchvision.models.list_models():
            return torchvision.models.get_model(name, weights=None, num_classes=classes)
    elif family == "timm":
        import timm

        if name in timm.list_models():
            return timm.create_model(name, pretrained=False, num_classes=classes)
    raise UserError(f"model.architecture={architecture} is not a network to train on the part scenes: pass "
                    f"{OWN} (the suite's small CNN), torchvision_NAME or timm_NAME (`cce-bench models` lists them)")

"""The small CNN the suite trains on the part scenes (`model=parts_cnn`): four 3x3 convolution blocks with
batch norm, the first three followed by 2x2 max pooling, global average pooling and one linear layer. Its last
block (`features.3`) is the CAM methods' layer."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

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

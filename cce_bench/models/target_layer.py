"""The CAM methods' layer of a model nobody named one for: the last module whose output is a 4-D map with
more than one spatial cell, before the classifier's pooling (the rule torchcam uses to pick its default).

One forward pass of a blank image records every module's output in the order the outputs are made. Outputs
of pooling layers are not candidates (nor a container's output that is a pooling layer's), so VGG gets its
last ReLU, not the max-pool after it. Of the modules that give the chosen tensor, the outermost one that is
called once and is not a plain container is named (of equally deep ones, the last: an in-place ReLU
rather than its convolution): ResNet's last bottleneck `layer4.2` rather than
`layer4` (a Sequential) or its `relu` (called three times). A model with attention layers works on tokens,
not on a convolutional map, and gets no layer: the CAM methods then say they cannot run on it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class FoundLayer:
    """The layer's dotted path, or None with the reason no layer fits."""

    path: str | None
    why_none: str | None = None


def is_attention(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention) or "attention" in type(module).__name__.lower()


@torch.no_grad()
def find_target_layer(net: nn.Module, size: int = 224) -> FoundLayer:
    """The rule above on `net` fed one blank size x size image (on the network's device)."""
    if any(is_attention(m) for m in net.modules()):
        return FoundLayer(None, "it has attention layers (a transformer: its features are tokens, not a "
                                "convolutional map)")
    made: list[tuple[str, nn.Module, object]] = []
    calls: Counter = Counter()

    def recorder(name: str):
        def hook(module, _inputs, output):
            calls[name] += 1
            made.append((name, module, output))
        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in net.named_modules() if name]
    try:
        parameter = next(net.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        net(torch.zeros(1, 3, size, size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    pooled = {id(output) for _, module, output in made if isinstance(module, POOLING)}
    maps = [output for _, _, output in made
            if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[2] * output.shape[3] > 1
            and id(output) not in pooled]
    if not maps:
        return FoundLayer(None, "no module gives a 4-D map with more than one spatial cell")
    last = maps[-1]
    producers = [name for name, module, output in made
                 if output is last and calls[name] == 1 and not isinstance(module, CONTAINERS)]
    if not producers:
        producers = [name for name, _, output in made if output is last]
    # the outermost; of equally deep ones the last made (an in-place ReLU after its convolution)
    return FoundLayer(min(reversed(producers), key=lambda name: name.count(".")))

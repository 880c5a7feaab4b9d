"""Target layers of the CAM-style methods, by model, and a hook that keeps a layer's output."""
from __future__ import annotations

from contextlib import contextmanager

from torch import nn

from ..errors import UserError

# The last convolutional block of each model (baselines.md: VGG-19 features[35], ResNet-50 layer4[-1];
# EfficientNet-Lite0: its last BatchNorm + ReLU6, the 1280-channel 7x7 map before pooling).
DEFAULT_TARGET_LAYERS = {"vgg19": "features.35", "resnet50": "layer4.2", "efficientnet_lite0": "bn2"}


def network(model: nn.Module) -> nn.Module:
    """The bare network inside the suite's Classifier wrapper (or the model itself)."""
    return getattr(model, "net", model)


def resolve_layer(model: nn.Module, path: str | None) -> nn.Module:
    """A submodule by dotted path (`layer4.2`), or the model's default target layer when `path` is null."""
    if path is None:
        name = getattr(model, "name", None)
        if name not in DEFAULT_TARGET_LAYERS:
            raise UserError(f"no default target layer for model {name or type(model).__name__}: "
                            "pass the method's target_layer=DOTTED.PATH (e.g. layer4.2)")
        path = DEFAULT_TARGET_LAYERS[name]
    try:
        return network(model).get_submodule(str(path))
    except AttributeError:
        raise UserError(f"model has no layer {path!r}: pass target_layer=DOTTED.PATH of one of its modules") from None


@contextmanager
def capture_outputs(layers: list[nn.Module]):
    """Yields a list that holds each layer's output of the last forward pass, graph included."""
    outputs: list = [None] * len(layers)

    def keeper(i):
        def hook(_module, _inputs, output):
            outputs[i] = output
        return hook

    handles = [layer.register_forward_hook(keeper(i)) for i, layer in enumerate(layers)]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()

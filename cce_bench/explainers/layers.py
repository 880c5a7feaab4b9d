"""A model's layers by dotted path (its default target layer from its facts, or for a bare network the one
models/target_layer.py finds), and a hook that keeps a layer's output."""
from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import UserError
from ..models import facts_of
from ..tensors import device_of


def network(model: nn.Module) -> nn.Module:
    """The bare network inside the suite's Classifier wrapper (or the model itself)."""
    return getattr(model, "net", model)


def resolve_layer(model: nn.Module, path: str | None, knob: str) -> nn.Module:
    """A submodule by dotted path (`layer4.2`), or the model's default target layer (its facts) when `path`
    is null; `knob` is how the message names the method's setting that fixes a wrong path."""
    if path is None:
        knob = "model.target_layer=DOTTED.PATH"  # the path comes from the model's settings
        facts = facts_of(model) if getattr(model, "facts", None) is not None else None
        if facts is None:  # a bare network: the layer the rule finds
            from ..models.target_layer import find_target_layer

            found = find_target_layer(network(model))
            facts = type(facts_of(model))(target_layer=found.path, no_target_layer=found.why_none)
        path = facts.target_layer
        name = getattr(model, "name", None) or type(model).__name__
        if path is None and facts.no_target_layer:
            from .base import MethodUnavailable

            raise MethodUnavailable(f"model {name} has no convolutional layer for this method: "
                                    f"{facts.no_target_layer}; gradient, path and perturbation methods run on it "
                                    "(or name a layer: model.target_layer=PATH)", "cannot run here")
        if path is None:
            raise UserError(f"no default target layer for model {name}: "
                            "pass the method's target_layer=DOTTED.PATH (e.g. layer4.2)")
    try:
        layer = network(model).get_submodule(str(path))
    except AttributeError:
        names = [name for name, _ in network(model).named_children()][:6]
        raise UserError(f"the model has no layer {str(path)!r}: pass {knob} naming one of its modules (dotted paths "
                        f"under {', '.join(names)}; `print(model)` lists them)") from None
    if layer not in SPATIAL_LAYERS:
        check_spatial(model, layer, str(path), knob)
        SPATIAL_LAYERS.add(layer)
    return layer


SPATIAL_LAYERS: weakref.WeakSet[nn.Module] = weakref.WeakSet()  # layers checked once per process


@torch.no_grad()
def check_spatial(model: nn.Module, layer: nn.Module, path: str, knob: str) -> None:
    """Refuses, before any work, a layer whose output is not a map per channel [B, C, H, W]: the layer
    methods weigh and pool its channels over space. One probe image at the model's input side, through the bare
    network so that the run's pass count does not see it."""
    inputs = getattr(model, "inputs", None)
    size = int(inputs.size) if inputs is not None else 224
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    with capture_outputs([layer]) as outputs:
        network(model)(torch.zeros(1, 3, size, size, device=device_of(model), dtype=dtype))
    output = outputs[0]
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise UserError(f"layer {path!r} gives {shape} for one image, not a map per channel [B, C, H, W]: pass {knob} "
                        "naming a convolutional layer (e.g. the last convolutional block)")


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

"""A model's layers by dotted path (its default target layer from its facts, or for a bare network the one
models/target_layer.py finds), and a hook that keeps a layer's output."""
from __future__ import annotations

from contextlib import contextmanager

from torch import nn

from ..errors import UserError
from ..models import facts_of


def network(model: nn.Module) -> nn.Module:
    """The bare network inside the suite's Classifier wrapper (or the model itself)."""
    return getattr(model, "net", model)


def resolve_layer(model: nn.Module, path: str | None, knob: str = "target_layer=DOTTED.PATH") -> nn.Module:
    """A submodule by dotted path (`layer4.2`), or the model's default target layer (its facts) when `path`
    is null; `knob` is how the message names the setting that fixes a wrong path."""
    if path is None:
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
        return network(model).get_submodule(str(path))
    except AttributeError:
        names = [name for name, _ in network(model).named_children()][:6]
        raise UserError(f"the model has no layer {str(path)!r}: pass {knob} naming one of its modules (dotted paths "
                        f"under {', '.join(names)}; `print(model)` lists them)") from None


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

"""Your own classifier by import path, the Hydra way: `model=custom model._target_=my_pkg.nets.build
model.depth=18`. The target is any callable that returns an `nn.Module` mapping normalised images
[B, 3, H, W] to logits [B, classes]; every key of `model` that configs/model/open/custom.yaml does not declare is
its argument.
Its input settings are the config's (model.input_size, model.resize, model.interpolation, model.mean,
model.std), its class names model.categories (a file, one a line; ImageNet's for 1000 outputs)."""
from __future__ import annotations

from torch import nn

from ..errors import UserError
from .classifier import Classifier, categories_for, check_logits
from .facts import ModelFacts, register_model
from .inputs import IMAGENET_MEAN, IMAGENET_STD, InputSettings
from .weights import load_into, load_state_dict


def build_module(target: str, arguments: dict) -> nn.Module:
    """The module `target(**arguments)` returns, each failure one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if not target or target == "???":
        raise UserError("model=custom needs model._target_=PACKAGE.MODULE.CALLABLE (a function or class that returns "
                        "the nn.Module)")
    try:
        net = instantiate({"_target_": str(target), **arguments}, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        text = str(cause or exc).strip()
        lines = [line for line in text.splitlines() if line and not line.startswith("Error loading")]
        first = lines[0] if lines else type(cause or exc).__name__
        if "Error locating target" in str(exc) or isinstance(cause, (ImportError, AttributeError)):
            raise UserError(f"model._target_={target} does not import ({first}): is its module on PYTHONPATH, and "
                            "is the callable's name right?") from None
        raise UserError(f"model._target_={target} failed when called with {arguments or 'no arguments'} "
                        f"({type(cause).__name__ if cause else 'error'}: {first}): pass its arguments as "
                        "model.KEY=VALUE") from None
    except SystemExit as exc:  # a script's sys.exit() reached by the import or the call: not the run's own exit
        raise UserError(f"model._target_={target} called sys.exit({exc.code!r}) when imported or called: point it at "
                        "a function or class that returns the network, not at a script") from None
    if not isinstance(net, nn.Module):
        raise UserError(f"model._target_={target} returned a {type(net).__name__}, not a torch.nn.Module: point it at "
                        "a function or class that returns the network")
    return net


@register_model("custom", ModelFacts())
def custom(checkpoint=None, download=False, random_init=False, _target_=None, input_size=224, resize=None,
           interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD, categories=None, **arguments) -> Classifier:
    net = build_module(str(_target_), arguments)
    if checkpoint:
        load_into(net, load_state_dict(checkpoint), str(_target_), checkpoint)
    for key, values in (("mean", mean), ("std", std)):
        if len(list(values)) != 3:
            raise UserError(f"model.{key}={list(values)} must have 3 values, one for each of R, G and B")
    inputs = (InputSettings.from_crop_fraction(int(input_size), 0.875, interpolation, mean, std) if resize is None
              else InputSettings(int(input_size), int(resize), interpolation, tuple(mean), tuple(std)))
    name = f"custom ({_target_})"
    outputs = check_logits(net.eval(), inputs.size, name)
    return Classifier(name, net, inputs, categories_for(outputs, categories))

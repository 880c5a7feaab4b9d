"""Loading a model's weights: a state dict from a path, torchvision's cache, or (when allowed) a download."""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from ..errors import UserError


def load_state_dict(path: str | Path) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"model checkpoint {str(path)!r} does not exist: pass model.checkpoint=PATH to a .pth file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or non-tensor file
        raise UserError(f"model checkpoint {str(path)!r} cannot be read as a state dict ({type(exc).__name__}): "
                        "pass a .pth file saved with torch.save(model.state_dict())") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(
            f"model checkpoint {str(path)!r} holds no state dict: save it with torch.save(model.state_dict())"
        )
    return state


def load_into(net: nn.Module, state: dict, name: str, source: str) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"checkpoint {source} does not fit model {name!r} ({first}): "
                        f"pass the {name} ImageNet weights as model.checkpoint=PATH") from None


def torchvision_weights(name: str, weights, checkpoint: str | None, download: bool) -> dict:
    """The state dict from a checkpoint path, else torchvision's cache, else (if allowed) a download."""
    if checkpoint:
        return load_state_dict(checkpoint)
    filename = Path(weights.url).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return load_state_dict(cached)
    if download:
        return weights.get_state_dict(progress=True, check_hash=True)
    raise UserError(
        f"no weights for {name}: put {filename} ({weights.url}) into {cached.parent}/ "
        f"or pass model.checkpoint=PATH (or model.download=true on a machine with network)")


def imagenet_weights(name: str):
    """torchvision's ImageNet weights entry of a network (IMAGENET1K_V1, the weights the paper's tables used)."""
    return torchvision.models.get_model_weights(name).IMAGENET1K_V1


def torchvision_imagenet_network(name: str, checkpoint: str | None = None, download: bool = False) -> nn.Module:
    """A torchvision network by its torchvision name (`vgg19`, `resnet50`) with its ImageNet weights: from
    `checkpoint`, else torchvision's cache, else (with `download`) the network."""
    net = torchvision.models.get_model(name, weights=None)
    load_into(
        net,
        torchvision_weights(name, imagenet_weights(name), checkpoint, download),
        name,
        checkpoint or "from the cache",
    )
    return net


def torchvision_classifier(name: str, checkpoint: str | None, download: bool, random_init: bool = False):
    """A torchvision ImageNet network (IMAGENET1K_V1) in the suite's Classifier, with that weight's input
    settings (random weights with `random_init`)."""
    from .classifier import Classifier
    from .inputs import InputSettings

    net = torchvision.models.get_model(name, weights=None) if random_init else \
        torchvision_imagenet_network(name, checkpoint, download)
    weights = imagenet_weights(name)
    return Classifier(name, net, InputSettings.from_torchvision(weights), list(weights.meta["categories"]))

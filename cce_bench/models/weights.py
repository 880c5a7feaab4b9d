"""Loading a model's weights: a state dict from a path, torchvision's cache, or (when allowed) a download."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from ..errors import UserError

T = TypeVar("T")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def downloading(fetch: Callable[[], T], url: str, what: str, instead: str) -> T:
    """`fetch()` (a library's download) for model.download=true, refused in one line when `url`'s host
    cannot be reached (the libraries retry for a minute, then raise their own error) or when it fails.
    `instead` says how to get the weights without network."""
    host = urlparse(url).hostname or url
    if not any(os.environ.get(v) for v in PROXY_VARIABLES):  # behind a proxy only the library can tell
        try:
            socket.create_connection((host, 443), timeout=10).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UserError(f"model.download=true cannot reach {host} ({reason}) for {what}: {instead}") from None
    try:
        return fetch()
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - network, hub and hash errors of torch.hub or huggingface_hub
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"downloading {what} from {host} failed ({type(exc).__name__}: {first[:200]}): "
                        f"{instead}") from None


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
        return downloading(lambda: weights.get_state_dict(progress=True, check_hash=True), weights.url,
                           f"{name}'s weights", f"put {filename} ({weights.url}) into {cached.parent}/ on a machine "
                           "with network, or pass model.checkpoint=PATH")
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

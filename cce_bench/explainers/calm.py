"""CALM: Class Activation Latent Mapping (Kim et al., ICCV 2021).

CALM explains its own classifier: a ResNet-50 backbone with a head of two 1x1 convolutions over the
last feature map f(x): class maps give p(y | z, x) (softmax over classes at each position z), and a
spatial prior gives p(z | x) (softmax over positions). The classifier is p(y | x) = sum_z p(y, z | x)
and the attribution map of class y is the joint p(y, z | x) over the positions. Train it with
`cce-bench train-calm` (CALM-EM); without a checkpoint the method cannot run, and says so.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..errors import UserError
from ..models import IMAGENET_MEAN, IMAGENET_STD
from ..safe_files import write_atomic
from ..tensors import device_of, to_normalised, to_pixels
from .base import Explainer, MethodUnavailable, register

ARCH = "calm_resnet50"


class CALMNet(nn.Module):
    """ResNet-50 features + CALM head; forward returns log p(y | x) (a valid logit vector)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        backbone = torchvision.models.resnet50(weights=None)
        self.features = nn.Sequential(*list(backbone.children())[:-2])
        self.class_maps = nn.Conv2d(2048, classes, kernel_size=1)
        self.prior = nn.Conv2d(2048, 1, kernel_size=1)

    def joint_log_prob(self, images: torch.Tensor) -> torch.Tensor:
        """log p(y, z | x) [B, classes, h, w]."""
        f = self.features(images)
        log_class_given_z = F.log_softmax(self.class_maps(f), dim=1)
        log_z = F.log_softmax(self.prior(f).flatten(1), dim=1).view(f.shape[0], 1, *f.shape[-2:])
        return log_class_given_z + log_z

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.joint_log_prob(images).flatten(2).logsumexp(2)


def calm_em_loss(joint_log_prob: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CALM-EM: -sum_z sg(p(z | x, y)) log p(y, z | x), the posterior over positions held fixed (E-step)."""
    log_joint = joint_log_prob[torch.arange(len(labels)), labels].flatten(1)
    posterior = log_joint.detach().softmax(dim=1)
    return -(posterior * log_joint).sum(1).mean()


def save_calm(net: CALMNet, path: str | Path, extra: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"arch": ARCH, "classes": net.class_maps.out_channels, "state_dict": net.state_dict(), **extra}, buffer)
    write_atomic(path, buffer.getvalue())
    return path


def load_calm(path: str | Path, device="cpu") -> CALMNet:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"CALM checkpoint {str(path)!r} does not exist: make one with `cce-bench train-calm "
                        "data.root=/path/to/imagenet` and pass its path as the checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(state, dict) and state.get("arch") == ARCH
        net = CALMNet(int(state["classes"]))
        net.load_state_dict(state["state_dict"])
    except Exception:
        raise UserError(f"{str(path)!r} is not a CALM checkpoint of `cce-bench train-calm`: make one with it") from None
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval().to(device)


class OnBenchmarkInput(nn.Module):
    """CALM's classifier on images normalised for the benchmark's model: renormalised with ImageNet's
    statistics, which CALM was trained with."""

    def __init__(self, calm: CALMNet, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.calm = calm
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))
        device = mean.device
        self.register_buffer("calm_mean", torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1))
        self.register_buffer("calm_std", torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))

    def calm_input(self, images: torch.Tensor) -> torch.Tensor:
        return to_normalised(to_pixels(images, self.mean, self.std), self.calm_mean, self.calm_std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.calm(self.calm_input(images))


@register
class CALM(Explainer):
    """The joint p(y, z | x) of the checkpoint's own classifier for the explained class.

    CALM explains its own retrained classifier, not the benchmark's model, so where the protocol lets
    the model choose the class (the pointing game: the mapped class with the highest score), CALM's own
    scores choose it: `own_classifier` is that classifier on the benchmark's input.

    Make a checkpoint with `cce-bench train-calm data.root=/path/to/imagenet`.
    """

    label = "CALM"
    cost = "forward"

    @classmethod
    def unavailable_on(cls, model) -> str | None:
        return "needs a checkpoint: cce-bench train-calm, then method_knobs.calm.checkpoint=PATH"

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        checkpoint = self.checkpoint
        if not checkpoint:
            raise MethodUnavailable(
                "CALM needs a checkpoint: make one with `cce-bench train-calm "
                "data.root=/path/to/imagenet`, then pass method_knobs.calm.checkpoint=PATH",
                "needs checkpoint",
            )
        device = device_of(model)
        mean = getattr(model, "mean", torch.tensor(IMAGENET_MEAN)).to(device).flatten()
        std = getattr(model, "std", torch.tensor(IMAGENET_STD)).to(device).flatten()
        self.own_classifier = OnBenchmarkInput(load_calm(checkpoint, device), mean, std)

    @torch.inference_mode()
    def _attribute_batch(self, images, targets):
        joint = self.own_classifier.calm.joint_log_prob(self.own_classifier.calm_input(images))
        return joint[torch.arange(len(targets)), targets].float().exp()

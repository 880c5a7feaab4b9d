"""The Python API for people who bring their own model or maps: images in, maps out, maps scored.

A quick start (docs: Python API):

    model = cce_bench.create_model("efficientnet_lite0")
    images = cce_bench.load_images(["chelsea", "coffee"], model)
    maps = cce_bench.explain(model, images, method="gradcam_pp")
    scores = cce_bench.insertion_deletion(model, images, maps)
"""
from __future__ import annotations

import torch

from .errors import UserError
from .explainers import create_explainer
from .metrics.insertion_deletion import InsertionDeletion
from .metrics.insertion_deletion import insertion_deletion as _insertion_deletion
from .models.inputs import InputSettings


def load_images(names: list[str], model=None, inputs: InputSettings | None = None) -> torch.Tensor:
    """Image files, or photos bundled with scikit-image by name (`chelsea`, `coffee`, `camera`, `motorcycle`,
    `rocket`, `astronaut`), as `model` takes them: normalised [B, 3, H, W] on the model's device.

    The resize, crop, interpolation, mean and std are the model's own (`model.inputs` of a model made by
    `create_model`); for any other `nn.Module` pass `inputs=InputSettings(...)`, else ImageNet's 224-pixel
    settings are used. A file that cannot be read raises `UserError` saying why.
    """
    from .data import image_file, preprocessing, read_or_skip

    settings = inputs or getattr(model, "inputs", None) or InputSettings()
    data = settings.as_data()
    transform = preprocessing(list(settings.mean), list(settings.std), data["resize"], data["crop"],
                              data["interpolation"])
    pictures = []
    for name in names:
        picture, problem = read_or_skip(name, image_file(name))
        if problem is not None:  # corrupt, not an image, a decompression bomb, a FIFO
            raise UserError(f"{problem['error'].rstrip('.')}: pass an image file that Pillow can open")
        pictures.append(transform(picture))
    device = next(model.parameters()).device if model is not None else torch.device("cpu")
    return torch.stack(pictures).to(device)


def explain(model, images: torch.Tensor, method: str = "cce", targets=None, **knobs) -> torch.Tensor:
    """Saliency maps [B, H, W] in [0, 1] for `images` (what `model` takes: normalised [B, 3, H, W]).

    `model` returns logits; `targets` are class indices (default: the top-1 class). `method` is one of the
    suite's ten (`cce`, `gbp`, `ig`, `rise`, `gradcam_pp`, `scorecam`, `fullgrad`, `contrastive_gradcam`,
    `appb`, `calm`) or a library method by name (`captum_DeepLift`, `pytorch_grad_cam_EigenCAM`; see
    `cce-bench methods`). Knobs are the method's, listed with their defaults and ranges on the Knobs page
    and under Args in `help(cce_bench.EXPLAINERS.get("cce"))`.
    """
    return create_explainer(method, model, **knobs).attribute(images, targets)


def insertion_deletion(model, images: torch.Tensor, maps: torch.Tensor, targets=None, step: int = 224,
                       batch_size: int = 32, blur_size: int = 11, blur_sigma: float = 5.0) -> InsertionDeletion:
    """Per-image insertion and deletion AUCs and curves, as the RISE authors' evaluation defines them.

    Pixels are deleted (set to 0 in normalised space) or inserted (into an 11 x 11 Gaussian blur of sigma 5)
    `step` at a time in the order of `maps` [B, H, W] (resized bilinearly to the input); the score is the
    softmax probability of `targets` (default: the top-1 class). Returns `insertion_auc`, `deletion_auc`
    [B] and `insertion_curve`, `deletion_curve` [B, steps + 1]; 100 x the mean AUC is what the tables print.
    """
    return _insertion_deletion(model, images, maps, targets, step=step, batch_size=batch_size,
                               blur_size=blur_size, blur_sigma=blur_sigma)

"""The Python API for people who bring their own model or maps: images in, maps out, maps scored.

A quick start (docs: Python API):

    model = cce_bench.create_model("efficientnet_lite0")
    images = cce_bench.load_images(["chelsea", "coffee"], model)
    maps = cce_bench.explain(model, images, method="gradcam_pp")
    scores = cce_bench.insertion_deletion(model, images, maps)
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .errors import UserError
from .explainers import create_explainer
from .metrics.insertion_deletion import InsertionDeletion
from .metrics.insertion_deletion import insertion_deletion as _insertion_deletion
from .models.inputs import InputSettings
from .tensors import device_of


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
    for name in list_of(names, "names"):
        picture, problem = read_or_skip(name, image_file(name))
        if problem is not None:  # corrupt, not an image, a decompression bomb, a FIFO
            raise UserError(f"{problem['error'].rstrip('.')}: pass an image file that Pillow can open")
        pictures.append(transform(picture))
    device = device_of(model) if model is not None else torch.device("cpu")
    return torch.stack(pictures).to(device)


def explain(model, images: torch.Tensor, method: str = "cce", targets=None, **knobs) -> torch.Tensor:
    """Saliency maps [B, H, W] in [0, 1] for `images` (what `model` takes: normalised [B, 3, H, W]).

    `model` returns logits; `targets` are class indices (default: the top-1 class). `method` is one of the
    suite's ten (`cce`, `gbp`, `ig`, `rise`, `gradcam_pp`, `scorecam`, `fullgrad`, `contrastive_gradcam`,
    `appb`, `calm`) or a library method by name (`captum_DeepLift`, `pytorch_grad_cam_EigenCAM`; see
    `cce-bench methods`). Knobs are the method's, listed with their defaults and ranges on the Knobs page
    and under Args in `help(cce_bench.EXPLAINERS.get("cce"))`.
    """
    images = checked_images(images, model)
    classes = None if targets is None else torch.tensor(
        target_indices(targets, class_count(model, images), len(images)), device=images.device)
    if not isinstance(method, str):
        raise TypeError(f"method takes a method's name (`cce-bench methods` lists them), got {type(method).__name__}")
    return create_explainer(method, model, **knobs).attribute(images, classes)


def insertion_deletion(model, images: torch.Tensor, maps: torch.Tensor, targets=None, step: int = 224,
                       batch_size: int = 32, blur_size: int = 11, blur_sigma: float = 5.0) -> InsertionDeletion:
    """Per-image insertion and deletion AUCs and curves, as the RISE authors' evaluation defines them.

    Pixels are deleted (set to 0 in normalised space) or inserted (into an 11 x 11 Gaussian blur of sigma 5)
    `step` at a time in the order of `maps` [B, H, W] (resized bilinearly to the input); the score is the
    softmax probability of `targets` (default: the top-1 class). Returns `insertion_auc`, `deletion_auc`
    [B] and `insertion_curve`, `deletion_curve` [B, steps + 1]; 100 x the mean AUC is what the tables print.
    """
    images = checked_images(images, model)
    return _insertion_deletion(model, images, maps, targets, step=step, batch_size=batch_size,
                               blur_size=blur_size, blur_sigma=blur_sigma)


def compare(model, images: torch.Tensor, methods=("gradcam_pp", "cce"), metrics=("insertion_deletion",),
            targets=None, method_knobs: dict | None = None, overrides=(), image_ids=None, out=None):
    """The leaderboard of `methods` on `images` for `model`, as `cce-bench compare` ranks it: a pandas DataFrame,
    one row per method, each metric's columns with their standard errors and the paired difference to the best.

    `methods` are the suite's or the libraries' methods by name (`cce`, `captum_DeepLift`; `cce-bench methods`)
    and your own: a function `f(model, images, targets) -> maps [B, H, W]`, a class whose instances are called
    that way, or an `Explainer` subclass; a row carries the function's name. `metrics` are names from
    `cce-bench metrics` that need no boxes or scenes (`insertion_deletion`, `class_deviation`, `sanity`,
    `quantus_NAME`). `targets` are class indices (default: the model's top-1 per image). `method_knobs` maps a
    method's name to its knobs ({"rise": {"N": 2000}}); `overrides` are any other keys of `cce-bench compare` as
    the command line takes them (["seed=1", "metric_knobs.insertion_deletion.step=448"]).

    The caption (what the columns mean, what these images can tell apart) is `table.attrs["caption"]`, the
    per-(image, method) records `table.attrs["records"]`. Nothing is written unless `out` names a folder: then
    table.csv, table.md and records.csv go there.
    """
    from .runs.leaderboard import leaderboard_of, ranking_metric

    images = checked_images(images, model)
    run = _ComparedRun(model, images, list_of(methods, "methods"), list_of(metrics, "metrics"),
                       dict(method_knobs or {}), list_of(overrides, "overrides"))
    batch = {"image": images, "index": list(range(len(images))), "allowed": class_choice(targets, model, images),
             "image_id": [str(i) for i in list_of(image_ids, "image_ids")] if image_ids is not None
             else [f"image_{i}" for i in range(len(images))]}
    records = pd.DataFrame(run.score(batch))
    board = leaderboard_of(records, list(run.explainers), {}, run.cfg, run.metrics,
                           ranking_metric(run.cfg, run.metrics, has_boxes=False))
    table = board.table
    table.attrs["caption"] = (f"Every method on the same {len(images)} images: " + run.meanings() + ". "
                              + board.verdict).strip()
    table.attrs["records"] = board.records
    if out is not None:
        write_compared(table, Path(out))
    return table


def list_of(value, argument: str) -> list:
    """A list argument: one value (a text, a number, a callable) is a list of one, never a text's letters; a set, a
    mapping or anything else not a list says so."""
    if value is None:
        return []
    if isinstance(value, (str, int, float)) or callable(value):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{argument} takes a list, got {type(value).__name__}: pass [{value!r}]")
    return list(value)


def checked_images(images, model) -> torch.Tensor:
    """The images as every function here takes them, or a TypeError/ValueError naming what was given instead."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model takes a torch.nn.Module, got {type(model).__name__}"
                        + (": pass cce_bench.create_model(name)" if isinstance(model, str) else ""))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images takes a float tensor [B, 3, H, W], got {type(images).__name__}: "
                        "cce_bench.load_images(paths, model) makes one from files")
    if images.dim() != 4:
        raise ValueError(f"images takes a batch [B, C, H, W], got a tensor of shape {tuple(images.shape)}"
                         + (": pass images[None] for one image" if images.dim() == 3 else ""))
    if not images.is_floating_point():
        raise TypeError(f"images takes floats normalised as the model takes them, got {images.dtype}: "
                        "cce_bench.load_images(paths, model) makes them")
    if min(images.shape[-2:]) < 8 or not bool(torch.isfinite(images).all()):
        raise ValueError(f"images of shape {tuple(images.shape)} "
                         + ("hold NaN or infinite values" if not bool(torch.isfinite(images).all()) else
                            "are too small to explain (under 8 pixels a side)"))
    return images


def class_count(model, images: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(images[:1]).shape[-1])


def target_indices(targets, classes: int, count: int) -> list[int]:
    """One class index per image of `count` (one given for all is repeated); a name, a float or an index outside
    0..classes-1 is a ValueError naming the argument."""
    wanted = list_of(targets.tolist() if isinstance(targets, torch.Tensor) else targets, "targets")
    if len(wanted) not in (1, count):
        raise ValueError(f"targets has {len(wanted)} classes for {count} images: pass one per image, or one")
    for target in wanted:
        if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes:
            raise ValueError(f"targets takes class indices 0..{classes - 1}, got {target!r}"
                             + (" (a name: model.categories.index(name) gives its index)"
                                if isinstance(target, str) else ""))
    return wanted * (count // len(wanted))


def class_choice(targets, model, images: torch.Tensor) -> torch.Tensor | None:
    """The classes to explain as a mask [B, classes] (None: the model's own top-1 per image)."""
    if targets is None:
        return None
    classes = class_count(model, images)
    wanted = target_indices(targets, classes, len(images))
    allowed = torch.zeros(len(images), classes, dtype=torch.bool, device=images.device)
    allowed[torch.arange(len(images)), torch.tensor(wanted)] = True
    return allowed


class _ComparedRun:
    """The config, methods and metrics of one `compare` call: the command's config composed with `overrides`."""

    def __init__(self, model, images, methods: list, metrics: list, method_knobs: dict, overrides: list):
        from omegaconf import DictConfig, OmegaConf, open_dict

        from .composing import compose_checked
        from .runs.runtime import resolve
        from .runs.scoring import run_metrics

        if not methods or not metrics:
            raise ValueError("compare needs at least one method and one metric")
        device = next((p.device for p in model.parameters()), images.device)
        chosen = f"metrics=[{','.join(str(m) for m in metrics)}]"
        cfg = compose_checked("compare", [chosen, f"device={device}", *map(str, overrides)])
        with open_dict(cfg):
            del cfg["threads"]  # the caller's process keeps its own torch threads
        self.cfg: DictConfig = OmegaConf.create(OmegaConf.to_container(resolve(cfg)))  # type: ignore[assignment]
        # plain, not structured: a node may become null
        self.cfg.paper = None  # the paper's numbers are for its own data and models
        self.explainers = {name: explainer for name, explainer in map(
            lambda m: built_method(m, model, method_knobs), methods)}
        self.metrics = run_metrics(self.cfg, has_boxes=False, has_method=True, command="compare")
        self.model = model

    def score(self, batch: dict) -> list[dict]:
        from .runs.leaderboard import score_batch
        from .runs.map_store import MapStore

        records, _ = score_batch(self.model, batch, self.explainers, self.metrics, MapStore(), self.cfg)
        return records

    def meanings(self) -> str:
        return "; ".join(m.caption() for m in self.metrics if m.caption())


def built_method(method, model, method_knobs: dict):
    """(name, explainer) of a method given by name or as a callable."""
    from .explainers.user_methods import user_method

    if isinstance(method, str):
        return method, create_explainer(method, model, **dict(method_knobs.get(method) or {}))
    if not callable(method):
        raise TypeError(f"methods takes names and callables, got {type(method).__name__}")
    name = getattr(method, "__name__", type(method).__name__)
    origin = f"{getattr(method, '__module__', '?')}.{getattr(method, '__qualname__', name)}"
    return name, user_method(method, name, name, origin)(model, **dict(method_knobs.get(name) or {}))


def write_compared(table, folder: Path) -> None:
    from .tables import to_markdown

    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "table.csv", index=False)
    (folder / "table.md").write_text(table.attrs["caption"] + "\n\n" + to_markdown(table) + "\n")
    table.attrs["records"].to_csv(folder / "records.csv", index=False)

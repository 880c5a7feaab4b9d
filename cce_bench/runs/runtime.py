"""From a config to the objects a run needs: device, seeds, batch sizes, then model, data and explainers."""
from __future__ import annotations

import math
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ..data import create_dataset
from ..errors import UserError, memory_asked_by
from ..explainers import EXPLAINERS, Explainer, MethodUnavailable, create_explainer
from ..explainers.user_methods import TARGET, custom_label
from ..method_knobs import CUSTOM, current_spelling
from ..models import Classifier, create_model, facts_of, precision_in_effect
from ..models.inputs import resolve_input_settings
from ..schema import check_cross_keys, curve_warnings
from .distributed import Shard

# Defaults where a config leaves a batch size null: small batches are fastest on a CPU (cache), large
# ones fill a GPU. Each method's own batch_size (model inputs per pass) is its class's `batch_sizes`.
CPU_BATCH = {"batch_size": 16, "images_per_batch": 1}
GPU_BATCH = {"batch_size": 256, "images_per_batch": 32}


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device of `device=auto|cpu|cuda|cuda:N`; a GPU always with its index.

    `cuda` (and `auto` on a GPU machine) means this process's GPU: `cuda:LOCAL_RANK` when sharded, else
    cuda:0. torch.cuda.set_device, NCCL and per-device memory stats take only indexed devices, and
    `cuda` vs `cuda:0` would otherwise compare unequal. Under srun with one GPU per task each task
    sees one GPU whatever its local rank, hence the modulo.
    """
    text = str(name).strip()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device={name!r} is not a device: pass device=cpu, device=cuda, device=cuda:1 or device=auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name} but this torch has no usable MPS (Apple GPU) backend here: pass device=cpu "
                        "or device=auto")
    if device.type == "cpu" and device.index not in (None, 0):
        raise UserError(f"device={name}: the CPU has no index: pass device=cpu")
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise UserError(f"device={name} but torch sees no CUDA GPU: pass device=cpu (or install a CUDA build of torch)")
    count = torch.cuda.device_count()
    index = device.index if device.index is not None else local_rank % count
    if index >= count:
        raise UserError(f"device={name} but torch sees {count} GPU(s), cuda:0 to cuda:{count - 1}: pass one of "
                        "those, or device=cuda")
    return torch.device("cuda", index)


TORCH_DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice (physical cores), before any run sets it


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity (taskset, SLURM's --cpus-per-task) and the cgroup's
    CPU quota (docker --cpus, Kubernetes limits), whichever is smaller."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def choose_threads(requested: int | None) -> int:
    """CPU threads for torch: `threads=` as given, else the usable cores (at most torch's own default, which
    leaves hyper-threads out). Sets them, says so when the machine is already busy, returns the number."""
    threads = int(requested) if requested is not None else min(usable_cores(), TORCH_DEFAULT_THREADS)
    torch.set_num_threads(threads)
    if requested is None and hasattr(os, "getloadavg") and sys.stderr.isatty():  # for a person at a terminal
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        if load >= cores / 2 and threads > 1:
            print(f"note: this machine is busy (load {load:.1f} on {cores} cores) and the run uses {threads} threads: "
                  "on a shared machine threads=1 (or the cores that are free) is often faster", file=sys.stderr)
    return threads


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seeds every generator; with `deterministic`, asks torch for deterministic kernels (cuDNN without
    autotuning, cuBLAS with a fixed workspace) and warns where an op has none."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve(cfg: DictConfig, shard: Shard | None = None) -> DictConfig:
    """Fill the device (one GPU per process when sharded) and the null batch sizes, on the config checked
    when it was composed (composing.check_composed)."""
    cfg = cfg.copy()
    OmegaConf.resolve(cfg)
    device = resolve_device(cfg.device, (shard or Shard()).local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    cfg.device = str(device)
    if "threads" in cfg:
        cfg.threads = choose_threads(cfg.threads)
    if cfg.get("methods") == "all":  # the run's config records which methods `all` meant
        cfg.methods = all_methods()
    defaults = dict(GPU_BATCH if device.type == "cuda" else CPU_BATCH)
    for name in cfg.get("method_knobs") or {}:
        if name in EXPLAINERS:
            defaults[f"method_knobs.{name}.batch_size"] = EXPLAINERS.get(name).default_batch_size(device.type)
    for key, value in defaults.items():
        if OmegaConf.select(cfg, key, default="absent") is None:  # present and null
            OmegaConf.update(cfg, key, value)
    return cfg


def build_model(cfg: DictConfig) -> Classifier:
    """The run's model, from every key of `model` (a family member's or custom model's own among them); the
    input settings and target layer it brings are written into `cfg` where the config leaves them null, so
    that config.yaml records what the run used."""
    knobs: dict = OmegaConf.to_container(cfg.model)  # type: ignore[assignment]  # a mapping node: a dict
    name = str(knobs.pop("name"))
    if knobs.get("random_init"):
        print(f"warning: model.random_init=true: {name} has random weights, so its maps explain no learned "
              "decision: use it for timing, or as the randomised model that a sanity check compares against",
              file=sys.stderr)
    with memory_asked_by(f"model (model={name} does not fit on {cfg.device}: pass another model= or device=)"):
        model = create_model(name, device=cfg.device, precision=str(cfg.get("precision", "tf32")), **knobs)
    record_model_settings(cfg, model)
    return model


def record_model_settings(cfg: DictConfig, model: Classifier) -> None:
    """data.resize, data.crop, data.interpolation from the model where they are null (an override wins), and
    model.target_layer as the model's facts have it; then the cross-key checks on the values the model filled in."""
    crop_from_model = "data" in cfg and cfg.data.get("crop") is None
    if "data" in cfg:
        for key, value in resolve_input_settings(model.inputs, cfg.data).as_data().items():
            OmegaConf.update(cfg, f"data.{key}", value, force_add=True)
    if cfg.model.get("target_layer") is None:
        OmegaConf.update(cfg, "model.target_layer", facts_of(model).target_layer, force_add=True)
    check_cross_keys(cfg)
    for message in curve_warnings(cfg) if crop_from_model else []:  # said at composition where the crop was given
        print(f"cce-bench: warning: {message}", file=sys.stderr)


def run_precision(cfg: DictConfig) -> str:
    """The precision the run's passes have on its device: `precision=tf32` on a CPU is fp32 (precision_in_effect)."""
    return precision_in_effect(str(cfg.get("precision", "tf32")), str(cfg.device))


def model_description(cfg: DictConfig) -> str:
    """The model as tables name it, with what changes its numbers: `vgg19 (tf32)`, `vgg19 (bf16, random weights)`,
    `custom my_pkg.nets.build (fp32)` (on a CPU, where TF32 does not exist)."""
    notes = [run_precision(cfg)] + (["random weights"] if cfg.model.get("random_init") else [])
    name = f"custom {cfg.model.get('_target_')}" if cfg.model.name == "custom" else cfg.model.name
    if cfg.model.get("architecture") not in (None, cfg.model.name):  # parts_cnn trained as another network
        name = f"{name} {cfg.model.architecture}"
    return f"{name} ({', '.join(notes)})"


def build_dataset(cfg: DictConfig, model: Classifier, **options):
    """The run's data set; `options` are the command's own (the pointing game's `contrastive=True`)."""
    data: dict = OmegaConf.to_container(cfg.data)  # type: ignore[assignment]  # a mapping node: a dict
    dataset = create_dataset({**data, **options}, model.inputs, seed=int(cfg.seed), categories=tuple(model.categories))
    own = getattr(dataset, "categories", None)  # a source with classes of its own (data=parts)
    if own is not None and list(own) != list(model.categories):
        raise UserError(f"data={dataset.name} has {len(own)} classes of its own and model {model.name} was not trained "
                        f"on them: pass model=parts_cnn (trained on this data's scenes)")
    if own is None and dataset.has_boxes and getattr(dataset, "class_count", 1000) != len(model.categories):
        raise UserError(f"data={dataset.name} maps COCO categories to ImageNet's 1000 classes, and model {model.name} "
                        f"has {len(model.categories)}: score it on image folders (data=photos, or data=imagenet "
                        "data.root=DIR of class folders)")
    return dataset


def all_methods() -> list[str]:
    """Every registered method: the paper's Table 5 columns in its order, then the others by name."""
    from ..tables import read_paper_table

    paper = [name for name in read_paper_table("table5_pointing_game.csv")["name"] if name in EXPLAINERS]
    return paper + [name for name in EXPLAINERS.names() if name not in paper]


def chosen_methods(cfg: DictConfig) -> list[str]:
    """The run's methods by name (`methods: [...]` or `all`, or the sweep's one `method`), each checked to exist."""
    if "methods" not in cfg:
        names = [cfg.method]
    else:
        names = all_methods() if cfg.methods == "all" else list(cfg.methods)  # empty: refused by the schema
    names = [EXPLAINERS.canonical(str(n)) for n in names]  # a former spelling: the current one, with a warning
    for name in names:
        EXPLAINERS.get(name)
    return names


def method_label(cfg: DictConfig, name: str) -> str:
    """How tables name a method of this run: its label; a custom method, its callable's name (and a callable given
    to the Python API, outside the registry, its own name)."""
    if name not in EXPLAINERS:
        return name
    if name == CUSTOM:
        return custom_label(str(OmegaConf.select(cfg, f"method_knobs.{CUSTOM}.{TARGET}", default=None) or CUSTOM))
    return EXPLAINERS.get(name).label


def method_knobs(cfg: DictConfig, name: str) -> dict:
    """A method's knobs as the run composed them: its knobs class's defaults with the overrides
    (method_knobs.NAME.KNOB=...); a library method's set under its former spelling too, said once."""
    knobs: dict = {}
    for given, node in (cfg.get("method_knobs") or {}).items():
        if str(given) == name or (current_spelling(str(given)) == name and node is not None):
            if str(given) != name:
                print(f"cce-bench: warning: method_knobs.{given} is now method_knobs.{name}; the old name works "
                      "until the next release", file=sys.stderr)
            knobs.update(OmegaConf.to_container(node) if node is not None else {})  # type: ignore[arg-type]
    return knobs


def build_explainer(cfg: DictConfig, model: Classifier, name: str) -> Explainer:
    return create_explainer(name, model, **method_knobs(cfg, name))


def build_explainers(cfg: DictConfig, model: Classifier) -> tuple[dict, dict]:
    """The run's explainers by name, and those that cannot run here (name -> MethodUnavailable)."""
    explainers, unavailable = {}, {}
    for name in chosen_methods(cfg):
        try:
            explainers[name] = build_explainer(cfg, model, name)
        except MethodUnavailable as exc:
            unavailable[name] = exc
    return explainers, unavailable


def none_can_run(unavailable: dict) -> UserError:
    """The error of a run none of whose methods can run here, each method's reason in it."""
    reasons = "; ".join(f"{EXPLAINERS.get(name).label}: {exc}" for name, exc in unavailable.items())
    return UserError(
        f"no method of methods=[...] can run here ({reasons}): add one that can, e.g. methods=[gradcam_pp,cce]"
    )


"""A whole table of the paper, timed against its floor measured in the same run.

The table runs as a user runs it (`cce-bench sweep experiment=table1_alpha ...` or `cce-bench pointing-game
experiment=table5_pointing_game ...`) with random weights (`model.random_init=true`) on N generated images,
so that it needs neither downloads nor ImageNet/COCO. The model counts every input it evaluates, forward
only or with a gradient to the input (run.json: model_inputs_this_process); the same script measures the
bare rates of both kinds of pass at the run's batch sizes and precision. The floor is the table's passes at
those rates: what the table would cost if the suite did nothing but the model's passes.

    python scripts/bench_table.py --table alpha --model vgg19 --images 32 device=cuda
    python scripts/bench_table.py --table pointing_game --model resnet50 --images 32 precision=bf16
    python scripts/bench_table.py --table alpha --model efficientnet_lite0 --images 1 device=cpu  # CPU check

Also times CCE's generation alone (--generation-images images x M pairs, one batched call) against the
floor of its own passes. Arguments after the options go to the table's command as overrides.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cce_bench.data.imagenet import imagenet_wnids
from cce_bench.explainers import EXPLAINERS, create_explainer
from cce_bench.method_knobs import knobs_of
from cce_bench.models import create_model
from cce_bench.runs.runtime import CPU_BATCH, GPU_BATCH, resolve_device, seed_everything
from cce_bench.runs.timing import device_name, timed

TABLES = {"alpha": "table1_alpha", "M": "table2_M", "gamma": "table3_gamma", "epsilon": "table4_epsilon",
          "pointing_game": "table5_pointing_game"}


def noise_image(path: Path, rng: np.random.Generator, size=(320, 256)) -> None:
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)


def imagenet_tree(root: Path, n: int) -> Path:
    """root/val/<wnid>/*.JPEG, one image per class."""
    rng = np.random.default_rng(0)
    for i, wnid in enumerate(imagenet_wnids()[:n]):
        (root / "val" / wnid).mkdir(parents=True)
        noise_image(root / "val" / wnid / f"ILSVRC2012_val_{i:08d}.JPEG", rng)
    return root


def coco_tree(root: Path, n: int) -> Path:
    """root/val2017/*.jpg and an annotations file with one small box per image."""
    rng = np.random.default_rng(0)
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, annotations = [], []
    for i in range(1, n + 1):
        noise_image(root / "val2017" / f"{i:012d}.jpg", rng)
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 320, "height": 256})
        annotations.append({"id": i, "image_id": i, "category_id": 17, "bbox": [80, 60, 120, 100], "area": 12000,
                            "iscrowd": 0})
    categories = [{"id": 17, "name": "cat", "supercategory": "animal"}]
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root


def override(overrides: list[str], key: str, default):
    for item in overrides:
        if item.startswith(f"{key}="):
            return item.split("=", 1)[1]
    return default


def pass_rates(model, device, forward_batch: int, gradient_batch: int, size: int = 224, repeats: int = 7):
    """Inputs per second of bare forward passes (inference mode) and of forward + backward to the input."""
    x = torch.rand(forward_batch, 3, size, size, device=device)
    xg = torch.rand(gradient_batch, 3, size, size, device=device)

    def forward():
        with torch.inference_mode():
            return model(x)

    def forward_backward():
        point = xg.clone().requires_grad_(True)
        return torch.autograd.grad(model(point)[:, 0].sum(), point)

    t_forward, _ = timed(forward, device, repeats, warmup=True)
    t_gradient, _ = timed(forward_backward, device, repeats, warmup=True)
    return forward_batch / t_forward, gradient_batch / t_gradient


def floor_seconds(passes: dict, rates: tuple[float, float]) -> float:
    """Every forward at the forward rate F, every backward at what a backward adds, 1/G - 1/F per input
    (G: forward + backward); a method that takes two gradients from one forward pays two backwards."""
    forward, gradient = rates
    inputs = passes["forward"] + passes["with_gradient"]
    return inputs / forward + passes["backward"] * max(1 / gradient - 1 / forward, 0.0)


def generation_ratio(model, device, images: int, rates, batch_size: int, m: int) -> tuple[float, float, dict]:
    """(seconds, floor seconds, passes) of one batched CCE generation over images x M pairs."""
    cce = create_explainer("cce", model, batch_size=batch_size, M=m)
    x = torch.rand(images, 3, 224, 224, device=device)
    targets = torch.zeros(images, dtype=torch.long, device=device)
    cce.with_knobs(steps=1).contrastive_maps(x[:1], targets[:1])  # warm-up (cuDNN plans, allocator)
    before = model.passes.as_dict()
    seconds, _ = timed(lambda: cce.contrastive_maps(x, targets), device)
    passes = {k: v - before[k] for k, v in model.passes.as_dict().items()}
    return seconds, floor_seconds(passes, rates), passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=list(TABLES), default="alpha")
    parser.add_argument("--model", default="vgg19", choices=["vgg19", "resnet50", "efficientnet_lite0"])
    parser.add_argument("--images", type=int, default=32, help="images (or pairs) the table runs on")
    parser.add_argument("--generation-images", type=int, default=8, help="images for the CCE generation timing")
    args, overrides = parser.parse_known_args()
    device = resolve_device(override(overrides, "device", "auto"))
    precision = override(overrides, "precision", "tf32")
    defaults = GPU_BATCH if device.type == "cuda" else CPU_BATCH
    batch = int(override(overrides, "batch_size", defaults["batch_size"]))
    method_batch = int(
        override(overrides, "method_knobs.cce.batch_size", EXPLAINERS.get("cce").default_batch_size(device.type))
    )
    m = int(override(overrides, "method_knobs.cce.M", knobs_of("cce")().M))

    seed_everything(0)
    model = create_model(args.model, device=device, random_init=True, precision=precision)
    # CCE's passes hold its chunk's pairs: method batch_size // M images x M.
    pairs = min(args.generation_images, max(1, method_batch // m)) * m
    before = pass_rates(model, device, batch, pairs)
    gen_seconds, gen_floor, gen_passes = generation_ratio(
        model, device, args.generation_images, before, method_batch, m
    )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pointing = args.table == "pointing_game"
        root = coco_tree(tmp / "coco", args.images) if pointing else imagenet_tree(tmp / "imagenet", args.images)
        command = ["pointing-game"] if pointing else ["sweep"]
        command += [
            f"experiment={TABLES[args.table]}",
            f"model={args.model}",
            "model.random_init=true",
            f"data.root={root}",
            f"data.n_images={args.images}",
            f"out={tmp / 'run'}",
            f"device={device}",
            f"precision={precision}",
            *[o for o in overrides if not o.startswith(("device=", "precision="))],
        ]
        print("running: cce-bench " + " ".join(command), file=sys.stderr)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cce_bench.cli", *command], check=True)
        command_seconds = time.perf_counter() - start
        run = json.loads((tmp / "run" / "run.json").read_text())
    # The floor is the best the card does: the faster of the rates measured before and after the table.
    after = pass_rates(model, device, batch, pairs)
    rates = (max(before[0], after[0]), max(before[1], after[1]))
    gen_floor = floor_seconds(gen_passes, rates)
    passes = run["model_inputs_this_process"]
    floor = floor_seconds(passes, rates)
    table_seconds = run["wall_seconds"]
    n = args.images
    print(f"\n{device_name(device)}; {args.model} with random weights; precision {precision}; "
          f"batch_size {batch}, method batch_size {method_batch}; torch {torch.__version__}")
    print(f"bare rates (the faster of before and after the table): forward {rates[0]:,.0f} inputs/s (batch "
          f"{batch}), forward + input backward {rates[1]:,.0f} inputs/s (batch {pairs}, CCE's pairs per pass)")
    print("\n| what | measured | floor | measured / floor |\n| --- | --- | --- | --- |")
    print(f"| CCE generation, {args.generation_images} images x M pairs | {gen_seconds:.2f} s "
          f"({gen_passes['forward'] + gen_passes['with_gradient']:,} forward + {gen_passes['backward']:,} backward "
          f"inputs) | "
          f"{gen_floor:.2f} s | {gen_seconds / gen_floor:.2f}x (rate {gen_floor / gen_seconds:.2f} of the floor's) |")
    print(f"| {TABLES[args.table]}, {n} images | {table_seconds:.1f} s in the run ({command_seconds:.1f} s with "
          f"start-up); {(passes['forward'] + passes['with_gradient']) / n:,.0f} forward + "
          f"{passes['backward'] / n:,.0f} backward inputs per image | {floor:.1f} s | {table_seconds / floor:.2f}x |")
    print(f"\nper 1000 images: measured {table_seconds / n * 1000 / 60:.1f} min, floor {floor / n * 1000 / 60:.1f} min")


if __name__ == "__main__":
    main()

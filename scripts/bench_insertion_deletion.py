"""Insertion/deletion time against the bare forward passes it needs, measured in the same run.

The metric needs 2 * (n + 1) model evaluations per image (n = ceil(H*W / step)). The baseline pushes
the same number of inputs through the same model at the same batch size, in inference mode, with the
inputs already built; the ratio is what the metric's own work (ranks, masks, blur, softmax) costs on top.

    python scripts/bench_insertion_deletion.py                       # CPU, EfficientNet-Lite0
    python scripts/bench_insertion_deletion.py --model vgg19 --device cuda --images 32 --batch-size 256
"""
import argparse
import math

import torch

from cce_bench import create_model, insertion_deletion
from cce_bench.runs.runtime import resolve_device
from cce_bench.runs.timing import device_name, timed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--checkpoint", default=None, help="the model's state dict (e.g. random weights, for timing)")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--step", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    device = resolve_device(args.device)
    model = create_model(args.model, checkpoint=args.checkpoint, device=device)
    torch.manual_seed(0)
    images = torch.randn(args.images, 3, 224, 224, device=device)
    maps = torch.rand(args.images, 224, 224, device=device)
    targets = torch.randint(0, 1000, (args.images,), device=device)
    n_inputs = 2 * (math.ceil(224 * 224 / args.step) + 1) * args.images
    chunk = images[:1].expand(args.batch_size, -1, -1, -1).contiguous()

    @torch.inference_mode()
    def bare():
        for first in range(0, n_inputs, args.batch_size):
            model(chunk[: min(args.batch_size, n_inputs - first)]).softmax(1)

    def metric():
        insertion_deletion(model, images, maps, targets, step=args.step, batch_size=args.batch_size)

    t_bare, _ = timed(bare, device, args.repeats, warmup=True)
    t_metric, _ = timed(metric, device, args.repeats, warmup=True)
    print(
        f"device: {device_name(device)}; model {args.model}; {args.images} images, step {args.step}, batch "
        f"{args.batch_size}: "
        f"{n_inputs} forward passes"
    )
    print(f"bare forward passes: {t_bare:.2f} s ({n_inputs / t_bare:.1f} inputs/s)")
    print(f"insertion+deletion:  {t_metric:.2f} s ({n_inputs / t_metric:.1f} inputs/s)")
    print(f"ratio metric / bare: {t_metric / t_bare:.3f}")


if __name__ == "__main__":
    main()

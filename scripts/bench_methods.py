"""Time per image of every Table 5 method, and RISE / Score-CAM against the bare forward passes they need.

RISE needs N forward passes per image and Score-CAM one per non-constant channel of its layer; the
baseline pushes the same number of inputs through the same model at the same batch size, in the same run.

    python scripts/bench_methods.py                                  # CPU, EfficientNet-Lite0, 2 photos
    python scripts/bench_methods.py --model vgg19 --device cuda --images 8
"""
import argparse
import warnings
from functools import partial

import torch

from cce_bench import create_model
from cce_bench.data import create_dataset
from cce_bench.explainers import EXPLAINERS, create_explainer
from cce_bench.explainers.layers import capture_outputs
from cce_bench.runs.runtime import all_methods, resolve_device
from cce_bench.runs.timing import device_name, timed


@torch.inference_mode()
def bare_forwards(model, image, n, batch_size):
    chunk = image[None].expand(batch_size, -1, -1, -1).contiguous()
    for first in range(0, n, batch_size):
        model(chunk[: min(batch_size, n - first)]).softmax(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--checkpoint", default=None, help="the model's state dict (e.g. random weights, for timing)")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--rise-n", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    device = resolve_device(args.device)
    model = create_model(args.model, checkpoint=args.checkpoint, device=device)
    data = create_dataset({"name": "photos", "n_images": min(args.images, 6)}, *model.channel_stats())
    images = torch.stack([data[i % len(data)]["image"] for i in range(args.images)]).to(device)
    with torch.no_grad():
        targets = model(images).argmax(1)
    print(f"device: {device_name(device)}; model {args.model}; {args.images} images; batch {args.batch_size}")
    knobs = {"rise": {"N": args.rise_n}}
    for method in all_methods():
        if method == "calm":
            print(f"{method:7s} needs a checkpoint (cce-bench train-calm): not timed")
            continue
        explainer = create_explainer(method, model, **knobs.get(method, {}), batch_size=args.batch_size)
        if method not in ("rise", "scorecam", "cce", "appb"):  # warm the cheap ones; the slow ones dwarf it
            explainer.attribute(images[:1], targets[:1])
        seconds, _ = timed(partial(explainer.attribute, images, targets), device)
        line = f"{EXPLAINERS.get(method).label:7s} {seconds / args.images:8.3f} s/img"
        if method in ("rise", "scorecam"):
            if method == "rise":
                needed = args.rise_n
            else:
                with torch.no_grad(), capture_outputs([explainer.layer]) as out:
                    model(images[:1])
                flat = out[0][0].flatten(1)
                needed = int((flat.amax(1) > flat.amin(1)).sum())
            bare, _ = timed(partial(lambda n: [bare_forwards(model, images[b], n, args.batch_size)
                                               for b in range(args.images)], needed), device)
            line += (
                f"   ({needed} forwards/img; bare forwards {bare / args.images:.3f} s/img; ratio {seconds / bare:.3f})"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()

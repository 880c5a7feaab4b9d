"""CCE generation batched over B * M pairs against the same pairs one at a time, measured in one run.

    python scripts/bench_cce.py                                   # CPU, EfficientNet-Lite0, real photos
    python scripts/bench_cce.py --model vgg19 --device cuda --images 16 --steps 50
    python scripts/bench_cce.py --against keep=closest_valid validity=hinge   # the defaults against other knobs

`--against KNOB=VALUE ...` times the default knobs' generation against the same generation with those knobs
changed, alternating the two (best of `--repeats`), and prints the ratio: both measured in one run.
"""
import argparse
from functools import partial

import torch

from cce_bench import create_model
from cce_bench.data import create_dataset
from cce_bench.explainers import CCE
from cce_bench.runs.runtime import resolve_device
from cce_bench.runs.timing import device_name, timed


def parse_knob(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    if value in ("null", "None"):
        return name, None
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value


def compare_knobs(default: CCE, images, targets, args, device) -> None:
    other = default.with_knobs(**dict(parse_knob(k) for k in args.against))
    times = {"default": [], "against": []}
    for _ in range(args.repeats):
        for name, explainer in (("default", default), ("against", other)):
            seconds, _ = timed(partial(explainer.contrastive_maps, images, targets), device)
            times[name].append(seconds)
    best = {name: min(t) for name, t in times.items()}
    changed = {k: getattr(other, k) for k, _ in map(parse_knob, args.against)}
    print(f"device: {device_name(device)}; model {args.model}; {args.images} images x M={args.M}, {args.steps} steps; "
          f"best of {args.repeats}, alternating")
    print(f"defaults:             {best['default']:.2f} s ({best['default'] / args.images:.3f} s/img)")
    print(f"with {changed}: {best['against']:.2f} s ({best['against'] / args.images:.3f} s/img)")
    print(f"defaults / against:   {best['default'] / best['against']:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--checkpoint", default=None, help="the model's state dict (e.g. random weights, for timing)")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--M", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--against", nargs="+", metavar="KNOB=VALUE", help="time the defaults against these knobs")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    device = resolve_device(args.device)
    model = create_model(args.model, checkpoint=args.checkpoint, device=device)
    data = create_dataset({"name": "photos", "n_images": min(args.images, 6)}, *model.channel_stats())
    images = torch.stack([data[i % len(data)]["image"] for i in range(args.images)]).to(device)
    with torch.no_grad():
        targets = model(images).argmax(1)
    pairs = args.images * args.M
    batched = CCE(model, M=args.M, steps=args.steps, batch_size=pairs)
    batched.with_knobs(steps=1).contrastive_maps(images[:1], targets[:1])  # warm-up
    single = batched.with_knobs(M=1, batch_size=1)

    if args.against:
        compare_knobs(batched, images, targets, args, device)
        return
    t_batched, result = timed(lambda: batched.contrastive_maps(images, targets), device)

    def one_pair_at_a_time():
        for i in range(args.images):
            for j in range(args.M):
                single.contrastive_maps(images[i:i + 1], targets[i:i + 1], contrast=result.contrast[i:i + 1, j:j + 1])

    t_single, _ = timed(one_pair_at_a_time, device)
    print(f"device: {device_name(device)}; model {args.model}; {args.images} images x M={args.M} = {pairs} pairs, "
          f"{args.steps} steps, K={batched.K}")
    print(f"batched ({pairs} pairs per pass): {t_batched:.2f} s ({t_batched / pairs:.3f} s/pair)")
    print(f"one pair at a time:          {t_single:.2f} s ({t_single / pairs:.3f} s/pair)")
    print(f"speed-up batched vs single:  {t_single / t_batched:.2f}x; valid {result.valid.float().mean():.0%}")


if __name__ == "__main__":
    main()

"""APPB with the suite's batched Adam against the official L-BFGS, on the same images.

Prints per image the final loss of each, the rank correlation of the two maps, and the energy of the
Adam map inside the top 10% of the L-BFGS map.

    python scripts/compare_appb_optimizers.py                   # CPU, EfficientNet-Lite0, 3 photos
"""
import argparse
import time

import torch
from scipy.stats import spearmanr

from cce_bench import create_model
from cce_bench.data import create_dataset
from cce_bench.explainers import create_explainer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    model = create_model(args.model)
    data = create_dataset({"name": "photos", "n_images": args.images}, *model.channel_stats())
    images = torch.stack([data[i]["image"] for i in range(len(data))])
    with torch.no_grad():
        targets = model(images).argmax(1)
    results = {}
    for optimizer in ("adam", "lbfgs"):
        explainer = create_explainer("appb", model, optimizer=optimizer, steps=args.steps)
        start = time.perf_counter()
        maps = explainer.attribute(images, targets)
        seconds = time.perf_counter() - start
        with torch.no_grad(), torch.enable_grad():
            perturbed = torch.cat([explainer.perturb(images[i:i + 1], targets[i:i + 1]) for i in range(len(images))])
        with torch.no_grad():
            from cce_bench.explainers.layers import capture_outputs

            with capture_outputs(explainer.modules) as feats:
                model(images)
                clean = [f.float() for f in feats]
            loss = explainer.per_image_loss(perturbed, images, clean, targets)
        results[optimizer] = (maps, loss, seconds)
        print(
            f"{optimizer}: {seconds / len(images):.2f} s/img, final loss per image "
            f"{[round(v, 3) for v in loss.tolist()]}"
        )
    adam, lbfgs = results["adam"][0], results["lbfgs"][0]
    for i in range(len(images)):
        rho = spearmanr(adam[i].flatten().numpy(), lbfgs[i].flatten().numpy()).statistic
        top = lbfgs[i] >= lbfgs[i].flatten().quantile(0.9)
        share = float(adam[i][top].sum() / adam[i].sum())
        print(
            f"image {data.samples[i].id}: Spearman(adam, lbfgs) = {rho:.3f}; adam energy in L-BFGS top 10% = "
            f"{share:.2f}"
        )


if __name__ == "__main__":
    main()

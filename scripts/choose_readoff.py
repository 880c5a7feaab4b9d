"""CCE's read-off chosen by the criterion declared in docs/cce_method.md ("The read-off").

The same counterfactuals (CCE at its defaults, for the model's answer p and for the second class o) are
read off with every `readoff`; per read-off it measures, over the images of the comparison set:

- (a) Diff (100 x (Ins - Del), insertion/deletion at a coarse step) at alpha 1, the default alpha and 0,
  and the paired differences default - 1 and default - 0 with their standard errors;
- (b) the median Spearman correlation of M_sup and M_pro;
- (c) the class deviation (1 - SSIM of the unified maps for p and for o) against the best of the nine
  methods from a `cce-bench compare` run on the same images (`--nine RUN`);
- what the read-off costs: its seconds per image against the generation's, measured in this run.

    python scripts/leaderboard_set.py --out /tmp/set                       # the comparison set's images
    python scripts/choose_readoff.py --out results/calibration/readoff --nine RUN

The counterfactuals are kept in OUT/counterfactuals.pt: a rerun (another --nine, say) reads them back.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cce_bench import create_model, insertion_deletion
from cce_bench.data import load_rgb, preprocessing
from cce_bench.explainers import CCE
from cce_bench.explainers.base import postprocess
from cce_bench.explainers.cce import normalise_max
from cce_bench.method_knobs.cce import READOFFS
from cce_bench.metrics.class_sensitivity import class_deviation, other_classes
from cce_bench.metrics.sanity import spearman
from cce_bench.runs.runtime import resolve_device, seed_everything
from cce_bench.runs.timing import device_name
from cce_bench.tables import to_markdown
from leaderboard_set import calibration_module  # the comparison set's scenes and views (this folder)


def comparison_images(model) -> tuple[torch.Tensor, list[str]]:
    """The comparison set's images (scripts/leaderboard_set.py, whole views), as `compare` reads them."""
    calibration = calibration_module()
    transform = preprocessing(*model.channel_stats())
    ids, images = [], []
    for name, path in calibration.scenes():
        images.append(transform(calibration.view(load_rgb(str(path)), "whole")))
        ids.append(f"{name}_whole")
    return torch.stack(images), ids


def counterfactuals(explainer: CCE, images, targets) -> dict:
    start = time.perf_counter()
    maps = explainer.contrastive_maps(images, targets)
    return {"counterfactual": maps.counterfactual, "contrast": maps.contrast, "valid": maps.valid,
            "seconds": time.perf_counter() - start}


def read_off(explainer: CCE, pixels, targets, generated: dict) -> tuple[torch.Tensor, torch.Tensor, float]:
    """M_sup, M_pro [B, H, W] of the kept counterfactuals, read off with `explainer`'s read-off."""
    cf, contrast = generated["counterfactual"], generated["contrast"]
    b, m = contrast.shape
    x = pixels.repeat_interleave(m, dim=0)
    start = time.perf_counter()
    sup, pro = [], []
    step = explainer.batch_size
    flat = cf.flatten(0, 1)
    p, q = targets.repeat_interleave(m), contrast.flatten()
    for s in range(0, len(x), step):
        s_sup, s_pro = explainer.pair_maps(
            x[s : s + step], flat[s : s + step] - x[s : s + step], p[s : s + step], q[s : s + step]
        )
        sup.append(s_sup)
        pro.append(s_pro)
    seconds = time.perf_counter() - start
    h, w = pixels.shape[-2:]
    return torch.cat(sup).view(b, m, h, w).mean(1), torch.cat(pro).view(b, m, h, w).mean(1), seconds


def unified(sup, pro, alpha):
    return normalise_max(alpha * sup + (1 - alpha) * pro)


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = 100 * (a - b)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def best_of_nine(run: str | None) -> tuple[str, float, float] | None:
    if not run:
        return None
    records = pd.read_csv(Path(run) / "records.csv")
    records = records[records["method"] != "cce"].dropna(subset=["class_deviation"])
    means = records.groupby("method")["class_deviation"].agg(["mean", "std", "count"])
    best = means["mean"].idxmax()
    return best, float(means.loc[best, "mean"]), float(means.loc[best, "std"] / math.sqrt(means.loc[best, "count"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readoffs", nargs="+", default=list(READOFFS))
    ap.add_argument("--alpha", type=float, nargs="+", default=[1.0, 0.7, 0.0])
    ap.add_argument("--default-alpha", type=float, default=0.7)
    ap.add_argument("--step", type=int, default=224 * 8, help="insertion/deletion pixels per step (coarse: 28 steps)")
    ap.add_argument("--nine", default=None, help="a `cce-bench compare` run on the same images, for (c)")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="results/calibration/readoff")
    args = ap.parse_args()
    seed_everything(0)
    device = resolve_device(args.device)
    model = create_model(args.model, device=device)
    images, ids = comparison_images(model)
    images = images.to(device)
    with torch.no_grad():
        logits = model(images)
    targets = logits.argmax(1)
    others = other_classes(logits, targets, "second")
    explainer = CCE(model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "counterfactuals.pt"
    if cache.exists():
        generated = torch.load(cache, map_location=device)
    else:
        generated = {"p": counterfactuals(explainer, images, targets), "o": counterfactuals(explainer, images, others)}
        torch.save(generated, cache)
    pixels = model.to_pixels(images).clamp(0, 1)
    generation = generated["p"]["seconds"] / len(ids)
    print(f"device: {device_name(device)}; {args.model}; {len(ids)} images; CCE {explainer.knobs()['M']} "
          f"counterfactuals, {generation:.2f} s/img to generate", flush=True)

    rows, per_image = [], []
    for readoff in args.readoffs:
        reader = explainer.with_knobs(readoff=readoff)
        sup, pro, seconds = read_off(reader, pixels, targets, generated["p"])
        sup_o, pro_o, _ = read_off(reader, pixels, others, generated["o"])
        diff = {}
        for alpha in args.alpha:
            s = insertion_deletion(model, images, postprocess(unified(sup, pro, alpha), images.shape[-2:]), targets,
                                   step=args.step, batch_size=16)
            diff[alpha] = (s.insertion_auc - s.deletion_auc).cpu().numpy()
        rho = np.array([spearman(sup[i].cpu().numpy(), pro[i].cpu().numpy()) for i in range(len(ids))])
        deviation = class_deviation(postprocess(unified(sup, pro, args.default_alpha), images.shape[-2:]),
                                    postprocess(unified(sup_o, pro_o, args.default_alpha), images.shape[-2:])).numpy()
        row = {"readoff": readoff}
        for alpha in args.alpha:
            row[f"Diff alpha {alpha:g}"] = 100 * diff[alpha].mean()
        gains = [paired(diff[args.default_alpha], diff[a]) for a in (1.0, 0.0)]
        row["default - alpha 1"] = f"{gains[0][0]:+.2f} ({gains[0][1]:.2f})"
        row["default - alpha 0"] = f"{gains[1][0]:+.2f} ({gains[1][1]:.2f})"
        row["median rho(M_sup, M_pro)"] = float(np.median(rho))
        row["class deviation"] = float(deviation.mean())
        row["class deviation SE"] = float(deviation.std(ddof=1) / math.sqrt(len(deviation)))
        row["read-off s/img"] = seconds / len(ids)
        row["read-off / generation"] = seconds / len(ids) / generation
        row["(a)"] = all(gain > se for gain, se in gains)
        row["(b)"] = row["median rho(M_sup, M_pro)"] < 0.6
        rows.append(row)
        per_image += [{"readoff": readoff, "image_id": ids[i], "rho": rho[i], "class_deviation": deviation[i],
                       **{f"diff_{a:g}": diff[a][i] for a in args.alpha}} for i in range(len(ids))]
        print(f"{readoff}: done ({seconds:.1f} s to read off)", flush=True)

    table = pd.DataFrame(rows)
    nine = best_of_nine(args.nine)
    if nine is not None:
        table["(c)"] = table["class deviation"] >= nine[1]
    met = table[[c for c in ("(a)", "(b)", "(c)") if c in table]].sum(axis=1)
    # the declared rule: most criteria met, then Diff at the default alpha; an exact tie (two read-offs that
    # are the same map on this model) goes to the cheaper one
    order = sorted(range(len(table)), key=lambda i: (-met[i], -round(table[f"Diff alpha {args.default_alpha:g}"][i], 6),
                                                     table["read-off s/img"][i]))
    table["met"] = met
    table["chosen"] = ["yes" if i == order[0] else "" for i in range(len(table))]
    table = table.round(3)
    table.to_csv(out / "criterion.csv", index=False)
    pd.DataFrame(per_image).to_csv(out / "per_image.csv", index=False)
    text = (
        f"CCE read-offs of the same counterfactuals: {args.model} on {device_name(device)}, {len(ids)} images "
        f"({', '.join(ids)}), CCE defaults (M = {explainer.M}, {explainer.steps} steps, epsilon {explainer.epsilon:g}, "
        f"gamma {explainer.gamma:g}); generation {generation:.2f} s/img; insertion/deletion step {args.step}. "
        "Diff = 100 x (Ins - Del); paired differences with their SE in brackets; class deviation = 1 - SSIM of the "
        "unified maps (alpha "
        + f"{args.default_alpha:g}) for the explained and the second class."
        + (
            f" Best of the nine by class deviation: {nine[0]} {nine[1]:.3f} (SE {nine[2]:.3f}), run {args.nine}."
            if nine
            else " (c) needs --nine RUN."
        )
        + "\n\n"
        + to_markdown(table)
        + "\n"
    )
    (out / "criterion.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()

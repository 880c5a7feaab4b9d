"""Calibration of CCE's reconstructed choices: does each documented knob act as the paper says?

On a fixed set of real photos (the scenes that scikit-image and matplotlib ship, each as four
deterministic views: whole, mirrored, and two 80% crops), for each candidate reconstruction, it measures
per value of gamma, epsilon and alpha: Ins, Del and Diff (100 x mean AUC, insertion/deletion at a coarse
step), the standard error of Diff over images, the validity rate, the mean and spread of |delta| (0-255
pixel units, over pairs), the share of perturbed values at the epsilon bound, and for alpha the share of
M_pro in the unified map. The paired effect of gamma (gamma_lo vs gamma_hi on the same images) is given
with its standard error, since a deterministic CPU run has no run-to-run spread to compare against.

    python scripts/calibrate_cce.py                      # both candidates, ~22 min on 2 CPU cores
    python scripts/calibrate_cce.py --candidates pixel --out results/calibration/cce

Each finished (candidate, setting) is appended to OUT/settings.jsonl; a rerun skips those, so an
interrupted calibration loses nothing. The summary is OUT/calibration.md (and .csv); the image list is
OUT/images.csv.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from cce_bench import create_model, insertion_deletion
from cce_bench.data import load_rgb, preprocessing
from cce_bench.explainers import CCE
from cce_bench.explainers.base import postprocess
from cce_bench.explainers.cce import normalise_max
from cce_bench.runs.runtime import resolve_device, seed_everything
from cce_bench.runs.timing import device_name
from cce_bench.tables import to_markdown

# Candidate reconstructions: knobs that differ from the method's defaults. "unit" is the first
# reconstruction (L_dist in [0, 1] units); "pixel" measures L_dist in 0-255 units, those of epsilon.
# The default run compares unit and pixel (~25 min); the other two are run with --candidates.
CANDIDATES = {
    # -- the first rounds: how L_dist is scaled --
    "unit": {"dist_scale": 1.0},
    "pixel": {"dist_scale": 255.0},
    # the step size fixed at the default epsilon's, so that epsilon acts only as the bound
    "pixel_fixed_lr": {"dist_scale": 255.0, "lr": (8 / 255) / 5},
    # a margin: the counterfactual must beat every other class by kappa logits
    "pixel_margin": {"dist_scale": 255.0, "kappa": 2.0},
    # -- the search of docs/cce_method.md ("which counterfactual"): how the kept counterfactual is chosen,
    # how delta is parameterised and stepped, which loss gamma weighs --
    "first_valid": {"keep": "first_valid"},
    "margin_last": {"kappa": 2.0, "keep": "last"},
    "ce_last": {"validity": "ce", "keep": "last"},
    "signed_ce_last": {"validity": "ce", "keep": "last", "step_rule": "signed"},
    "grid28": {"grid": 28},
    "grid28_ce_last": {"grid": 28, "validity": "ce", "keep": "last"},
    "grid14_ce_last": {"grid": 14, "validity": "ce", "keep": "last"},
    "grid28_signed_ce_last": {"grid": 28, "validity": "ce", "keep": "last", "step_rule": "signed"},
    # a weaker distance term (L_dist in units of 255 / 32 grey levels): gamma 20 then weighs each value's |delta|
    # at 0.004 per unit, below most of the model's input gradients (0.007-0.07 on these photos), not above
    "ce_last_s32": {"validity": "ce", "keep": "last", "dist_scale": 32.0},
    "grid28_ce_last_s32": {"grid": 28, "validity": "ce", "keep": "last", "dist_scale": 32.0},
    "grid56_ce_last_s32": {"grid": 56, "validity": "ce", "keep": "last", "dist_scale": 32.0},
}
# Every candidate is read off as the first reconstruction read it (the input read-off, blur 0.02 H), whatever the
# method's defaults now are, so that reruns reproduce the recorded rows; --blur reads the same counterfactuals off
# with other blurs (scripts/choose_readoff.py compares the read-offs).
SEARCH_BLUR = 0.02
SEARCH_READOFF = "input"
VIEWS = ("whole", "crop_top_left", "crop_bottom_right", "mirrored")


def scenes() -> list[tuple[str, Path]]:
    """Every natural photo of an ImageNet-like object that the installed packages ship: scikit-image's seven,
    matplotlib's grace_hopper, and scikit-learn's china and flower where scikit-learn is installed
    (`pip install scikit-learn`)."""
    import matplotlib
    import skimage.data

    sk = Path(skimage.data.__file__).parent
    found = [(name, sk / file) for name, file in [
        ("chelsea", "chelsea.png"), ("coffee", "coffee.png"), ("camera", "camera.png"),
        ("motorcycle_left", "motorcycle_left.png"), ("motorcycle_right", "motorcycle_right.png"),
        ("rocket", "rocket.jpg"), ("astronaut", "astronaut.png")]]
    found.append(("grace_hopper", Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    try:
        import sklearn.datasets

        sklearn_images = Path(sklearn.datasets.__file__).parent / "images"
        found += [("china", sklearn_images / "china.jpg"), ("flower", sklearn_images / "flower.jpg")]
    except ImportError:
        pass
    return [(name, path) for name, path in found if path.is_file()]


def view(image: Image.Image, how: str) -> Image.Image:
    w, h = image.size
    cw, ch = round(0.8 * w), round(0.8 * h)
    if how == "mirrored":
        return TF.horizontal_flip(image)
    if how == "crop_top_left":
        return image.crop((0, 0, cw, ch))
    if how == "crop_bottom_right":
        return image.crop((w - cw, h - ch, w, h))
    return image


def calibration_images(model) -> tuple[torch.Tensor, list[str]]:
    transform = preprocessing(*model.channel_stats())
    images, ids = [], []
    pictures = [(name, load_rgb(str(path))) for name, path in scenes()]
    for how in VIEWS:  # view-major, so that the first N images (--images N) are N distinct scenes
        for name, picture in pictures:
            images.append(transform(view(picture, how)))
            ids.append(f"{name}/{how}")
    return torch.stack(images), ids


def delta_stats(maps, pixels: torch.Tensor, epsilon: float) -> dict:
    """|delta| in 0-255 units: mean over pairs, spread (sd over pairs), share of values at the bound."""
    delta = (maps.counterfactual - pixels[:, None]) * 255
    per_pair = delta.abs().flatten(2).mean(2)  # [B, M]
    # a pair "reaches" the bound at 90% of it: a bilinear upsampling of cells at the bound peaks just below it
    reaches = delta.abs().flatten(2).amax(2) >= 0.9 * epsilon  # [B, M]
    return {"delta_mean": float(per_pair.mean()), "delta_sd": float(per_pair.std()),
            "at_bound": float((delta.abs() >= epsilon - 1e-3).float().mean()),
            "pairs_at_bound": float(reaches.float().mean()),
            "valid": float(maps.valid.float().mean())}


def score(model, images, maps, targets, args) -> tuple[np.ndarray, np.ndarray]:
    s = insertion_deletion(model, images, postprocess(maps, images.shape[-2:]), targets, step=args.step,
                           batch_size=args.batch_size)
    return s.insertion_auc.cpu().numpy(), s.deletion_auc.cpu().numpy()


def settings(args) -> list[dict]:
    """Generation settings: gamma swept at the default epsilon, epsilon at the default gamma."""
    out = [{"gamma": g, "epsilon": args.default_epsilon} for g in args.gamma]
    out += [{"gamma": args.default_gamma, "epsilon": e} for e in args.epsilon if e != args.default_epsilon]
    return out


def run_setting(model, images, targets, candidate, setting, args) -> list[dict]:
    explainer = CCE(model, M=args.M, steps=args.steps, batch_size=args.pairs_per_pass,
                    **{"blur_sigma": SEARCH_BLUR, "readoff": SEARCH_READOFF, **CANDIDATES[candidate]}, **setting)
    start = time.perf_counter()
    maps = explainer.contrastive_maps(images, targets)
    seconds = time.perf_counter() - start
    pixels = model.to_pixels(images).clamp(0, 1)
    stats = delta_stats(maps, pixels, setting["epsilon"])
    is_default = setting == {"gamma": args.default_gamma, "epsilon": args.default_epsilon}
    alphas = args.alpha if is_default else [args.default_alpha]
    rows = []
    for alpha in alphas:
        ins, dele = score(model, images, maps.unified(alpha), targets, args)
        mixed = alpha * maps.sup + (1 - alpha) * maps.pro
        pro_share = float(((1 - alpha) * maps.pro).sum() / mixed.sum().clamp_min(1e-12))
        rows.append({"candidate": candidate, **setting, "alpha": alpha, **stats, "pro_share": pro_share,
                     "seconds": seconds, "ins": ins.tolist(), "del": dele.tolist()})
    return rows


def unblurred_pair_maps(explainer: CCE, pixels: torch.Tensor, maps, targets: torch.Tensor):
    """S_sup and S_pro of the kept counterfactuals before any blur (M = 1: one pair per image): the path
    gradients once, whatever blurs are read off them afterwards."""
    delta = maps.counterfactual[:, 0] - pixels
    return explainer.with_knobs(blur_sigma=0).pair_maps(pixels, delta, targets, maps.contrast[:, 0])


def run_blur_variants(model, images, targets, candidate, blurs, args) -> list[dict]:
    """The candidate's counterfactuals at the default setting, once, read off with each blur of `blurs`,
    scored at every alpha; recorded as candidate "NAME+blurS"."""
    setting = {"gamma": args.default_gamma, "epsilon": args.default_epsilon}
    explainer = CCE(model, M=1, steps=args.steps, batch_size=args.pairs_per_pass,
                    **{"blur_sigma": SEARCH_BLUR, "readoff": SEARCH_READOFF, **CANDIDATES[candidate]}, **setting)
    start = time.perf_counter()
    maps = explainer.contrastive_maps(images, targets)
    seconds = time.perf_counter() - start
    pixels = model.to_pixels(images).clamp(0, 1)
    stats = delta_stats(maps, pixels, setting["epsilon"])
    raw_sup, raw_pro = unblurred_pair_maps(explainer, pixels, maps, targets)
    rows = []
    for blur in blurs:
        # the blur is linear and each map is divided by its maximum after it: blurring the max-normalised
        # unblurred map gives the method's own map
        reader = explainer.with_knobs(blur_sigma=blur)
        sup, pro = reader.smooth(raw_sup), reader.smooth(raw_pro)
        for alpha in args.alpha:
            mixed = alpha * sup + (1 - alpha) * pro
            ins, dele = score(model, images, normalise_max(mixed), targets, args)
            pro_share = float(((1 - alpha) * pro).sum() / mixed.sum().clamp_min(1e-12))
            rows.append({"candidate": f"{candidate}+blur{blur:g}", **setting, "alpha": alpha, **stats,
                         "pro_share": pro_share, "seconds": seconds, "ins": ins.tolist(), "del": dele.tolist()})
    return rows


def summarise(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        diff = np.asarray(r["ins"]) - np.asarray(r["del"])
        out.append({"candidate": r["candidate"], "gamma": r["gamma"], "epsilon": r["epsilon"], "alpha": r["alpha"],
                    "Ins": 100 * np.mean(r["ins"]), "Del": 100 * np.mean(r["del"]), "Diff": 100 * diff.mean(),
                    "Diff SE": 100 * diff.std(ddof=1) / math.sqrt(len(diff)), "valid": r["valid"],
                    "|delta| mean": r["delta_mean"], "|delta| sd": r["delta_sd"], "at bound": r["at_bound"],
                    "pairs at bound": r.get("pairs_at_bound", float("nan")),
                    "M_pro share": r["pro_share"], "gen s/img": r["seconds"] / len(diff)})
    return pd.DataFrame(out).round(4)


def paired_gamma_effect(rows: list[dict], args) -> list[str]:
    """Diff(gamma_hi) - Diff(gamma_lo) on the same images, with its standard error, per candidate."""
    lines = []
    lo, hi = min(args.gamma), max(args.gamma)
    for candidate in dict.fromkeys(r["candidate"] for r in rows):
        pick = {
            r["gamma"]: np.asarray(r["ins"]) - np.asarray(r["del"])
            for r in rows
            if r["candidate"] == candidate and r["epsilon"] == args.default_epsilon and r["alpha"] == args.default_alpha
        }
        if lo != hi and lo in pick and hi in pick:
            d = 100 * (pick[hi] - pick[lo])
            lines.append(f"- {candidate}: Diff(gamma={hi}) - Diff(gamma={lo}) = {d.mean():+.2f} "
                         f"(SE {d.std(ddof=1) / math.sqrt(len(d)):.2f}, paired over {len(d)} images)")
    return lines


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the paired difference a - b (100 x AUC units)."""
    d = 100 * (a - b)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def criterion(rows: list[dict], args) -> pd.DataFrame:
    """docs/cce_method.md's criterion, per candidate: the unified map at the default alpha beats alpha = 1
    and alpha = 0 by more than its paired standard error, and the bound binds at the smallest epsilon (at
    least half of the counterfactuals reach it)."""
    out = []
    small = min(args.epsilon)
    reference = {
        r["candidate"]: np.asarray(r["ins"]) - np.asarray(r["del"])
        for r in rows
        if (r["gamma"], r["epsilon"], r["alpha"]) == (args.default_gamma, args.default_epsilon, args.default_alpha)
    }
    for candidate in dict.fromkeys(r["candidate"] for r in rows):
        at = {(r["epsilon"], r["alpha"]): r for r in rows
              if r["candidate"] == candidate and r["gamma"] == args.default_gamma}
        default = at.get((args.default_epsilon, args.default_alpha))
        if default is None:
            continue
        diff = {a: np.asarray(r["ins"]) - np.asarray(r["del"]) for (e, a), r in at.items() if e == args.default_epsilon}
        row = {"candidate": candidate, "Diff": 100 * diff[args.default_alpha].mean(),
               "Ins": 100 * np.mean(default["ins"]), "Del": 100 * np.mean(default["del"]), "valid": default["valid"],
               "|delta| mean": default["delta_mean"], "gen s/img": default["seconds"] / len(diff[args.default_alpha])}
        beats = True
        for other in (1.0, 0.0):
            if other in diff:
                gain, se = paired(diff[args.default_alpha], diff[other])
                row[f"vs alpha {other:g}"] = f"{gain:+.2f} ({se:.2f})"
                beats &= gain > se
            else:
                beats = False
        if "pixel" in reference and candidate != "pixel":  # the first reconstruction's defaults
            gain, se = paired(diff[args.default_alpha], reference["pixel"])
            row["vs pixel"] = f"{gain:+.2f} ({se:.2f})"
        small_row = at.get((small, args.default_alpha))
        if small_row is None and "+blur" in candidate:  # the blur reads the base's counterfactuals: its bound
            base = candidate.split("+blur")[0]
            small_row = next((r for r in rows if r["candidate"] == base and r["gamma"] == args.default_gamma
                              and r["epsilon"] == small and r["alpha"] == args.default_alpha), None)
        binds = small_row is not None and small_row.get("pairs_at_bound", 0) >= 0.5
        if small_row is not None:
            row[f"pairs at bound, eps {small:g}"] = small_row.get("pairs_at_bound", float("nan"))
            row[f"values at bound, eps {small:g}"] = small_row["at_bound"]
        row["meets"] = "yes" if beats and binds else "no"
        out.append(row)
    return pd.DataFrame(out).round(3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default="unit,pixel", help=f"comma-separated, of {', '.join(CANDIDATES)}")
    ap.add_argument("--gamma", type=float, nargs="+", default=[5, 20, 40])
    ap.add_argument("--epsilon", type=float, nargs="+", default=[0.5, 2, 8])
    ap.add_argument("--alpha", type=float, nargs="+", default=[1.0, 0.7, 0.4, 0.1])
    ap.add_argument("--default-gamma", type=float, default=20)
    ap.add_argument("--default-epsilon", type=float, default=8)
    ap.add_argument("--default-alpha", type=float, default=0.7)
    ap.add_argument(
        "--blur",
        type=float,
        nargs="+",
        default=None,
        help="also read each candidate's counterfactuals (default setting, M = 1) off with these blur_sigma",
    )
    ap.add_argument("--M", type=int, default=1, help="counterfactuals per image (1 keeps the run under 30 min)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--step", type=int, default=224 * 8, help="insertion/deletion pixels per step (coarse: 28 steps)")
    ap.add_argument("--images", type=int, default=None, help="only the first N images (a quick look)")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=16, help="inputs per forward pass of the metric")
    ap.add_argument("--pairs-per-pass", type=int, default=16, help="counterfactual pairs per forward/backward")
    ap.add_argument("--out", default="results/calibration/cce")
    args = ap.parse_args()
    if args.blur and args.M != 1:
        sys.exit("calibrate_cce: --blur reads one counterfactual per image: use it with --M 1")
    unknown = set(args.candidates.split(",")) - set(CANDIDATES)
    if unknown:
        sys.exit(f"calibrate_cce: unknown candidate {', '.join(sorted(unknown))}; known: {', '.join(CANDIDATES)}")
    seed_everything(0)
    device = resolve_device(args.device)
    model = create_model(args.model, device=device)
    images, ids = calibration_images(model)
    if args.images:
        images, ids = images[: args.images], ids[: args.images]
    images = images.to(device)
    with torch.no_grad():
        targets = model(images).argmax(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ids, "target": [model.categories[int(t)] for t in targets]}).to_csv(
        out / "images.csv", index=False
    )
    log = out / "settings.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    n_scenes = len({i.split("/")[0] for i in ids})
    print(f"device: {device_name(device)}; {args.model}; {len(ids)} images of {n_scenes} distinct scenes; "
          f"M={args.M}, steps={args.steps}, metric step {args.step}", flush=True)

    for candidate in args.candidates.split(","):
        for setting in settings(args):
            key = {"candidate": candidate, **setting}
            if any(all(r.get(k) == v for k, v in key.items()) and r.get("n") == len(ids) for r in done):
                continue
            rows = run_setting(model, images, targets, candidate, setting, args)
            with open(log, "a", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps({**r, "n": len(ids)}) + "\n")
            done += [{**r, "n": len(ids)} for r in rows]
            print(f"{candidate} gamma={setting['gamma']:g} epsilon={setting['epsilon']:g}: "
                  f"valid {rows[0]['valid']:.0%}, |delta| {rows[0]['delta_mean']:.3f}, {rows[0]['seconds']:.0f} s",
                  flush=True)

    blur_names = []
    for candidate in args.candidates.split(",") if args.blur else []:
        names = [f"{candidate}+blur{b:g}" for b in args.blur]
        blur_names += names
        if all(any(r["candidate"] == n and r.get("n") == len(ids) for r in done) for n in names):
            continue
        rows = run_blur_variants(model, images, targets, candidate, args.blur, args)
        with open(log, "a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({**r, "n": len(ids)}) + "\n")
        done += [{**r, "n": len(ids)} for r in rows]
        print(f"{candidate} read off with blur {', '.join(f'{b:g}' for b in args.blur)}: done", flush=True)

    chosen = set(args.candidates.split(",")) | set(blur_names)
    rows = [r for r in done if r.get("n") == len(ids) and r["candidate"] in chosen]
    table = summarise(rows)
    table.to_csv(out / "calibration.csv", index=False)
    verdicts = criterion(rows, args)
    verdicts.to_csv(out / "criterion.csv", index=False)
    text = (
        f"CCE calibration: {args.model} on {device_name(device)}, {len(ids)} images of {n_scenes} scenes "
        f"({', '.join(VIEWS)}), M={args.M}, {args.steps} steps, insertion/deletion step {args.step}.\n\n"
        + to_markdown(table)
        + "\n\nPaired effect of gamma:\n"
        + "\n".join(paired_gamma_effect(rows, args))
        + "\n\nCriterion (docs/cce_method.md): Diff at alpha "
        + f"{args.default_alpha:g}"
        + " minus Diff at alpha 1 and 0, paired (SE); share of counterfactuals at the bound at the smallest "
        "epsilon:\n\n"
        + (to_markdown(verdicts) if len(verdicts) else "(needs alpha 1 and 0 at the default setting)")
        + "\n"
    )
    (out / "calibration.md").write_text(text, encoding="utf-8")
    print("\n" + text)


if __name__ == "__main__":
    main()

"""What bf16 (or tf32) does to the numbers: the same `cce-bench compare` run in two precisions, per-image
insertion/deletion AUC differences and the time of each.

    python scripts/precision_differences.py                      # bundled photos, GCAM+ and CCE, fp32 vs bf16
    python scripts/precision_differences.py --methods cce --images 2 --other tf32 device=cuda

Arguments after the options are passed to both runs as overrides (device=cuda, model=vgg19, ...). On a CPU
without native bfloat16 the bf16 run is much slower than fp32: it measures accuracy, not speed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd


def run_compare(precision: str, methods: list[str], images: int, overrides: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "cce_bench.cli", "compare", f"methods=[{','.join(methods)}]", "data=photos",
               f"data.n_images={images}", "metrics=[insertion_deletion,class_sensitivity]", f"precision={precision}",
               f"out={out}", *overrides]
    subprocess.run(command, check=True)
    return json.loads((out / "run.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="gradcam_pp,cce", help="comma-separated method names")
    parser.add_argument("--images", type=int, default=6, help="bundled photos (at most 6)")
    parser.add_argument("--reference", default="fp32")
    parser.add_argument("--other", default="bf16")
    parser.add_argument("--out", type=Path, default=None, help="keep the two runs here (default: a temporary folder)")
    args, overrides = parser.parse_known_args()
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        runs = {p: run_compare(p, methods, args.images, overrides, root / p) for p in (args.reference, args.other)}
        frames = {p: pd.read_csv(root / p / "records.csv") for p in runs}
    key = ["method", "image_id"]
    both = frames[args.reference].merge(frames[args.other], on=key, suffixes=("_ref", "_other"))
    rows = []
    for column in ("ins_auc", "del_auc"):
        both[f"d_{column}"] = 100 * (both[f"{column}_other"] - both[f"{column}_ref"])
    both["same_class"] = both["target_ref"] == both["target_other"]
    for method, group in both.groupby("method", sort=False):
        rows.append({"method": method, "images": len(group), "same class": int(group["same_class"].sum()),
                     "mean |dIns|": group["d_ins_auc"].abs().mean(), "max |dIns|": group["d_ins_auc"].abs().max(),
                     "mean |dDel|": group["d_del_auc"].abs().mean(), "max |dDel|": group["d_del_auc"].abs().max(),
                     "dIns of the mean": group["d_ins_auc"].mean(), "dDel of the mean": group["d_del_auc"].mean(),
                     f"s/img {args.reference}": group["seconds_ref"].mean(),
                     f"s/img {args.other}": group["seconds_other"].mean()})
    print(f"\n{args.other} against {args.reference}: AUC differences in the tables' units (100 x AUC), per image")
    print(both[key + ["d_ins_auc", "d_del_auc", "same_class"]].round(3).to_markdown(index=False))
    print()
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))
    print(f"\nwhole runs: {args.reference} {runs[args.reference]['wall_seconds']} s, "
          f"{args.other} {runs[args.other]['wall_seconds']} s")


if __name__ == "__main__":
    main()

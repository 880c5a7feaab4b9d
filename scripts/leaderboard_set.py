"""Writes the offline comparison set of docs/cce_method.md ("CCE against the nine"): real photos that the
installed packages ship, as files that `cce-bench compare` reads like a user's own data.

- OUT/images/: one PNG per view of each calibration scene (scripts/calibrate_cce.py's scenes and views:
  scikit-image's seven photos, matplotlib's grace_hopper, scikit-learn's china and flower where
  scikit-learn is installed), scored by insertion/deletion of the model's own answer
  (`data=imagenet data.root=OUT/images`, a flat folder);
- OUT/coco/: a COCO folder (val2017/ + annotations/instances_val2017.json) of the photos with boxes in the
  suite's shipped annotation file (cce_bench/assets/photos_coco.json), each also mirrored with its boxes
  mirrored, for the pointing game (`data=coco data.root=OUT/coco`).

    python scripts/leaderboard_set.py --out results/leaderboard/set --views whole
    cce-bench compare data=imagenet data.root=results/leaderboard/set/images data.n_images=null out=RUN1
    cce-bench compare data=coco data.root=results/leaderboard/set/coco out=RUN2
    cce-bench pointing-game game=contrastive data=coco data.root=results/leaderboard/set/coco out=RUN3
    python scripts/leaderboard_set.py --summarise RUN1 RUN2 RUN3

`--summarise` reads the runs' records.csv and prints each method's rank with its difference to CCE paired
over the same images (mean and standard error), for Diff (insertion - deletion), the pointing game, the
contrastive pointing game (`cce-bench pointing-game game=contrastive`) and the class deviation, where the
runs have them. Several runs of the same data (the nine in one run, CCE in another) are merged first.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
from pathlib import Path

import pandas as pd
from torchvision.transforms.v2 import functional as TF

from cce_bench.data import load_rgb
from cce_bench.data.images import bundled_photo_path
from cce_bench.resources import asset_path
from cce_bench.tables import paired_differences, standard_error


def calibration_module():
    spec = importlib.util.spec_from_file_location("calibrate_cce", Path(__file__).with_name("calibrate_cce.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_images(out: Path, views: list[str]) -> int:
    calibration = calibration_module()
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for name, path in calibration.scenes():
        picture = load_rgb(str(path))
        for how in views:
            calibration.view(picture, how).save(out / f"{name}_{how}.png")
            n += 1
    return n


def mirrored_annotations(coco: dict) -> dict:
    """Each image also as a mirrored copy (file NAME_mirrored.png, id + 1000) with its boxes mirrored."""
    out = copy.deepcopy(coco)
    next_ann = max(a["id"] for a in coco["annotations"]) + 1
    for info in coco["images"]:
        mirror = {**info, "id": info["id"] + 1000, "file_name": Path(info["file_name"]).stem + "_mirrored.png"}
        out["images"].append(mirror)
        for ann in coco["annotations"]:
            if ann["image_id"] == info["id"]:
                x, y, w, h = ann["bbox"]
                out["annotations"].append({**ann, "id": next_ann, "image_id": mirror["id"],
                                           "bbox": [info["width"] - x - w, y, w, h]})
                next_ann += 1
    return out


def write_coco(out: Path) -> int:
    coco = json.loads(Path(asset_path("photos_coco.json")).read_text())
    both = mirrored_annotations(coco)
    (out / "val2017").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    photos = bundled_photo_path("chelsea").parent
    for info in coco["images"]:
        picture = load_rgb(str(photos / info["file_name"]))
        picture.save(out / "val2017" / info["file_name"])
        TF.horizontal_flip(picture).save(out / "val2017" / (Path(info["file_name"]).stem + "_mirrored.png"))
    (out / "annotations" / "instances_val2017.json").write_text(json.dumps(both), encoding="utf-8")
    return len(both["annotations"])


def paired_to(records: pd.DataFrame, score: str, reference: str = "cce") -> pd.DataFrame:
    """Per method: mean score (x 100) with its SE, rank, and the difference to `reference` paired over
    images (the leaderboard's own functions, on records merged from several runs)."""
    differences = paired_differences(records, "method", score, reference)
    rows = []
    for method, mine in records.dropna(subset=[score]).groupby("method"):
        d = differences.get(method)
        rows.append({"method": method, score: 100 * mine[score].mean(), "SE": standard_error(mine[score]),
                     "images": mine["image_id"].nunique(), f"- {reference}": d.mean if d else None,
                     f"- {reference} SE": d.se if d else None})
    table = pd.DataFrame(rows).sort_values(score, ascending=False)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.round(2)


def summarise(groups: list[str]) -> None:
    """Each argument a run folder, or several joined by commas (one data set, methods split over runs)."""
    for group in groups:
        folders = [Path(f) for f in group.split(",")]
        missing = [str(f) for f in folders if not (f / "records.csv").is_file()]
        if missing:
            raise SystemExit(f"leaderboard_set: error: {missing[0]} has no records.csv: pass finished run folders "
                             "(RUN or RUN1,RUN2 to merge)")
        records = pd.concat([pd.read_csv(f / "records.csv") for f in folders], ignore_index=True)
        if "ins_auc" in records:
            records["diff"] = records["ins_auc"] - records["del_auc"]
        name = " + ".join(f.name for f in folders)
        for score in ("diff", "proportion", "contrastive", "class_deviation"):
            if score in records and records[score].notna().any():
                print(f"\n{name}: {score} (x 100), ranked; difference to CCE paired over the same images\n")
                print(paired_to(records, score).to_markdown(index=False, floatfmt=".2f"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/leaderboard/set")
    ap.add_argument(
        "--views", nargs="+", default=["whole"], help="of whole, crop_top_left, crop_bottom_right, mirrored"
    )
    ap.add_argument("--summarise", nargs="+", metavar="RUN[,RUN]", help="run folders to rank (writes nothing); "
                    "folders joined by commas are merged")
    args = ap.parse_args()
    if args.summarise:
        summarise(args.summarise)
        return
    out = Path(args.out)
    views = calibration_module().VIEWS
    unknown = sorted(set(args.views) - set(views))
    if unknown:
        ap.error(f"unknown view {unknown[0]!r}: pass --views of {', '.join(views)}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(
            f"leaderboard_set: error: cannot write {out} ({exc.strerror}): pass --out DIR you can write"
        ) from None
    n_images = write_images(out / "images", args.views)
    n_boxes = write_coco(out / "coco")
    print(f"{n_images} images in {out / 'images'}; {n_boxes} boxes in {out / 'coco'}")


if __name__ == "__main__":
    main()

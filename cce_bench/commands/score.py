"""`cce-bench score maps=PATH`: saliency maps made by any tool, scored by the suite's protocols.

config -> data + model -> the saved maps of its images -> insertion/deletion (and the pointing game
where the data has boxes) -> per-image records -> one row of the methods' table. The class a map is
scored for is the one every method of the suite explains: the model's top-1 class, or for a COCO pair
the best of the ImageNet classes its category maps to (records: `target`, `target_name`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from ..data.saved_maps import MapsOnImages, SavedMaps
from ..metrics import MapsToScore
from ..runs.cost import scoring_part
from ..runs.engine import Job, ScoringCommand, Session
from ..runs.run_folder import RunFolder
from ..runs.runtime import build_dataset, build_model, model_description
from ..runs.scoring import RunMetrics, batch_records, explained_classes, run_metrics, write_curve_tables


def maps_name(cfg: DictConfig) -> str:
    return str(cfg.name) if cfg.get("name") else Path(str(cfg.maps)).expanduser().name.split(".")[0] or "maps"


def score_batch(model, batch: dict, name: str, metrics: RunMetrics, cfg: DictConfig) -> tuple[list[dict], dict]:
    device = torch.device(cfg.device)
    images, maps = batch["image"].to(device), batch["map"].to(device)
    allowed = batch.get("allowed")
    targets, target_prob = explained_classes(model, images, allowed, int(cfg.batch_size))
    masks = batch["mask"].to(device) if "mask" in batch else None
    to_score = MapsToScore(model, images, maps, targets, cfg, int(cfg.seed) + int(batch["index"][0]),
                           ids=list(batch["image_id"]), masks=masks, method=name)
    per_image, curves = metrics.score(to_score)
    records = batch_records(batch, model, targets, name, per_image, target_prob)
    return records, {"curves": {name: curves} if curves else {}}


def prepare(session: Session) -> Job:
    cfg = session.cfg
    maps = SavedMaps(cfg.maps, cfg.get("maps_ids"))
    OmegaConf.update(cfg, "maps_digest", maps.digest(), force_add=True)  # a rerun on changed maps is a new run
    model = build_model(cfg)
    data_cfg: dict = OmegaConf.to_container(cfg.data)  # type: ignore[assignment]  # a mapping node: a dict
    everything = cast(DictConfig, OmegaConf.merge(cfg, {"data": {"n_images": None}}))
    all_ids = [s.id for s in build_dataset(everything, model).samples]
    dataset = MapsOnImages(build_dataset(cfg, model), maps, data_cfg, str(cfg.maps_frame), all_ids)
    if dataset.unused:
        print(f"note: {dataset.unused} map(s) in {maps.path} are for images outside this run's sample "
              "(data.n_images, seed): left aside", file=sys.stderr)
    name = maps_name(cfg)
    metrics = run_metrics(cfg, dataset.has_boxes, has_method=False, command="score")

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        metrics.check_scored(records)
        table = metrics.table(records, [name], [name])
        measured = "; ".join(m.caption() for m in metrics if m.caption()) or ", ".join(metrics.names)
        header = (
            f"Maps {maps.path} scored on {model_description(cfg)}, {records['image_id'].nunique()} images of "
            f"{dataset.name} ({len(skipped)} skipped): {measured}"
            + ("." if "SE = " in measured else "; SE = standard error over the images.")
        )
        text = write_curve_tables(run, table, header)
        return {"maps": str(maps.path), "images": int(records["image_id"].nunique()), "caption": header}, text

    run_shape = {"maps": "from a file", "side": int(cfg.data.crop)}  # no method to explain again
    return Job(
        dataset,
        lambda batch: score_batch(model, batch, name, metrics, cfg),
        write_tables,
        desc=f"score {name}",
        unit="img",
        model=model,
        plan_parts=lambda counts: {**scoring_part(metrics.passes(int(cfg.data.crop))),
                                   **metrics.counted_before(counts, run_shape)},
        unplanned=metrics.unplanned(), counted_passes=lambda images: metrics.counted_now(images, run_shape),
    )


COMMAND = ScoringCommand("score", prepare)  # maps from files: nothing to recompute examples with

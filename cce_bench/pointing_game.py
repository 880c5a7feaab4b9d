"""`cce-bench pointing-game`: Table 5, the energy-based pointing game on COCO for every method.

config -> COCO pairs + model -> each explainer -> maps -> proportion inside the box mask -> per-(image,
category) records -> the table (methods as columns) beside the paper's row, with the time per image.
"""
from __future__ import annotations

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from .data import create_pointing_dataset
from .engine import all_shards_done, begin, finish_run, open_run, run_batches
from .errors import UserError
from .figures import plot_pointing_game
from .explainers import EXPLAINERS, create_explainer
from .explainers.calm import NeedsCheckpoint
from .metrics.insertion_deletion import batched_logits
from .metrics.pointing_game import energy_pointing_game
from .run_folder import RunFolder, machine_info
from .runtime import build_model
from .timing import timed
from .tables import read_paper_table, to_markdown

NEEDS_CHECKPOINT = "needs checkpoint"


def method_knobs(cfg: DictConfig) -> dict[str, dict]:
    """Knobs of each method by its registered name (configs/method/*.yaml, under cfg.method_knobs)."""
    knobs = {}
    for entry in OmegaConf.to_container(cfg.method_knobs).values():
        entry = dict(entry)
        knobs[EXPLAINERS.get(entry.pop("name")).name] = entry
    return knobs


def build_explainers(cfg: DictConfig, model) -> tuple[dict, dict]:
    knobs = method_knobs(cfg)
    explainers, unavailable = {}, {}
    for requested in cfg.methods:
        name = EXPLAINERS.get(requested).name
        try:
            explainers[name] = create_explainer(name, model, **knobs.get(name, {}))
        except NeedsCheckpoint as exc:
            unavailable[name] = str(exc)
    return explainers, unavailable


def pointing_table(records: pd.DataFrame, methods: list[str], unavailable: dict, paper: pd.DataFrame | None) -> pd.DataFrame:
    """Methods as columns; rows: the measured proportion (%), the paper's, and seconds per image."""
    published = dict(zip(paper["method"], paper["proportion"])) if paper is not None else {}
    rows = {"Proportion (%)": {}, "Proportion (paper)": {}, "s/img": {}}
    for name in methods:
        if name in unavailable:
            rows["Proportion (%)"][name] = NEEDS_CHECKPOINT
            rows["s/img"][name] = NEEDS_CHECKPOINT
        else:
            mine = records[records["method"] == name]
            rows["Proportion (%)"][name] = round(float(mine["proportion"].mean() * 100), 2)
            rows["s/img"][name] = round(float(mine["seconds"].mean()), 3)
        rows["Proportion (paper)"][name] = published.get(name)
    table = pd.DataFrame(rows).T[methods]
    table.insert(0, "", table.index)
    return table.reset_index(drop=True)


def score_batch(model, batch, explainers: dict, cfg) -> tuple[list[dict], dict]:
    device = torch.device(cfg.device)
    images, masks = batch["image"].to(device), batch["mask"].to(device)
    allowed = batch["allowed"].to(device)

    def best_mapped_class(classifier) -> torch.Tensor:
        # the target: the mapped ImageNet class of the category with the highest score
        logits = batched_logits(classifier, images, int(cfg.batch_size))
        return logits.masked_fill(~allowed, float("-inf")).argmax(1)

    model_targets = best_mapped_class(model)
    records = []
    for name, explainer in explainers.items():
        own = explainer.own_classifier
        targets = model_targets if own is None else best_mapped_class(own)
        seconds, maps = timed(lambda: explainer.attribute(images, targets), device)
        seconds /= len(images)
        proportion = energy_pointing_game(maps, masks)
        records += [{"index": batch["index"][i], "pair_id": pid, "category": batch["category"][i],
                     "target": int(targets[i]), "target_name": model.categories[int(targets[i])], "method": name,
                     "proportion": float(proportion[i]), "seconds": seconds}
                    for i, pid in enumerate(batch["id"])]
    return records, {}


def run_pointing_game(cfg: DictConfig) -> RunFolder | None:
    session = begin(cfg)
    cfg, shard, device = session.cfg, session.shard, session.device
    model = build_model(cfg)
    explainers, unavailable = build_explainers(cfg, model)
    dataset = create_pointing_dataset(OmegaConf.to_container(cfg.data), model.mean.flatten().tolist(),
                                      model.std.flatten().tolist(), seed=int(cfg.seed))
    methods = [EXPLAINERS.get(m).name for m in cfg.methods]
    samples = pd.DataFrame([{"id": s.id, "path": s.path, "category": s.category, "boxes": list(s.boxes)}
                            for s in dataset.samples])
    run = open_run(cfg, shard, device, samples)

    run_batches(cfg, run, dataset, shard, lambda batch: score_batch(model, batch, explainers, cfg),
                desc=f"pointing game ({len(explainers)} methods)", unit="pair")
    if not all_shards_done(session):
        return None

    records, unreadable = run.merge()
    skipped = pd.concat([pd.DataFrame(dataset.skipped, columns=["id", "reason"]), unreadable], ignore_index=True)
    run.write_csv("skipped.csv", skipped)
    if records.empty and explainers:
        raise UserError(f"no pair of {dataset.name} could be read ({len(skipped)} skipped, see {run.path}/skipped.csv)")
    table = pointing_table(records, methods, unavailable, read_paper_table(cfg.paper))
    markdown = to_markdown(table)
    header = (f"Energy-based pointing game on {len(dataset) - len(unreadable)} (image, category) pairs of "
              f"{dataset.name} ({len(skipped)} skipped, see skipped.csv), {model.name} on "
              f"{machine_info(device)['device_name']}; proportion = 100 x mean share of the map's energy "
              "inside the boxes; (paper): Table 5.")
    notes = "".join(f"\n- {name}: {message}" for name, message in unavailable.items())
    run.write_csv("table.csv", table)
    run.write_text("table.md", f"{header}\n\n{markdown}\n{notes}\n")
    plot_pointing_game(run.path)
    finish_run(run, "pointing-game", session, {"pairs": len(dataset), "records": len(records)})
    print(f"\n{header}\n\n{markdown}\n{notes}\n\nwritten to {run.path}")
    return run

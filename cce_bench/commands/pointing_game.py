"""`cce-bench pointing-game`: Table 5, the energy-based pointing game on COCO for every method.

config -> COCO pairs + model -> each explainer -> maps -> proportion inside the box mask -> per-(image,
category) records -> the table (methods as columns) beside the paper's row, with the time per image.
"""
from __future__ import annotations

import pandas as pd
import torch

from ..errors import UserError
from ..explainers import EXPLAINERS
from ..figures import plot_pointing_game
from ..metrics.pointing_game import energy_pointing_game
from ..runs.engine import Examples, Job, ScoringCommand, Session
from ..runs.run_folder import RunFolder, machine_info
from ..runs.scoring import ClassesPerNetwork, batch_records, explained_network
from ..runs.runtime import build_dataset, build_explainers, build_model, method_names, model_description
from ..runs.timing import timed
from ..tables import read_paper_table, to_markdown


def pointing_table(records: pd.DataFrame, methods: list[str], unavailable: dict, paper: pd.DataFrame | None) -> pd.DataFrame:
    """Methods as columns (by label); rows: the measured proportion (%), the paper's, and seconds per image."""
    published = dict(zip(paper["name"], paper["proportion"])) if paper is not None else {}
    labels = [EXPLAINERS.get(name).label for name in methods]
    rows = {"Proportion (%)": {}, "Proportion (paper)": {}, "s/img": {}}
    for name, label in zip(methods, labels):
        if name in unavailable:
            rows["Proportion (%)"][label] = unavailable[name].short
            rows["s/img"][label] = unavailable[name].short
        else:
            mine = records[records["method"] == name]
            rows["Proportion (%)"][label] = round(float(mine["proportion"].mean() * 100), 2)
            rows["s/img"][label] = round(float(mine["seconds"].mean()), 3)
        rows["Proportion (paper)"][label] = published.get(name)
    table = pd.DataFrame(rows).T[labels]
    table.insert(0, "", table.index)
    return table.reset_index(drop=True)


def score_batch(model, batch, explainers: dict, cfg) -> tuple[list[dict], dict]:
    device = torch.device(cfg.device)
    images, masks = batch["image"].to(device), batch["mask"].to(device)
    allowed = batch["allowed"].to(device)
    classes = ClassesPerNetwork(images, allowed, int(cfg.batch_size))
    records = []
    for name, explainer in explainers.items():
        targets, _ = classes(explained_network(explainer, model))
        seconds, maps = timed(lambda: explainer.attribute(images, targets), device)
        proportion = energy_pointing_game(maps, masks)
        records += batch_records(batch, model, targets, name, {"category": batch["category"],
                                 "proportion": proportion.tolist()}, seconds=seconds / len(images))
    return records, {}


def beside_paper(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a last row, measured - paper, per method (for `report`)."""
    rows = table.set_index(table.columns[0])
    measured = pd.to_numeric(rows.loc["Proportion (%)"], errors="coerce")
    paper = pd.to_numeric(rows.loc["Proportion (paper)"], errors="coerce")
    difference = (measured - paper).round(2).astype(object).where((measured - paper).notna(), None)
    last = pd.DataFrame([["measured - paper", *difference.tolist()]], columns=table.columns)
    return pd.concat([table, last], ignore_index=True)


def examples(records: pd.DataFrame, cfg) -> Examples:
    """CCE's records (else the first method's) with their proportion as `score` (for `report`'s examples)."""
    method = "cce" if "cce" in set(records["method"]) else records["method"].iloc[0]
    chosen = records[records["method"] == method].assign(score=lambda r: 100 * r["proportion"])
    return Examples(chosen, f"{EXPLAINERS.get(method).label} proportion (%)", {"method": method})


def prepare(session: Session) -> Job:
    cfg, device = session.cfg, session.device
    model = build_model(cfg)
    explainers, unavailable = build_explainers(cfg, model)
    dataset = build_dataset(cfg, model)
    if not dataset.has_boxes:
        raise UserError(f"data={dataset.name} has no boxes to point into: the pointing game takes data=coco "
                        "(data.root=/path/to/coco) or data=photos_coco")
    methods = method_names(cfg)

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        unreadable = len(skipped) - len(dataset.skipped)
        table = pointing_table(records, methods, unavailable, read_paper_table(cfg.paper))
        markdown = to_markdown(table)
        header = (f"Energy-based pointing game on {len(dataset) - unreadable} (image, category) pairs of "
                  f"{dataset.name} ({len(skipped)} skipped, see skipped.csv), {model_description(cfg)} on "
                  f"{machine_info(device)['device_name']}; proportion = 100 x mean share of the map's energy "
                  "inside the boxes; (paper): Table 5.")
        notes = "".join(f"\n- {EXPLAINERS.get(name).label}: {exc}" for name, exc in unavailable.items())
        run.write_csv("table.csv", table)
        run.write_text("table.md", f"{header}\n\n{markdown}\n{notes}\n")
        plot_pointing_game(run.path)
        return {"pairs": len(dataset), "records": len(records), "caption": header}, f"{header}\n\n{markdown}\n{notes}"

    return Job(dataset, lambda batch: score_batch(model, batch, explainers, cfg), write_tables,
               desc=f"pointing game ({len(explainers)} methods)", unit="pair", model=model,
               explainers=list(explainers.values()), can_score=bool(explainers))


COMMAND = ScoringCommand("pointing-game", prepare, examples=examples, beside_paper=beside_paper)

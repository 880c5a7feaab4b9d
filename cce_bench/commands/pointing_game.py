"""`cce-bench pointing-game`: Table 5, the energy-based pointing game on COCO for every method; with
`game=contrastive`, the contrastive pointing game.

config -> COCO pairs (or (image, P, Q) questions) + model -> each explainer -> maps -> proportion inside
the box mask (and the share on P's boxes against Q's) -> per-(image, category) records -> the table
(methods as columns) beside the paper's row, with standard errors and the time per image.
"""
from __future__ import annotations

from functools import partial

import pandas as pd
import torch

from ..errors import UserError
from ..explainers import EXPLAINERS, Contrast
from ..figures import plot_pointing_game
from ..metrics import MapsToScore
from ..runs.cost import method_parts, scoring_part
from ..runs.engine import Examples, Job, ScoringCommand, Session, example_method
from ..runs.map_store import MapStore
from ..runs.run_folder import RunFolder, machine_info
from ..runs.runtime import build_dataset, build_explainers, build_model, chosen_methods, method_label, model_description
from ..runs.scoring import ClassesPerNetwork, RunMetrics, batch_records, explained_network
from ..runs.timing import timed
from ..tables import Table, beside_paper, best_row_caption, read_paper_table


def pointing_table(records: pd.DataFrame, methods: list[str], labels: list[str], unavailable: dict,
                   paper: pd.DataFrame | None, metrics: RunMetrics) -> pd.DataFrame:
    """Table 5's layout, methods as columns (by label): each metric's rows (the contrastive share (%) and its
    SE in the contrastive game, the proportion (%) and its SE), the paper's proportion, and seconds per image."""
    contrastive = "contrastive_pointing_game" in metrics.names
    published = dict(zip(paper["name"], paper["proportion"])) if paper is not None and not contrastive else {}
    by_method = metrics.table(records, methods, labels).set_index("method").drop(columns="images")
    seconds = records.groupby("method")["seconds"].mean() if len(records) else pd.Series(dtype=float)
    by_method["Proportion (paper)"] = [published.get(name) for name in methods]
    by_method["s/img"] = [round(float(seconds[n]), 3) if n in seconds else None for n in methods]
    by_method = by_method.astype(object)
    for name, label in zip(methods, labels):
        if name in unavailable:
            for row in by_method.columns:
                by_method.loc[label, row] = None if row == "Proportion (paper)" else unavailable[name].short
    table = by_method.T[labels]
    table.insert(0, "", table.index)
    return table.reset_index(drop=True)


def score_batch(model, batch, explainers: dict, metrics: RunMetrics, kept: MapStore, cfg) -> tuple[list[dict], dict]:
    """Each method's answer for every pair of the batch (or every question: "why P rather than Q?", Q the best
    class of the other category), scored by the run's metrics."""
    device = torch.device(cfg.device)
    images, masks = batch["image"].to(device), batch["mask"].to(device)
    contrast_masks = batch["contrast_mask"].to(device) if "contrast_mask" in batch else None
    classes = ClassesPerNetwork(images, batch["allowed"].to(device), int(cfg.batch_size))
    records: list[dict] = []
    pieces = batch.get("pieces")  # a method finished before an interruption inside this batch is not done again
    for name, explainer in explainers.items():
        kept_before = pieces.done(name) if pieces is not None else None
        if kept_before is not None:
            records += kept_before["records"]
            continue
        network = explained_network(explainer, model)
        targets, _ = classes(network)
        per_image = {"category": batch["category"]}
        asked: torch.Tensor | Contrast = targets
        if contrast_masks is not None:
            contrast, _ = classes(network, allowed=batch["contrast_allowed"].to(device))
            asked = Contrast(targets, contrast)
            per_image.update(contrast_category=batch["contrast_category"], contrast=contrast.tolist())
        seconds, maps = timed(partial(explainer.attribute, images, asked), device)
        kept.keep(name, batch["image_id"], maps, None if contrast_masks is not None else explainer)
        scored, _ = metrics.score(MapsToScore(model, images, maps, targets, cfg, int(cfg.seed),
                                              ids=list(batch["image_id"]), masks=masks, method=name,
                                              contrast_masks=contrast_masks))
        mine = batch_records(batch, model, targets, name, {**per_image, **scored}, seconds=seconds / len(images))
        if pieces is not None:
            pieces.keep(name, mine, {})
        records += mine
    return records, {}


def best_caption(records: pd.DataFrame, score: str, cfg) -> str:
    """Which methods these pairs cannot tell apart from the best one (paired over the same pairs)."""
    return best_row_caption(records, "method", score, lambda name: method_label(cfg, str(name)), "the best",
                            unit="pairs")


def beside_paper_by_row(table: pd.DataFrame) -> pd.DataFrame:
    """Table 5's layout (a column per method): tables.beside_paper's differences as a last row."""
    by_method = table.set_index(table.columns[0]).T
    if "Proportion (paper)" not in by_method:
        return table
    difference = beside_paper(by_method)["Proportion - paper"]
    last = pd.DataFrame([["measured - paper", *difference.tolist()]], columns=table.columns)
    return pd.concat([table, last], ignore_index=True)


def examples(records: pd.DataFrame, cfg) -> Examples:
    """The example method's records (engine.example_method) with their proportion (the contrastive game:
    their share on P) as `score` (for `report`'s examples)."""
    method = example_method(records)
    score = "contrastive" if "contrastive" in records else "proportion"
    chosen = records[records["method"] == method].assign(score=lambda r: 100 * r[score])
    return Examples(chosen, f"{method_label(cfg, method)} {score} (%)", {"method": method})


def prepare(session: Session) -> Job:
    cfg, device = session.cfg, session.device
    model = build_model(cfg)
    explainers, unavailable = build_explainers(cfg, model)
    contrastive = cfg.get("game", "energy") == "contrastive"
    dataset = build_dataset(cfg, model, **({"contrastive": True} if contrastive else {}))
    if not dataset.has_boxes:
        raise UserError(f"data={dataset.name} has no boxes to point into: the pointing game takes data=coco "
                        "(data.root=/path/to/coco) or data=photos_coco")
    methods = chosen_methods(cfg)
    metrics = RunMetrics(["contrastive_pointing_game", "pointing_game"] if contrastive else ["pointing_game"], cfg)

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        unreadable = len(skipped) - len(dataset.skipped)
        table = pointing_table(records, methods, [method_label(cfg, n) for n in methods], unavailable,
                               read_paper_table(cfg.paper), metrics)
        where = (
            f"{len(dataset) - unreadable} {'(image, P, Q) questions' if contrastive else '(image, category) pairs'} of "
            f"{dataset.name} ({len(skipped)} skipped, see skipped.csv), {model_description(cfg)} on "
            f"{machine_info(device)['device_name']}"
        )
        if contrastive:
            answering = [method_label(cfg, n) for n in methods if EXPLAINERS.get(n).answers_contrast()]
            contrastive_methods = (
                (", ".join(answering) + (" answers" if len(answering) == 1 else " answer")) if answering else ""
            )
            header = (
                f'Contrastive pointing game on {where}: "why P rather than Q?" for two annotated categories of one '
                "image; Contrastive = 100 x mean share of the map's energy in P's boxes among its energy in P's and "
                f"Q's boxes (50: no preference); {contrastive_methods or 'no method here answers'} with a map for "
                "P against Q, every other method with its map for P; Proportion = the energy-based pointing game "
                "of the same map on P's boxes; SE = standard error over the questions."
            )
        else:
            header = (f"Energy-based pointing game on {where}; proportion = 100 x mean share of the map's energy "
                      "inside the boxes, SE its standard error over the pairs; (paper): Table 5.")
        header += " " + best_caption(records, "contrastive" if contrastive else "proportion", cfg)
        notes = "".join(f"\n- {method_label(cfg, name)}: {exc}" for name, exc in unavailable.items())
        text = Table(table, header, notes).write(run)
        plot_pointing_game(run.path)
        return {"pairs": len(dataset), "records": len(records), "caption": header}, text

    def plan_parts(counts):
        return {**method_parts(counts, explainers), **scoring_part()}

    return Job(dataset, lambda batch: score_batch(model, batch, explainers, metrics, session.maps, cfg), write_tables,
               desc=f"pointing game ({len(explainers)} methods)", unit="pair", model=model,
               explainers=list(explainers.values()), can_score=bool(explainers), plan_parts=plan_parts)


COMMAND = ScoringCommand("pointing-game", prepare, examples=examples, beside_paper=beside_paper_by_row)

"""`cce-bench compare`: one leaderboard, every method on the same images and classes.

config -> data + model -> each explainer -> timed maps -> insertion/deletion, the pointing game where the
data has boxes, and the sanity check (the maps again with every block of the network re-initialised,
Spearman of magnitudes against the trained model's) -> per-(image, method) records -> one row per method
beside the paper's numbers where it has them (Table 5's proportions; CCE's insertion/deletion of
Table 1 at its alpha).
"""
from __future__ import annotations

import sys

import pandas as pd
from omegaconf import DictConfig

from ..errors import UserError
from ..explainers import EXPLAINERS
from ..figures import plot_leaderboard, plot_sweep
from ..metrics import Panel
from ..metrics.base import CHECK, FURTHER, LIBRARY, PROTOCOL
from ..runs.cost import method_parts, method_stage, scoring_part
from ..runs.engine import Examples, Job, ScoringCommand, Session, example_method
from ..runs.leaderboard import barely_believed, check_reference, leaderboard_of, ranking_metric, score_batch
from ..runs.run_folder import RunFolder, machine_info
from ..runs.runtime import (
    build_dataset,
    build_explainers,
    build_model,
    chosen_methods,
    method_label,
    model_description,
    none_can_run,
)
from ..runs.scoring import RunMetrics, mean_curves, run_metrics
from ..tables import (
    Table,
    beside_paper,
)


def examples(records: pd.DataFrame, cfg) -> Examples:
    """The example method's records (engine.example_method) with their insertion - deletion as `score` (the
    pointing game's proportion in a run without insertion/deletion)."""
    method = example_method(records)
    label = method_label(cfg, method)
    mine = records[records["method"] == method]
    if "ins_auc" in records:
        chosen, what = mine.assign(score=lambda r: 100 * (r["ins_auc"] - r["del_auc"])), "Ins - Del (100 x AUC)"
    elif "proportion" in records:
        chosen, what = mine.assign(score=lambda r: 100 * r["proportion"]), "pointing game (%)"
    else:
        raise UserError("the run scored neither insertion/deletion nor the pointing game, the scores its example "
                        "images are ranked by")
    chosen = chosen.dropna(subset=["score"])  # images the method failed on have no score
    return Examples(chosen, f"{label} {what}", {"method": method})


def prepare(session: Session) -> Job:
    cfg, device = session.cfg, session.device
    names = chosen_methods(cfg)
    check_reference(cfg, names)
    model = build_model(cfg)
    explainers, unavailable = build_explainers(cfg, model)
    if not explainers:
        raise none_can_run(unavailable)
    dataset = build_dataset(cfg, model)
    metrics = run_metrics(cfg, dataset.has_boxes, has_method=True, command="compare")
    ranked_by = ranking_metric(cfg, metrics, dataset.has_boxes)

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        metrics.check_scored(records)
        board = leaderboard_of(records, names, unavailable, cfg, metrics, ranked_by)
        records, table = board.records, board.table
        if barely_believed(records, cfg):
            print(barely_believed(records, cfg).strip(), file=sys.stderr)
        header = leaderboard_caption(cfg, metrics, records, table, dataset, skipped, device) + board.verdict
        text = Table(table, header, board.notes).write(run)
        curves = mean_curves(run)
        if curves:
            run.write_json("curves.json", {method_label(cfg, k): v for k, v in curves.items()})
            plot_sweep(run.path)
        plot_leaderboard(run.path, panels(metrics))
        return ({"images": int(records["image_id"].nunique()), "records": len(records), "caption": header},
                text)

    repeats = len(cfg.get("seeds") or [None])  # seeds=[...]: every method and score once per seed
    # what a library metric's passes per image depend on beside itself (the methods it may explain again)
    run_shape = {"methods": [method_stage(e) for e in explainers.values()], "seeds": repeats,
                 "side": int(cfg.data.crop)}

    def plan_parts(counts):
        parts = {**method_parts(counts, explainers, lambda explainer: 1 + metrics.extra_maps(explainer)),
                 **scoring_part(metrics.passes(int(cfg.data.crop)) * len(explainers))}
        return {**{stage: passes * repeats for stage, passes in parts.items()},
                **metrics.counted_before(counts, run_shape)}

    return Job(dataset, lambda batch: score_batch(model, batch, explainers, metrics, session.maps, cfg), write_tables,
               desc=f"compare ({len(explainers)} methods)", unit="img", model=model,
               explainers=list(explainers.values()), plan_parts=plan_parts, unplanned=metrics.unplanned(),
               counted_passes=lambda images: metrics.counted_now(images, run_shape))


def leaderboard_caption(cfg: DictConfig, metrics: RunMetrics, records: pd.DataFrame, table: pd.DataFrame, dataset,
                        skipped, device) -> str:
    """What the table is: the images, the model and the machine, what each metric's columns mean, and what
    the paper's columns beside them are."""
    early = [m.caption() for m in metrics if m.section in (PROTOCOL, FURTHER) and m.caption()]
    late = [m.caption() for m in metrics if m.section in (LIBRARY, CHECK) and m.caption()]
    meanings = "; ".join([*early, "p (median) = the model's median probability of the explained class; s/img = "
                          "seconds per map", *late])
    return (
        f"Every method on the same {records['image_id'].nunique()} images of {dataset.name} ({len(skipped)} "
        f"skipped), {model_description(cfg)} on {machine_info(device)['device_name']}: {meanings}. "
        f"{paper_caption(cfg, table)}"
        + changed_knobs(cfg, sorted(set(records["method"])))
    )


def paper_caption(cfg: DictConfig, table: pd.DataFrame) -> str:
    """What the table's paper columns are (none where the paper has no number for the run's methods)."""
    published = cfg.paper.insertion_deletion if cfg.get("paper") else None
    parts = []
    if "Proportion (paper)" in table:
        parts.append("Table 5's proportions (COCO, Score-CAM's protocol)")
    if "Ins (paper)" in table and published is not None:
        parts.append(f"{EXPLAINERS.get(published.method).label}'s insertion/deletion of {published.name} at its "
                     f"{published.knob} (1000 ImageNet images, VGG-19)")
    if not parts:
        return ""
    return f"(paper): {' and '.join(parts)}: set beside, not the same data unless the run's is. "


def changed_knobs(cfg: DictConfig, names: list[str]) -> str:
    """A sentence naming each knob of the run's methods set away from its default (RISE's N on a budget), ''
    where none is."""
    from ..method_knobs import knobs_of

    changed = []
    for name in names:
        if name not in EXPLAINERS.names() or name not in (cfg.get("method_knobs") or {}):
            continue
        defaults = knobs_of(name).defaults()
        given = cfg.method_knobs[name]
        changed += [f"{method_label(cfg, name)} {knob}={given[knob]}" for knob, default in defaults.items()
                    if knob in given and knob != "batch_size" and given[knob] != default]
    return f"Knobs set away from the methods' defaults: {', '.join(changed)}. " if changed else ""


def panels(metrics: RunMetrics) -> list[Panel]:
    """The leaderboard's panels: each metric's, then the paper's Table 5 where the run has its column."""
    return [panel for metric in metrics for panel in metric.panels()] + [
        Panel("the paper's Table 5 (%): VGG-19 on COCO, not this run", "Proportion (paper)", "tab:gray")]


COMMAND = ScoringCommand("compare", prepare, examples=examples, beside_paper=beside_paper)

"""`cce-bench sweep`: Tables 1-4, a method's knob swept and scored by insertion/deletion.

config -> data + model -> explainer -> maps per setting -> insertion/deletion -> per-image records ->
the table beside the paper's.
"""
from __future__ import annotations

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import UserError
from ..explainers import postprocess
from ..metrics import MapsToScore
from ..models import batched_logits
from ..runs.cost import method_stage, scoring_part
from ..runs.engine import Examples, Job, ScoringCommand, Session
from ..runs.map_store import MapStore
from ..runs.run_folder import RunFolder
from ..runs.runtime import build_dataset, build_explainer, build_model, chosen_methods, model_description
from ..runs.scoring import RunMetrics, batch_records, check_finite, write_curve_tables
from ..tables import beside_paper, paper_applies, read_paper_table, sweep_noise_caption, sweep_table

NOT_A_KNOB = "n/a"


def sweep_values(cfg: DictConfig, explainer) -> list:
    """The swept values; a method without that knob (SCAM has no alpha) is scored once, as one row."""
    if cfg.param.name not in explainer.knob_names():
        return [NOT_A_KNOB]
    values = list(cfg.param["values"])
    if not values:
        raise UserError(f"param {cfg.param.name} has no values: pass param.values=[...]")
    return values


def sweep_settings(cfg: DictConfig, explainer) -> list[dict]:
    values = sweep_values(cfg, explainer)
    if values == [NOT_A_KNOB]:
        return [{}]
    settings = [{cfg.param.name: v} for v in values]
    for setting in settings:
        explainer.with_knobs(**setting)  # a bad swept value fails here, before any work
    return settings


def score_batch(model, batch, explainer, settings, metrics: RunMetrics, kept: MapStore, cfg
                ) -> tuple[list[dict], dict]:
    """Records per (image, setting), and per setting the sums of the batch's insertion/deletion curves."""
    device = torch.device(cfg.device)
    images = batch["image"].to(device)
    probs = check_finite(batched_logits(model, images, int(cfg.batch_size)), model, batch["image_id"]).softmax(1)
    target_prob, targets = probs.max(1)
    curve_sums: dict = {}
    pieces = batch.get("pieces")  # a value finished before an interruption inside this batch is not done again
    keys = [str(setting.get(cfg.param.name, NOT_A_KNOB)) for setting in settings]
    by_value = {key: pieces.done(key) if pieces is not None else None for key in keys}
    for kept_before in filter(None, by_value.values()):
        curve_sums.update(kept_before["summary"].get("curves", {}))
    left = [setting for setting, key in zip(settings, keys) if by_value[key] is None]
    results = explainer.maps_for_settings(images, targets, left) if left else iter(())
    for result in results:
        value = result.setting.get(cfg.param.name, NOT_A_KNOB)
        to_score = MapsToScore(model, images, result.maps, targets, cfg, int(cfg.seed) + int(batch["index"][0]),
                               ids=list(batch["image_id"]), explainer=explainer, method=explainer.name)
        per_image, curve_sums[str(value)] = metrics.score(to_score)
        name = explainer.name if value == NOT_A_KNOB else f"{explainer.name}_{cfg.param.name}={value}"
        kept.keep(name, batch["image_id"], result.maps)
        for part, values in (result.parts or {}).items():  # CCE's M_sup and M_pro at this setting
            kept.keep(f"{name}_{part}", batch["image_id"], postprocess(values, images.shape[-2:]))
        knobs = {**explainer.knobs(), **result.setting}
        valid = [float(v) for v in result.valid] if result.valid is not None else [None] * len(images)
        mine = batch_records(batch, model, targets, explainer.name,
                             {"label": [int(v) for v in batch["label"]], **per_image, "valid": valid}, target_prob,
                             param=cfg.param.name, value=value,
                             **{k: knobs[k] for k in explainer.recorded_knobs if k in knobs},
                             seconds=result.seconds / len(images))
        if pieces is not None:
            pieces.keep(str(value), mine, {"curves": {str(value): curve_sums[str(value)]}})
        by_value[str(value)] = {"records": mine}
    # in the settings' order, as an uninterrupted run writes them
    return [r for entry in by_value.values() if entry for r in entry["records"]], {"curves": curve_sums}


def sweep_metrics(cfg: DictConfig) -> RunMetrics:
    """Tables 1-4 are insertion/deletion; on part scenes (data=parts) the ground-truth scores that need no second
    map of the method are scored too (part deletion, distractibility)."""
    scenes = OmegaConf.select(cfg, "data.name") == "parts"
    return RunMetrics(["insertion_deletion"] + (["part_deletion", "distractibility"] if scenes else []), cfg)


def with_further_columns(table: pd.DataFrame, records: pd.DataFrame, metrics: RunMetrics, values: list
                         ) -> pd.DataFrame:
    """The sweep table with each further metric's columns (mean and SE per swept value) before `valid %`."""
    by_value = records.assign(method=records["value"])
    for metric in metrics:
        if metric.name == "insertion_deletion":
            continue
        for column, per_value in metric.columns(by_value, values).items():
            table.insert(list(table.columns).index("valid %"), column, per_value)
    return table


def examples(records: pd.DataFrame, cfg) -> Examples:
    """The records at the method's own setting with their Diff as `score` (for `report`'s examples)."""
    values = records["value"].astype(str).unique().tolist()
    default = str(cfg.method_knobs[cfg.method].get(cfg.param.name, values[0]))
    value = default if default in values else values[0]
    chosen = records[records["value"].astype(str) == value].assign(score=lambda r: 100 * (r["ins_auc"] - r["del_auc"]))
    setting = {cfg.param.name: chosen["value"].iloc[0]} if value != NOT_A_KNOB else {}
    return Examples(chosen, "Diff (100 x AUC)", setting)


def prepare(session: Session) -> Job:
    cfg = session.cfg
    model = build_model(cfg)
    (name,) = chosen_methods(cfg)
    explainer = build_explainer(cfg, model, name)
    settings = sweep_settings(cfg, explainer)
    dataset = build_dataset(cfg, model)
    metrics = sweep_metrics(cfg)

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        paper = read_paper_table(cfg.param.paper) if cfg.param.get("paper") and paper_applies(cfg) else None
        table = sweep_table(records, cfg.param.name, sweep_values(cfg, explainer), paper,
                            with_time=bool(cfg.param.get("with_time", False)), paper_columns=paper_applies(cfg))
        table = with_further_columns(table, records, metrics, sweep_values(cfg, explainer))
        protocol = cfg.metric_knobs.insertion_deletion
        header = (
            f"{explainer.label} on {model_description(cfg)}, {records['image_id'].nunique()} images of {dataset.name} "
            f"({len(skipped)} skipped); insertion/deletion with step {protocol.step}, blur "
            f"{protocol.blur_size}/sigma {protocol.blur_sigma}; scores are 100 x mean AUC; "
            + (f"(paper): the published table ({cfg.param.get('paper')}: VGG-19 on 1000 random ImageNet "
               "images), set beside this run's model and images, not measured on them; " if paper is not None else "")
            + "".join(f"{metric.caption()}; " for metric in metrics if metric.name != "insertion_deletion")
            + "SE = standard error over the images. " + sweep_noise_caption(records, cfg.param.name)
        )
        text = write_curve_tables(run, table, header)
        extra = {"param": cfg.param.name, "images": int(records["image_id"].nunique()), "records": len(records),
                 "caption": header}
        return extra, text

    sweep_stage = {**method_stage(explainer), "settings": settings}
    run_shape = {"sweep": sweep_stage, "side": int(cfg.data.crop)}  # what a library metric's passes depend on

    def plan_parts(counts):
        def maps_of(probe, targets):
            return list(explainer.maps_for_settings(probe, targets, settings))

        return {explainer.label: counts.of(explainer.label, sweep_stage, maps_of),
                **scoring_part(metrics.passes(int(cfg.data.crop)) * len(settings)),
                **metrics.counted_before(counts, run_shape)}

    return Job(dataset, lambda batch: score_batch(model, batch, explainer, settings, metrics, session.maps, cfg),
               write_tables, desc=f"sweep {cfg.param.name} ({len(settings)} values)", unit="img", model=model,
               explainers=[explainer], plan_parts=plan_parts, unplanned=metrics.unplanned(),
               counted_passes=lambda images: metrics.counted_now(images, run_shape))


COMMAND = ScoringCommand("sweep", prepare, examples=examples, beside_paper=beside_paper)

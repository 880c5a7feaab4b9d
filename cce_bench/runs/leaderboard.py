"""The leaderboard of a set of methods on a batch of images: each method's maps scored by every metric of the run
(a method that fails is its rows' error, not the run's), then one row per method ranked by a metric, with each
metric's columns and standard errors, the paired difference to a reference method, the paper's numbers where they
apply, and a caption on what the sample can tell apart. `cce-bench compare` and the Python `cce_bench.compare` both
build their tables here."""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import UserError, debugging, describe_error, is_allocation_failure
from ..explainers import postprocess
from ..metrics import MapsToScore, Metric
from ..tables import column_position, noise_caption, paired_differences, paper_applies, read_paper_table
from .map_store import MapStore
from .runtime import method_label
from .scoring import ClassesPerNetwork, RunMetrics, batch_records, explained_network
from .timing import timed


@dataclass(frozen=True)
class Leaderboard:
    table: pd.DataFrame      # one row per method, ranked
    verdict: str             # the caption's sentences on what these images can tell apart
    records: pd.DataFrame    # the per-(image, method) records scored (those of failed maps left out)
    notes: str               # a line per method that could not run, or failed on some images


def leaderboard_of(records: pd.DataFrame, names: list[str], unavailable: dict, cfg: DictConfig, metrics: RunMetrics,
                   ranked_by: Metric) -> Leaderboard:
    """The table of the records: a method that failed on every image is unavailable ("failed"), one that failed
    on some is scored on the others, and the notes say which; nothing scored at all is one line."""
    from ..explainers import MethodUnavailable

    failed = failures(records)
    scored = records[records["error"].isna()].drop(columns="error") if "error" in records else records
    if scored.empty:
        raise UserError("every method failed on every image: " + "; ".join(
            f"{method_label(cfg, n)}: {reason}" for n, (_, reason) in failed.items()))
    everywhere = {n: MethodUnavailable(f"failed on every image: {reason}", short="failed")
                  for n, (_, reason) in failed.items() if n not in set(scored["method"])}
    repeats = scored if "seed" in scored and scored["seed"].nunique() > 1 else None
    if repeats is not None:  # seeds=[...]: each image's mean over the seeds is the image's score
        scored = mean_over_seeds(repeats)
    table, verdict = leaderboard(scored, names, {**unavailable, **everywhere}, cfg, metrics, ranked_by)
    if repeats is not None:
        verdict += add_seed_spread(table, repeats, {method_label(cfg, n): n for n in names}, ranked_by)
    notes = "".join(f"\n- {method_label(cfg, n)}: {exc}" for n, exc in {**unavailable, **everywhere}.items())
    notes += "".join(f"\n- {method_label(cfg, n)}: failed on {count} image(s), scored on the others: {reason}"
                     for n, (count, reason) in failed.items() if n not in everywhere)
    return Leaderboard(table, verdict, scored, notes)


def mean_over_seeds(records: pd.DataFrame) -> pd.DataFrame:
    """One record per (method, image): the mean of each score over the seeds it was repeated with."""
    numeric = [c for c in records.columns if pd.api.types.is_numeric_dtype(records[c]) and c not in ("index", "target")]
    rules = {c: ("mean" if c in numeric else "first") for c in records.columns if c not in ("method", "image_id")}
    return records.groupby(["method", "image_id"], sort=False, as_index=False).agg(rules).drop(columns="seed")


def add_seed_spread(table: pd.DataFrame, repeats: pd.DataFrame, names: dict[str, str], ranked_by: Metric) -> str:
    """`COLUMN seed SD` beside the ranking score's SE: the standard deviation over the seeds of the method's mean
    score (each seed's mean over the images); and the caption's sentence saying what it is."""
    ranking = ranked_by.ranking()
    assert ranking is not None  # ranking_metric picks a metric with one
    values = repeats.assign(rank_score=ranked_by.rank_values(repeats))
    per_seed = values.groupby(["method", "seed"])["rank_score"].mean() * ranking.scale
    spread = per_seed.groupby(level="method").std(ddof=1)
    after = ranking.se_column if ranking.se_column is not None and ranking.se_column in table else ranking.column
    table.insert(column_position(table, after) + 1, f"{ranking.column} seed SD",
                 [seed_sd(spread, names.get(label)) for label in table["method"]])
    seeds = sorted(int(s) for s in repeats["seed"].unique())
    return (f" Each method ran once per seed {seeds}: every score is each image's mean over the seeds, its SE over "
            f"the images; {ranking.column} seed SD = the standard deviation over the seeds of the method's mean.")


def seed_sd(spread: pd.Series, name: str | None) -> float | None:
    if name is None or name not in spread or pd.isna(spread[name]):
        return None
    return round(float(spread[name]), 2)


def score_batch(model, batch: dict, explainers: dict, metrics: RunMetrics, kept: MapStore, cfg
                ) -> tuple[list[dict], dict]:
    device = torch.device(cfg.device)
    images = batch["image"].to(device)
    allowed, masks = batch.get("allowed"), batch.get("mask")
    classes = ClassesPerNetwork(images, allowed, int(cfg.batch_size))
    records: list[dict] = []
    curves: dict[str, dict | None] = {}
    seeds: list[int | None] = [int(s) for s in cfg.get("seeds") or []] or [None]  # compare's: once per seed
    pieces = batch.get("pieces")  # a method finished before an interruption inside this batch is not done again
    for name, explainer in explainers.items():
        kept_before = pieces.done(name) if pieces is not None else None
        if kept_before is not None:
            records += kept_before["records"]
            curves[name] = kept_before["summary"].get("curves")
            continue
        network = explained_network(explainer, model)
        targets, target_prob = classes(network)  # a model with broken weights stops the run here
        first = len(records)
        for seed in seeds:
            try:
                per_image, sums, seconds = method_scores(model, seeded(explainer, seed), network, images, targets,
                                                         masks, classes, metrics, kept if seed == seeds[0] else None,
                                                         cfg, batch, seed)
            except Exception as exc:  # noqa: BLE001 - one method's failure is its row's, not the run's
                if is_allocation_failure(exc) or debugging():
                    raise  # memory: the batch is retried with fewer inputs per pass; --debug: the traceback
                records += failed_records(batch, name, exc)
                break
            curves[name] = added_sums(curves.get(name), sums)
            repeat = {} if seed is None else {"seed": seed}
            records += batch_records(batch, model, targets, name, per_image, target_prob,
                                     seconds=seconds / len(images), **repeat)
        if pieces is not None:
            pieces.keep(name, records[first:], {"curves": curves.get(name)})
    return records, {"curves": {name: sums for name, sums in curves.items() if sums}}


# explainer -> (seed, inputs per pass) -> its copy with that seed, made once per run rather than per batch (RISE
# draws its masks once per instance); a halved batch_size after running out of memory makes a new copy
SEEDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def seeded(explainer, seed: int | None):
    """The method drawing its random numbers from `seed` where it has a seed of its own (RISE's masks)."""
    if seed is None or "seed" not in explainer.knob_names():
        return explainer
    copies = SEEDED.setdefault(explainer, {})
    key = (seed, explainer.batch_size, getattr(explainer, "internal_batch_size", None))  # what memory.py halves
    if key not in copies:
        copies[key] = explainer.with_knobs(seed=seed)
    return copies[key]


def added_sums(total: dict | None, sums: dict | None) -> dict | None:
    """Curve sums of one more repeat added to those so far (the mean curve is over every image and seed)."""
    if not total or not sums:
        return sums or total
    return {"n": total["n"] + sums["n"], **{k: (np.add(total[k], sums[k])).tolist()
                                            for k in ("insertion", "deletion") if k in total}}


def method_scores(model, explainer, network, images, targets, masks, classes, metrics: RunMetrics,
                  kept: MapStore | None, cfg, batch, seed: int | None = None):
    """One method's maps of the batch and every metric's scores of them: (per-image scores, sums, seconds).
    With a repeat's `seed`, every random draw of the method and metrics comes from it (and the maps are kept
    only for the first repeat: `kept` None)."""
    first = int(batch["index"][0])
    if seed is not None:
        torch.manual_seed(seed + first)
        np.random.seed((seed + first) % 2**32)
    seconds, raw = timed(lambda: explainer.raw_attribute(images, targets), images.device)
    maps = postprocess(raw, images.shape[-2:])
    if kept is not None:
        kept.keep(explainer.name, batch["image_id"], maps, explainer)
    # seeded by the run's seed (or the repeat's) and the batch's first image: two runs agree record for record
    to_score = MapsToScore(model, images, maps, targets, cfg, (int(cfg.seed) if seed is None else seed) + first,
                           ids=list(batch["image_id"]), masks=None if masks is None else masks.to(images.device),
                           explainer=explainer, network=network, raw=raw, logits=classes.logits, method=explainer.name)
    per_image, sums = metrics.score(to_score)
    return per_image, sums, seconds


def failed_records(batch: dict, name: str, exc: BaseException) -> list[dict]:
    """A record per image of the batch saying why the method failed on it (no scores)."""
    reason, _ = describe_error(exc)
    return [{"index": index, "image_id": image_id, "method": name, "error": reason}
            for index, image_id in zip(batch["index"], batch["image_id"])]


def failures(records: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """Per method that failed on some image: (images failed, the first reason)."""
    if "error" not in records:
        return {}
    failed = records[records["error"].notna()]
    return {
        str(name): (int(group["image_id"].nunique()), str(group["error"].iloc[0]))
        for name, group in failed.groupby("method")
    }


def ranking_metric(cfg: DictConfig, metrics: RunMetrics, has_boxes: bool) -> Metric:
    """The metric the leaderboard is ranked by (`compare.rank_by`): `auto` takes Table 5's pointing game where the
    run scores it, else insertion/deletion, else the first metric with a ranking."""
    chosen = str((cfg.get("compare") or {}).get("rank_by", "auto"))
    ranked = [metric for metric in metrics if metric.ranking() is not None]
    if chosen != "auto":
        match = [metric for metric in ranked if metric.name == chosen]
        if not match:
            choices = ", ".join(m.name for m in ranked) or "none"
            raise UserError(f"compare.rank_by={chosen} is not among this run's metrics with a score to rank by "
                            f"({choices}): pass one of them or compare.rank_by=auto")
        return match[0]
    for preferred in ("pointing_game", "insertion_deletion"):
        match = [metric for metric in ranked if metric.name == preferred]
        if match:
            return match[0]
    if not ranked:
        raise UserError(f"no metric of metrics=[{', '.join(metrics.names)}] has a score to rank methods by: add "
                        "insertion_deletion or pointing_game")
    return ranked[0]


def published_insertion_deletion(spec: DictConfig, cfg: DictConfig) -> tuple[dict, dict]:
    """The paper's Ins and Del of the method that `paper.insertion_deletion` names (config), from its row at
    this run's value of its knob (none where the paper has no row for that value)."""
    rows = read_paper_table(spec.table)
    row = rows[rows[spec.knob].astype(float) == float(cfg.method_knobs[spec.method][spec.knob])]
    ins, dele = ({spec.method: float(row[column].iloc[0]) if len(row) else None} for column in ("ins", "del"))
    return ins, dele


def leaderboard(records: pd.DataFrame, names: list[str], unavailable: dict, cfg: DictConfig, metrics: RunMetrics,
                ranked_by: Metric) -> tuple[pd.DataFrame, str]:
    """One row per method, ranked by `ranked_by`: each metric's columns (with their standard errors), each
    method's difference to the reference method paired over the same images, the paper's numbers, the median
    probability of the explained classes and seconds per image; and the caption sentences on what this sample
    can tell apart."""
    ranking = ranked_by.ranking()
    assert ranking is not None  # ranking_metric picks a metric with one
    values = ranked_by.rank_values(records) if len(records) else None
    scored = records.assign(rank_score=values if values is not None else None)
    means = scored.groupby("method")["rank_score"].mean().dropna() if len(scored) else pd.Series(dtype=float)
    sign = -1.0 if ranking.higher_is_better else 1.0
    names = sorted(names, key=lambda n: (n in unavailable or n not in means, sign * float(means.get(n, 0.0))))
    table = metrics.table(records, names, [method_label(cfg, n) for n in names], add_run_columns)
    table.insert(0, "rank", pd.Series([k + 1 if n not in unavailable and n in means else None
                                       for k, n in enumerate(names)], dtype=object))
    add_paper_columns(table, names, cfg)
    reference = reference_method(cfg, names, unavailable, means)
    differences = paired_differences(scored, "method", "rank_score", reference, ranking.scale) if reference else {}
    after = ranking.se_column if ranking.se_column is not None and ranking.se_column in table else ranking.column
    table.insert(column_position(table, after) + 1, "paired diff",
                 [differences[n].mean if n in differences else None for n in names])
    table.insert(column_position(table, "paired diff") + 1, "paired diff SE",
                 [differences[n].se if n in differences else None for n in names])
    table = table.astype(object)  # an unavailable method shows why in its row
    for name in unavailable:
        row = names.index(name)
        for key in table.columns[2:]:
            if key not in PAPER_COLUMNS:
                table.loc[row, key] = unavailable[name].short if key == table.columns[2] else None
    caption = ""
    if reference:
        label = method_label(cfg, reference)
        by_label = {method_label(cfg, n): d for n, d in differences.items()}
        caption = (f"Ranked by {ranking.column}; paired diff = the method's {ranking.column} minus {label}'s on the "
                   f"same images, with its SE. " + noise_caption(label, by_label))
    return table, caption + barely_believed(records, cfg)


def add_run_columns(table: pd.DataFrame, records: pd.DataFrame, names: list[str]) -> None:
    """The median probability of the explained classes and the seconds per map, per method."""
    if "target_prob" in records:
        probability = records.groupby("method")["target_prob"].median()
        table["p (median)"] = [float(f"{probability[n]:.3g}") if n in probability else None for n in names]
    seconds = records.groupby("method")["seconds"].mean() if len(records) else pd.Series(dtype=float)
    table["s/img"] = [round(float(seconds[n]), 3) if n in seconds else None for n in names]


PAPER_COLUMNS = ("Ins (paper)", "Del (paper)", "Proportion (paper)")


def add_paper_columns(table: pd.DataFrame, names: list[str], cfg: DictConfig) -> None:
    """The paper's numbers beside the measured ones where the run has them: the insertion/deletion of the
    method `paper.insertion_deletion` names, Table 5's proportions; none on the part scenes, which the paper
    never saw."""
    if not paper_applies(cfg):
        return
    if "Diff SE" in table:  # a column only where the paper has a number for one of the run's methods
        paper_ins, paper_del = published_insertion_deletion(cfg.paper.insertion_deletion, cfg)
        if any(n in paper_ins for n in names):
            table.insert(column_position(table, "Diff SE") + 1, "Ins (paper)", [paper_ins.get(n) for n in names])
            table.insert(column_position(table, "Ins (paper)") + 1, "Del (paper)", [paper_del.get(n) for n in names])
    if "Proportion SE" in table:
        published = read_paper_table(cfg.paper.pointing_game)
        proportions = dict(zip(published["name"], published["proportion"]))
        if any(n in proportions for n in names):
            table.insert(column_position(table, "Proportion SE") + 1, "Proportion (paper)",
                         [proportions.get(n) for n in names])


def chosen_reference(cfg: DictConfig) -> str:
    """`compare.reference`: a method's name, or `best`."""
    return str((cfg.get("compare") or {}).get("reference", "best"))


def reference_method(cfg: DictConfig, names: list[str], unavailable: dict, means: pd.Series) -> str | None:
    """The method the paired differences are taken to: the chosen one, or for `best` the top-ranked method
    that ran."""
    chosen = chosen_reference(cfg)
    if chosen != "best":
        return chosen if chosen in means else None
    return next((n for n in names if n not in unavailable and n in means), None)


def check_reference(cfg: DictConfig, names: list[str]) -> None:
    chosen = chosen_reference(cfg)
    if chosen != "best" and chosen not in names:
        raise UserError(f"compare.reference={chosen} is not among the methods compared ({', '.join(names)}): pass "
                        "one of them or compare.reference=best")


# Below this probability of the explained class, insertion has nothing to restore and deletion nothing to
# remove: the curves lie flat near zero whatever the map (Ins - Del of COCO categories mapped to ImageNet
# classes the model does not see in the photo: a median p of 3.1e-4 in compare runs on photos_coco with
# Lite0). The threshold itself is a choice, not a measurement.
BARELY_BELIEVED = 0.05


def barely_believed(records: pd.DataFrame, cfg: DictConfig | None = None) -> str:
    """A warning sentence when the median explained probability is below BARELY_BELIEVED ('' otherwise), with
    advice that fits the run: its model, its data, its scores."""
    if "target_prob" not in records or not len(records):
        return ""
    median = float(records["target_prob"].median())
    if median >= BARELY_BELIEVED:
        return ""
    flat = (f" Warning: the explained classes have median probability {median:.2g} (below {BARELY_BELIEVED}): "
            "insertion/deletion of a class the model barely believes stays near zero whatever the map, so Ins, "
            "Del and Diff here do not rank the methods")
    if cfg is not None and OmegaConf.select(cfg, "model.random_init"):
        return flat + "; the model has random weights (model.random_init=true), which believe no class."
    data = OmegaConf.select(cfg, "data.name") if cfg is not None else None
    pointing = " and read the pointing game from this run" if "proportion" in records else ""
    if data in ("photos", "imagenet"):  # the data the advice would name
        return flat + ("; read the pointing game from this run." if pointing else ".")
    return flat + f"; score them on the model's own answers (data=photos, data=imagenet){pointing}."

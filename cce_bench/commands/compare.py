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
import torch
from omegaconf import DictConfig

from ..explainers import EXPLAINERS, MethodUnavailable, postprocess
from ..figures import plot_leaderboard, plot_sweep
from ..metrics.class_sensitivity import class_deviation, other_classes
from ..metrics.quantus_metrics import is_quantus
from ..metrics.sanity import map_similarities
from ..runs.cost import method_parts, scoring_part
from ..runs.engine import Examples, Job, ScoringCommand, Session, example_method
from ..runs.map_store import keep_maps
from ..runs.run_folder import RunFolder, machine_info
from ..runs.runtime import build_dataset, build_explainers, build_model, method_names, model_description, none_can_run
from ..runs.scoring import (
    ClassesPerNetwork,
    Randomisers,
    batch_records,
    explained_network,
    library_metric_scores,
    mean_curves,
    protocol_scores,
)
from ..runs.timing import timed
from ..errors import UserError, debugging, describe_error, is_allocation_failure
from ..tables import (add_metric_columns, beside_paper, column_position, method_table, noise_caption,
                      paired_differences, read_paper_table, standard_error, Table)


def score_batch(model, batch: dict, explainers: dict, randomisers: Randomisers | None, cfg) -> tuple[list[dict], dict]:
    device = torch.device(cfg.device)
    images = batch["image"].to(device)
    allowed, masks = batch.get("allowed"), batch.get("mask")
    classes = ClassesPerNetwork(images, allowed, int(cfg.batch_size))
    records, curves = [], {}
    for name, explainer in explainers.items():
        network = explained_network(explainer, model)
        targets, target_prob = classes(network)  # a model with broken weights stops the run here
        try:
            per_image, curves[name], seconds = method_scores(model, explainer, network, images, targets, masks, classes,
                                                             randomisers, cfg, batch)
        except Exception as exc:  # noqa: BLE001 - one method's failure is its row's, not the run's
            if is_allocation_failure(exc) or debugging():
                raise  # memory: the batch is retried with fewer inputs per pass; --debug: the traceback
            records += failed_records(batch, name, exc)
            continue
        records += batch_records(batch, model, targets, name, per_image, target_prob, seconds=seconds / len(images))
    return records, {"curves": curves}


def method_scores(model, explainer, network, images, targets, masks, classes, randomisers, cfg, batch):
    """One method's maps of the batch and every score of them: (per-image scores, curve sums, seconds)."""
    size, ids = images.shape[-2:], batch["id"]
    seconds, raw = timed(lambda: explainer.raw_attribute(images, targets), images.device)
    maps = postprocess(raw, size)
    keep_maps(explainer.name, ids, maps, explainer)
    per_image, curves = protocol_scores(model, images, maps, targets, cfg, masks)
    # seeded by the run's seed and the batch's first image: two runs agree record for record
    per_image.update(library_metric_scores(network, explainer, images, targets, maps, masks, cfg,
                                           int(cfg.seed) + int(batch["index"][0])))
    sensitivity = cfg.get("class_sensitivity") or {}
    if sensitivity.get("enabled", False):
        others = other_classes(classes.logits(network), targets, str(sensitivity.other), int(cfg.seed), ids)
        other_maps = postprocess(explainer.raw_attribute(images, others), size)
        per_image["class_deviation"] = class_deviation(maps, other_maps, str(sensitivity.similarity)).tolist()
        per_image["other_class"] = others.tolist()
    if randomisers is not None:
        randomiser = randomisers.of(network)
        with randomiser.randomised(randomiser.blocks):
            raw_random = explainer.raw_attribute(images, targets)
        similarity = map_similarities(raw, maps, raw_random, postprocess(raw_random, size))
        per_image["sanity_spearman_abs"] = [s["spearman_abs"] for s in similarity]
    return per_image, curves, seconds


def failed_records(batch: dict, name: str, exc: BaseException) -> list[dict]:
    """A record per image of the batch saying why the method failed on it (no scores)."""
    reason, _ = describe_error(exc)
    return [{"index": index, "image_id": image_id, "method": name, "error": reason}
            for index, image_id in zip(batch["index"], batch["id"])]


def failures(records: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """Per method that failed on some image: (images failed, the first reason)."""
    if "error" not in records:
        return {}
    failed = records[records["error"].notna()]
    return {
        str(name): (int(group["image_id"].nunique()), str(group["error"].iloc[0]))
        for name, group in failed.groupby("method")
    }


def main_score(has_boxes: bool) -> tuple[str, str]:
    """(table column, per-image record) the leaderboard is ranked by: Table 5's proportion where the data
    has boxes, else insertion - deletion."""
    return ("Proportion (%)", "proportion") if has_boxes else ("Diff", "diff")


def published_insertion_deletion(spec: DictConfig, cfg: DictConfig) -> tuple[dict, dict]:
    """The paper's Ins and Del of the method that `paper.insertion_deletion` names (config), from its row at
    this run's value of its knob (none where the paper has no row for that value)."""
    rows = read_paper_table(spec.table)
    row = rows[rows[spec.knob].astype(float) == float(cfg.method_knobs[spec.method][spec.knob])]
    ins, dele = ({spec.method: float(row[column].iloc[0]) if len(row) else None} for column in ("ins", "del"))
    return ins, dele


def leaderboard(records: pd.DataFrame, names: list[str], unavailable: dict, cfg: DictConfig, has_boxes: bool
                ) -> tuple[pd.DataFrame, str]:
    """One row per method, ranked by the main score: the method table with its standard errors, each
    method's difference to the reference method paired over the same images, the paper's numbers, the
    median probability of the explained classes, seconds per image and the sanity check; and the caption
    sentences on what this sample can tell apart."""
    column, score = main_score(has_boxes)
    scored = records.assign(diff=records["ins_auc"] - records["del_auc"]) if len(records) else records.assign(diff=None)
    means = scored.groupby("method")[score].mean() if len(scored) and score in scored else pd.Series(dtype=float)
    names = sorted(names, key=lambda n: (n in unavailable or n not in means, -float(means.get(n, 0.0))))
    labels = [EXPLAINERS.get(n).label for n in names]
    table = method_table(records, names, labels)
    if has_boxes and "Proportion (%)" not in table:
        table["Proportion (%)"], table["Proportion SE"] = None, None
    table.insert(0, "rank", pd.Series([k + 1 if n not in unavailable and n in means else None
                                       for k, n in enumerate(names)], dtype=object))
    published = read_paper_table(cfg.paper.pointing_game)
    paper_ins, paper_del = published_insertion_deletion(cfg.paper.insertion_deletion, cfg)
    table.insert(column_position(table, "Diff SE") + 1, "Ins (paper)", [paper_ins.get(n) for n in names])
    table.insert(column_position(table, "Ins (paper)") + 1, "Del (paper)", [paper_del.get(n) for n in names])
    if has_boxes:
        proportions = dict(zip(published["name"], published["proportion"]))
        table.insert(
            column_position(table, "Proportion SE") + 1, "Proportion (paper)", [proportions.get(n) for n in names]
        )
    reference = reference_method(cfg, names, unavailable, means)
    differences = paired_differences(scored, "method", score, reference) if reference else {}
    table.insert(column_position(table, f"{column.split(' (')[0]} SE") + 1, "paired diff",
                 [differences[n].mean if n in differences else None for n in names])
    table.insert(column_position(table, "paired diff") + 1, "paired diff SE",
                 [differences[n].se if n in differences else None for n in names])
    if "class_deviation" in records:
        deviation = records.groupby("method")["class_deviation"].mean()
        table["Class dev"] = [round(float(deviation[n]), 3) if n in deviation else None for n in names]
        table["Class dev SE"] = [standard_error(records.loc[records["method"] == n, "class_deviation"], 1, 3)
                                 for n in names]
    if "target_prob" in records:
        probability = records.groupby("method")["target_prob"].median()
        table["p (median)"] = [float(f"{probability[n]:.3g}") if n in probability else None for n in names]
    seconds = records.groupby("method")["seconds"].mean() if len(records) else pd.Series(dtype=float)
    table["s/img"] = [round(float(seconds[n]), 3) if n in seconds else None for n in names]
    for name in [str(n) for n in cfg.get("metrics") or [] if is_quantus(str(n))]:
        add_metric_columns(table, records, names, name)
    if "sanity_spearman_abs" in records:
        rho = records.groupby("method")["sanity_spearman_abs"].mean()
        fail_above = float(cfg.sanity.fail_above)
        table["sanity ρ"] = [round(float(rho[n]), 3) if n in rho else None for n in names]
        table["sanity"] = [None if n not in rho else ("FAILS" if rho[n] > fail_above else "passes") for n in names]
    table = table.astype(object)  # an unavailable method shows why in its row
    for name in unavailable:
        row = names.index(name)
        for key in table.columns[2:]:
            if key not in ("Ins (paper)", "Del (paper)", "Proportion (paper)"):
                table.loc[row, key] = unavailable[name].short if key == "Ins" else None
    caption = ""
    if reference:
        label = EXPLAINERS.get(reference).label
        caption = (
            f"Ranked by {column}; paired diff = the method's {column} minus {label}'s on the same images, "
            f"with its SE. " + noise_caption(label, {EXPLAINERS.get(n).label: d for n, d in differences.items()})
        )
    return table, caption + barely_believed(records)


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


def barely_believed(records: pd.DataFrame) -> str:
    """A warning sentence when the median explained probability is below BARELY_BELIEVED ('' otherwise)."""
    if "target_prob" not in records or not len(records):
        return ""
    median = float(records["target_prob"].median())
    if median >= BARELY_BELIEVED:
        return ""
    return (f" Warning: the explained classes have median probability {median:.2g} (below {BARELY_BELIEVED}): "
            "insertion/deletion of a class the model barely believes stays near zero whatever the map, so Ins, "
            "Del and Diff here do not rank the methods; score them on the model's own answers (data=photos, "
            "data=imagenet) and read the pointing game from this run.")


def examples(records: pd.DataFrame, cfg) -> Examples:
    """The example method's records (engine.example_method) with their insertion - deletion as `score`."""
    method = example_method(records)
    chosen = records[records["method"] == method].assign(score=lambda r: 100 * (r["ins_auc"] - r["del_auc"]))
    chosen = chosen.dropna(subset=["score"])  # images the method failed on have no score
    return Examples(chosen, f"{EXPLAINERS.get(method).label} Ins - Del (100 x AUC)", {"method": method})


def prepare(session: Session) -> Job:
    cfg, device = session.cfg, session.device
    names = method_names(cfg)
    check_reference(cfg, names)
    model = build_model(cfg)
    explainers, unavailable = build_explainers(cfg, model)
    if not explainers:
        raise none_can_run(unavailable)
    dataset = build_dataset(cfg, model)
    randomisers = Randomisers(int(cfg.seed)) if bool(cfg.sanity.get("enabled", True)) else None

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        failed = failures(records)
        scored = records[records["error"].isna()].drop(columns="error") if "error" in records else records
        if scored.empty:
            raise UserError("every method failed on every image: " + "; ".join(
                f"{EXPLAINERS.get(n).label}: {reason}" for n, (_, reason) in failed.items()))
        everywhere = {n: MethodUnavailable(f"failed on every image: {reason}", short="failed")
                      for n, (_, reason) in failed.items() if n not in set(scored["method"])}
        records = scored
        table, verdict = leaderboard(records, names, {**unavailable, **everywhere}, cfg, dataset.has_boxes)
        published = cfg.paper.insertion_deletion
        if barely_believed(records):
            print(barely_believed(records).strip(), file=sys.stderr)
        header = (
            f"Every method on the same {records['image_id'].nunique()} images of {dataset.name} ({len(skipped)} "
            f"skipped), {model_description(cfg)} on {machine_info(device)['device_name']}: Ins/Del = 100 x mean "
            "insertion/"
            f"deletion AUC (step {cfg.metric.step}), Diff = Ins - Del, SE = standard error over the images"
            + ("; Proportion = energy-based pointing game (%)" if dataset.has_boxes else "")
            + (
                f"; Class dev = class deviation, 1 - {cfg.class_sensitivity.similarity} of the maps for the explained "
                f"class and the {cfg.class_sensitivity.other} class (0: the same map whatever the class)"
                if cfg.get("class_sensitivity", {}).get("enabled", False)
                else ""
            )
            + "; p (median) = the model's median probability of the explained class; s/img = seconds per map; sanity "
              "ρ = Spearman (abs) of each map to the map of the same model with "
            f"every block re-initialised (FAILS above {cfg.sanity.fail_above}). (paper): Table 5's proportions "
            f"(COCO, Score-CAM's protocol) and {EXPLAINERS.get(published.method).label}'s insertion/deletion of "
            f"{published.name} at its {published.knob} (1000 ImageNet images, VGG-19): set beside, not the same data "
            "unless the run's is. " + verdict
        )
        notes = "".join(f"\n- {EXPLAINERS.get(n).label}: {exc}" for n, exc in {**unavailable, **everywhere}.items())
        notes += "".join(f"\n- {EXPLAINERS.get(n).label}: failed on {count} image(s), scored on the others: {reason}"
                         for n, (count, reason) in failed.items() if n not in everywhere)
        text = Table(table, header, notes).write(run)
        run.write_json("curves.json", {EXPLAINERS.get(k).label: v for k, v in mean_curves(run).items()})
        plot_sweep(run.path)
        plot_leaderboard(run.path)
        return ({"images": int(records["image_id"].nunique()), "records": len(records), "caption": header},
                text)

    def plan_parts(probe):
        maps_each = 1 + bool(cfg.get("class_sensitivity", {}).get("enabled", False)) + (randomisers is not None)
        return {**method_parts(model, explainers, probe, maps_each),
                **scoring_part(int(cfg.data.crop), int(cfg.metric.step), len(explainers))}

    return Job(dataset, lambda batch: score_batch(model, batch, explainers, randomisers, cfg), write_tables,
               desc=f"compare ({len(explainers)} methods)", unit="img", model=model,
               explainers=list(explainers.values()), plan_parts=plan_parts)


COMMAND = ScoringCommand("compare", prepare, examples=examples, beside_paper=beside_paper)

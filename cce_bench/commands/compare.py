"""`cce-bench compare`: one leaderboard, every method on the same images and classes.

config -> data + model -> each explainer -> timed maps -> insertion/deletion, the pointing game where the
data has boxes, and the sanity check (the maps again with every block of the network re-initialised,
Spearman of magnitudes against the trained model's) -> per-(image, method) records -> one row per method
beside the paper's numbers where it has them (Table 5's proportions; CCE's insertion/deletion of
Table 1 at its alpha).
"""
from __future__ import annotations

import pandas as pd
import torch
from omegaconf import DictConfig

from ..explainers import EXPLAINERS, postprocess
from ..figures import plot_leaderboard, plot_sweep
from ..metrics.class_sensitivity import class_deviation, other_classes
from ..metrics.sanity import map_similarities
from ..runs.engine import Examples, Job, ScoringCommand, Session
from ..runs.run_folder import RunFolder, machine_info
from ..runs.runtime import build_dataset, build_explainers, build_model, method_names, model_description, none_can_run
from ..runs.scoring import ClassesPerNetwork, Randomisers, batch_records, explained_network, mean_curves, protocol_scores
from ..runs.timing import timed
from ..tables import method_table, read_paper_table, to_markdown


def score_batch(model, batch: dict, explainers: dict, randomisers: Randomisers | None, cfg) -> tuple[list[dict], dict]:
    device = torch.device(cfg.device)
    images = batch["image"].to(device)
    allowed, masks = batch.get("allowed"), batch.get("mask")
    size = images.shape[-2:]
    classes = ClassesPerNetwork(images, allowed, int(cfg.batch_size))
    records, curves = [], {}
    for name, explainer in explainers.items():
        network = explained_network(explainer, model)
        targets, target_prob = classes(network)
        seconds, raw = timed(lambda: explainer.raw_attribute(images, targets), device)
        maps = postprocess(raw, size)
        per_image, curves[name] = protocol_scores(model, images, maps, targets, cfg, masks)
        sensitivity = cfg.get("class_sensitivity") or {}
        if sensitivity.get("enabled", False):
            others = other_classes(classes.logits(network), targets, str(sensitivity.other), int(cfg.seed), batch["id"])
            other_maps = postprocess(explainer.raw_attribute(images, others), size)
            per_image["class_deviation"] = class_deviation(maps, other_maps, str(sensitivity.similarity)).tolist()
            per_image["other_class"] = others.tolist()
        if randomisers is not None:
            randomiser = randomisers.of(network)
            with randomiser.randomised(randomiser.blocks):
                raw_random = explainer.raw_attribute(images, targets)
            similarity = map_similarities(raw, maps, raw_random, postprocess(raw_random, size))
            per_image["sanity_spearman_abs"] = [s["spearman_abs"] for s in similarity]
        records += batch_records(batch, model, targets, name, per_image, target_prob, seconds=seconds / len(images))
    return records, {"curves": curves}


def leaderboard(records: pd.DataFrame, names: list[str], unavailable: dict, cfg: DictConfig, has_boxes: bool) -> pd.DataFrame:
    """One row per method: the method table, the paper's numbers, seconds per image and the sanity check."""
    labels = [EXPLAINERS.get(n).label for n in names]
    table = method_table(records, names, labels)
    if has_boxes and "Proportion (%)" not in table:
        table["Proportion (%)"] = None
    table.insert(table.columns.get_loc("Diff") + 1, "Diff SE",
                 [standard_error(records, n, lambda r: r["ins_auc"] - r["del_auc"]) for n in names])
    if has_boxes:
        table.insert(table.columns.get_loc("Proportion (%)") + 1, "Proportion SE",
                     [standard_error(records, n, lambda r: r["proportion"]) for n in names])
    published = read_paper_table(cfg.paper.pointing_game)
    ins_del = read_paper_table(cfg.paper.insertion_deletion)
    alpha = float(cfg.method_knobs.cce.alpha)
    cce_row = ins_del[ins_del["alpha"].astype(float) == alpha]
    paper_ins = {"cce": float(cce_row["ins"].iloc[0]) if len(cce_row) else None}
    paper_del = {"cce": float(cce_row["del"].iloc[0]) if len(cce_row) else None}
    table.insert(table.columns.get_loc("Diff SE") + 1, "Ins (paper)", [paper_ins.get(n) for n in names])
    table.insert(table.columns.get_loc("Ins (paper)") + 1, "Del (paper)", [paper_del.get(n) for n in names])
    if has_boxes:
        proportions = dict(zip(published["name"], published["proportion"]))
        table.insert(table.columns.get_loc("Proportion SE") + 1, "Proportion (paper)", [proportions.get(n) for n in names])
    if "class_deviation" in records:
        deviation = records.groupby("method")["class_deviation"].mean()
        table["Class dev"] = [round(float(deviation[n]), 3) if n in deviation else None for n in names]
        table["Class dev SE"] = [standard_error(records, n, lambda r: r["class_deviation"], scale=1, digits=3) for n in names]
    seconds = records.groupby("method")["seconds"].mean() if len(records) else pd.Series(dtype=float)
    table["s/img"] = [round(float(seconds[n]), 3) if n in seconds else None for n in names]
    if "sanity_spearman_abs" in records:
        rho = records.groupby("method")["sanity_spearman_abs"].mean()
        fail_above = float(cfg.sanity.fail_above)
        table["sanity ρ"] = [round(float(rho[n]), 3) if n in rho else None for n in names]
        table["sanity"] = [None if n not in rho else ("FAILS" if rho[n] > fail_above else "passes") for n in names]
    table = table.astype(object)  # an unavailable method shows why in its row
    for name in unavailable:
        row = names.index(name)
        for column in table.columns[1:]:
            if column not in ("Ins (paper)", "Del (paper)", "Proportion (paper)"):
                table.loc[row, column] = unavailable[name].short if column == "Ins" else None
    return table


def standard_error(records: pd.DataFrame, name: str, per_image, scale: float = 100, digits: int = 2) -> float | None:
    """`scale` x the standard error of the mean of `per_image(records)` over the method's images (None under 2)."""
    mine = records[records["method"] == name] if len(records) else records
    if len(mine) < 2:
        return None
    values = per_image(mine).dropna()
    if len(values) < 2:
        return None
    return round(float(values.std(ddof=1) / len(values) ** 0.5 * scale), digits)


def beside_paper(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with, beside each published number, measured - paper (for `report`)."""
    table = table.copy()
    for column in ("Ins", "Del", "Proportion"):
        measured = column if column != "Proportion" else "Proportion (%)"
        if f"{column} (paper)" in table:
            difference = pd.to_numeric(table[measured], errors="coerce") - pd.to_numeric(table[f"{column} (paper)"], errors="coerce")
            table.insert(table.columns.get_loc(f"{column} (paper)") + 1, f"{column} - paper", difference.round(2))
    return table


def examples(records: pd.DataFrame, cfg) -> Examples:
    """CCE's records (else the first method's) with their insertion - deletion as `score` (for `report`)."""
    method = "cce" if "cce" in set(records["method"]) else records["method"].iloc[0]
    chosen = records[records["method"] == method].assign(score=lambda r: 100 * (r["ins_auc"] - r["del_auc"]))
    return Examples(chosen, f"{EXPLAINERS.get(method).label} Ins - Del (100 x AUC)", {"method": method})


def prepare(session: Session) -> Job:
    cfg, device = session.cfg, session.device
    names = method_names(cfg)
    model = build_model(cfg)
    explainers, unavailable = build_explainers(cfg, model)
    if not explainers:
        raise none_can_run(unavailable)
    dataset = build_dataset(cfg, model)
    randomisers = Randomisers(int(cfg.seed)) if bool(cfg.sanity.get("enabled", True)) else None

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        table = leaderboard(records, names, unavailable, cfg, dataset.has_boxes)
        markdown = to_markdown(table)
        header = (f"Every method on the same {records['image_id'].nunique()} images of {dataset.name} ({len(skipped)} "
                  f"skipped), {model_description(cfg)} on {machine_info(device)['device_name']}: Ins/Del = 100 x mean insertion/"
                  f"deletion AUC (step {cfg.metric.step}), Diff = Ins - Del, SE = standard error over the images"
                  + ("; Proportion = energy-based pointing game (%)" if dataset.has_boxes else "")
                  + (f"; Class dev = class deviation, 1 - {cfg.class_sensitivity.similarity} of the maps for the explained "
                     f"class and the {cfg.class_sensitivity.other} class (0: the same map whatever the class)"
                     if cfg.get("class_sensitivity", {}).get("enabled", False) else "")
                  + "; s/img = seconds per map; sanity ρ = Spearman (abs) of each map to the map of the same model with "
                  f"every block re-initialised (FAILS above {cfg.sanity.fail_above}). (paper): Table 5's proportions "
                  "(COCO, Score-CAM's protocol) and CCE's insertion/deletion of Table 1 at its alpha (1000 ImageNet "
                  "images, VGG-19): set beside, not the same data unless the run's is.")
        notes = "".join(f"\n- {EXPLAINERS.get(n).label}: {exc}" for n, exc in unavailable.items())
        run.write_csv("table.csv", table)
        run.write_text("table.md", f"{header}\n\n{markdown}\n{notes}\n")
        run.write_json("curves.json", {EXPLAINERS.get(k).label: v for k, v in mean_curves(run).items()})
        plot_sweep(run.path)
        plot_leaderboard(run.path)
        return ({"images": int(records["image_id"].nunique()), "records": len(records), "caption": header},
                f"{header}\n\n{markdown}\n{notes}")

    return Job(dataset, lambda batch: score_batch(model, batch, explainers, randomisers, cfg), write_tables,
               desc=f"compare ({len(explainers)} methods)", unit="img", model=model,
               explainers=list(explainers.values()))


COMMAND = ScoringCommand("compare", prepare, examples=examples, beside_paper=beside_paper)

"""`cce-bench sanity`: the model-parameter randomisation test (Adebayo et al., NeurIPS 2018) per method.

config -> data + model -> each explainer -> its maps on the trained model -> the metric `sanity` step by
step (metrics/sanity.py: the same maps with the model's blocks re-initialised from the logits down, cascading
and one at a time; Spearman with and without absolute values and SSIM against the original maps) ->
per-(image, method, step) records -> the similarity per step, a verdict per method, and the plot.
"""
from __future__ import annotations

import pandas as pd
import torch

from ..explainers import postprocess
from ..figures import plot_sanity
from ..metrics import MapsToScore
from ..metrics.sanity import MEASURES, MODES, Sanity
from ..runs.engine import Job, ScoringCommand, Session
from ..runs.map_store import MapStore
from ..runs.run_folder import RunFolder
from ..runs.runtime import (
    build_dataset,
    build_explainers,
    build_model,
    chosen_methods,
    method_label,
    model_description,
    none_can_run,
)
from ..runs.scoring import ClassesPerNetwork, batch_records, explained_network
from ..tables import Table, column_position, standard_error, to_markdown


def score_batch(model, batch: dict, explainers: dict, sanity: Sanity, kept: MapStore, cfg) -> tuple[list[dict], dict]:
    """Each method's maps on the trained model, then the sanity metric's walk over the randomised blocks."""
    images = batch["image"].to(torch.device(cfg.device))
    size = images.shape[-2:]
    classes = ClassesPerNetwork(images, batch.get("allowed"), int(cfg.batch_size))
    records = []
    for name, explainer in explainers.items():
        network = explained_network(explainer, model)
        targets, _ = classes(network)
        raw = explainer.raw_attribute(images, targets)
        maps = postprocess(raw, size)
        kept.keep(name, batch["image_id"], maps, explainer)  # the trained model's maps
        given = MapsToScore(model, images, maps, targets, cfg, int(cfg.seed), ids=list(batch["image_id"]),
                            explainer=explainer, network=network, raw=raw, method=name)
        for mode, step, block, per_image in sanity.steps(given):
            records += batch_records(batch, model, targets, name, per_image, mode=mode, step=step, block=block)
    return records, {}


def similarity_table(records: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Mean similarity per (mode, step, block randomised, method) with its standard error over the images,
    long form, methods by label."""
    grouped = records.groupby(["mode", "step", "block", "method"], sort=False)
    table = grouped[list(MEASURES)].mean().round(3).reset_index()
    for measure in MEASURES:
        errors = grouped[measure].agg(lambda values: standard_error(values, 1, 3))  # type: ignore[type-var]  # None: one image
        table.insert(column_position(table, measure) + 1, f"{measure} SE", errors.to_numpy())
    table["images"] = grouped["image_id"].nunique().values
    table["method"] = pd.Categorical(table["method"], categories=list(labels), ordered=True)
    table = table.sort_values(["mode", "method", "step"], key=lambda c: c.map({m: i for i, m in enumerate(MODES)})
                              if c.name == "mode" else c).reset_index(drop=True)
    table["method"] = [labels[n] for n in table["method"].astype(str)]
    return table


def verdicts(records: pd.DataFrame, labels: dict[str, str], fail_above: float) -> pd.DataFrame:
    """Per method: the similarity after the last cascading step (every block tested randomised) and the
    verdict: a method whose maps stay above `fail_above` (Spearman of magnitudes) fails the check."""
    rows = []
    for name, label in labels.items():
        mine = records[(records["method"] == name) & (records["mode"] == "cascading")]
        if mine.empty:
            continue
        last = mine[mine["step"] == mine["step"].max()]
        rho = float(last["spearman_abs"].mean())
        rows.append({"method": label, "randomised down to": last["block"].iloc[0],
                     "Spearman (abs)": round(rho, 3), "Spearman": round(float(last["spearman"].mean()), 3),
                     "SSIM": round(float(last["ssim"].mean()), 3),
                     "verdict": "FAILS: its maps survive the randomisation" if rho > fail_above else "passes"})
    return pd.DataFrame(rows)


def markdown_tables(table: pd.DataFrame, verdict: pd.DataFrame) -> str:
    parts = []
    if not verdict.empty:
        parts.append("Verdict (after the last cascading step):\n\n" + to_markdown(verdict))
    for mode in [m for m in MODES if m in set(table["mode"])]:
        for key, title in MEASURES.items():
            wide = table[table["mode"] == mode].pivot_table(
                index=["step", "block"], columns="method", values=key, sort=False
            )
            wide = wide.reset_index().rename(columns={"block": "randomised" if mode == "independent" else "down to"})
            parts.append(f"{title}, {mode} randomisation:\n\n{to_markdown(wide)}")
    return "\n\n".join(parts)


def prepare(session: Session) -> Job:
    cfg = session.cfg
    sanity = Sanity(cfg)  # the metric `sanity`; its knobs: metric_knobs.sanity.modes, .layers, .fail_above
    model = build_model(cfg)
    explainers, unavailable = build_explainers(cfg, model)
    if not explainers:
        raise none_can_run(unavailable)
    dataset = build_dataset(cfg, model)
    labels = {n: explainers[n].label for n in chosen_methods(cfg) if n in explainers}

    def write_tables(run: RunFolder, records: pd.DataFrame, skipped: pd.DataFrame) -> tuple[dict, str]:
        table = similarity_table(records, labels)
        verdict = verdicts(records, labels, float(sanity.fail_above))
        blocks = sanity.randomiser(model).blocks
        layers = sanity.layers
        header = (
            f"Model-parameter randomisation test (Adebayo et al. 2018) on {model_description(cfg)} ({len(blocks)} "
            "blocks; "
            f"{'all' if layers is None else f'the top {layers}'} randomised from the logits down), "
            f"{records['image_id'].nunique()} images of {dataset.name} ({len(skipped)} skipped), seed {cfg.seed}. "
            "Similarity of each map to the trained model's: Spearman rank correlation of the method's own maps "
            "(with and without absolute values) and SSIM of the maps in [0, 1]; 1 = unchanged. A method fails "
            f"when its Spearman (abs) after the last cascading step stays above {sanity.fail_above}."
        )
        notes = "".join(f"\n- {method_label(cfg, n)}: {exc}" for n, exc in unavailable.items())
        text = Table(table, header, notes, markdown=markdown_tables(table, verdict)).write(run)
        run.write_csv("verdict.csv", verdict)
        plot_sanity(run.path, float(sanity.fail_above))
        return {"images": int(records["image_id"].nunique()), "records": len(records), "caption": header}, text

    return Job(
        dataset,
        lambda batch: score_batch(model, batch, explainers, sanity, session.maps, cfg),
        write_tables,
        desc=f"sanity ({len(explainers)} methods)",
        unit="img",
        model=model,
        explainers=list(explainers.values()),
    )


COMMAND = ScoringCommand("sanity", prepare)  # no one score to rank example images by

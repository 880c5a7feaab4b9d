"""Quantus metrics by name in compare: by value against Quantus called directly on the same inputs, the
overlap with the suite's own pointing game, bad names and knobs in one line, the listing."""
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from cce_bench import UserError
from cce_bench.metrics import energy_pointing_game
from cce_bench.metrics.quantus_metrics import check_metric_knobs, metric_facts, quantus_class
from helpers import run_cli


def test_relevance_mass_accuracy_is_the_energy_pointing_game_on_the_maps_the_suite_scores(tiny_net):
    """The contract where the two overlap: Quantus's RelevanceMassAccuracy (mass inside the mask over the
    whole mass) is the energy pointing game's proportion on the same non-negative maps. They differ only in
    what each does to a map first: the game takes relu and min-max; RMA takes the map as given (normalise=True
    divides by the maximum, which the ratio does not see), so a map with negative values differs."""
    import quantus

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 3, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 2])
    masks = np.zeros((3, 8, 8), bool)
    masks[:, 2:6, 1:5] = True
    masks[2, :, :] = False
    masks[2, 0, 0] = True
    maps = rng.random((3, 8, 8)).astype(np.float32)
    maps[:, 0, 0] = 0.0  # min-max leaves the map as it is: min 0 ...
    maps[:, 7, 7] = 1.0  # ... and max 1, as every map the suite scores
    rma = quantus.RelevanceMassAccuracy(disable_warnings=True)(
        model=tiny_net, x_batch=x, y_batch=y, a_batch=maps[:, None], s_batch=masks[:, None].astype(np.float32),
        channel_first=True, device="cpu")
    ours = energy_pointing_game(torch.from_numpy(maps), torch.from_numpy(masks)).numpy()
    np.testing.assert_allclose(rma, ours, rtol=1e-6)
    signed = maps - 0.5  # RMA counts the negative mass; the game's relu drops it
    rma_signed = quantus.RelevanceMassAccuracy(disable_warnings=True)(
        model=tiny_net, x_batch=x, y_batch=y, a_batch=signed[:, None], s_batch=masks[:, None].astype(np.float32),
        channel_first=True, device="cpu")
    assert not np.allclose(rma_signed, energy_pointing_game(torch.from_numpy(signed), torch.from_numpy(masks)).numpy())


def test_random_logit_similarity_is_one_minus_the_class_deviation_on_the_maps_the_suite_scores():
    """RandomLogit scores SSIM of the map for the class and for a random other class; class deviation is
    1 - SSIM of the same two maps. On maps the suite scores (min 0, max 1) Quantus's SSIM (data range: the
    two maps' span) equals the suite's (data range 1); the two differ in which other class each draws."""
    from quantus.functions.similarity_func import ssim

    from cce_bench.metrics.class_sensitivity import class_deviation

    rng = np.random.default_rng(1)
    maps, others = rng.random((2, 3, 32, 32)).astype(np.float32)
    for m in (maps, others):
        m[:, 0, 0], m[:, -1, -1] = 0.0, 1.0
    ours = 1 - class_deviation(torch.from_numpy(maps), torch.from_numpy(others), "ssim").numpy()
    np.testing.assert_allclose(ours, [ssim(a, b) for a, b in zip(maps, others)], rtol=1e-5)


def test_metric_names_and_knobs_are_checked_against_quantus():
    assert metric_facts("quantus_RandomLogit").family == "randomisation"
    assert not metric_facts("quantus_RandomLogit").higher_is_better
    assert metric_facts("quantus_Sparseness").higher_is_better and metric_facts("quantus_PointingGame").needs == "boxes"
    with pytest.raises(UserError, match=r"unknown metric 'quantus_Sparsenes' \(did you mean quantus_Sparseness\?\)"):
        quantus_class("quantus_Sparsenes")
    with pytest.raises(UserError, match=r"metric quantus_RandomLogit has no argument num_clases; its arguments: .*"
                                        r"num_classes"):
        check_metric_knobs("quantus_RandomLogit", {"num_clases": 10})


@pytest.mark.parametrize("args, message", [
    (["metrics=[quantus_Sparsenes]"], "unknown metric 'quantus_Sparsenes' (did you mean 'quantus_Sparseness'?)"),
    (["metrics=[quantus_RandomLogit]", "metric_knobs.quantus_RandomLogit.num_clases=10"],
     "metric quantus_RandomLogit has no argument num_clases; its arguments:"),
    (["metrics=[faithfulness]"],
     "unknown metric 'faithfulness'; known: class_sensitivity, contrast_part, contrastive_pointing_game, "
     "distractibility"),
    (["metrics=[contrastive_pointing_game]"], "metric contrastive_pointing_game needs a second category's boxes"),
    # what a metric needs, checked before any image: boxes on data without them; a list that names nothing
    (["data=photos", "metrics=[pointing_game]"], "metric pointing_game needs boxes, and this data has none"),
    (["data=photos", "metrics=[quantus_RelevanceMassAccuracy]"],
     "metric quantus_RelevanceMassAccuracy needs boxes, and this data has none"),
    (["metrics=[]"], "metrics=[] leaves compare nothing to score"),
    (["metrics=[sanity,insertion_deletion]", "compare.rank_by=pointing_game"],
     "compare.rank_by=pointing_game is not among this run's metrics with a score to rank by (sanity, "
     "insertion_deletion)"),
    (["metric_knobs.quantus_RandomLogit.num_classes=10"],
     "metric_knobs.quantus_RandomLogit is set but quantus_RandomLogit is not in metrics=[...]"),
])
def test_bad_metrics_are_one_line_before_any_work(tmp_path, args, message, warm_cli):
    result = warm_cli.run("compare", "experiment=smoke", "methods=[gbp]", *args, f"out={tmp_path / 'out'}")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and message in lines[-1] and "Traceback" not in result.stderr, lines
    assert not (tmp_path / "out").exists()


def test_the_listing_has_every_quantus_metric_with_its_family(capsys):
    import quantus

    from cce_bench.commands.metrics import run_metrics

    table = run_metrics([]).set_index("name")
    assert table.loc["quantus_MPRT", "family"] == "randomisation" and table.loc["quantus_MPRT", "better"] == "lower"
    assert table.loc["pointing_game", "needs"] == "boxes"
    assert {f"quantus_{n}" for n in ("Sparseness", "ROAD", "Infidelity", "Focus")} <= set(table.index)
    assert len([n for n in table.index if n.startswith("quantus_")]) == len(
        [v for v in vars(quantus).values() if isinstance(v, type) and issubclass(v, quantus.Metric)]) - 1


def explain_function_of(explainer):
    """Quantus's explain_func through one of the suite's explainers, written here as a user would."""

    def explain(model, inputs, targets, **_):
        return explainer.attribute(torch.as_tensor(inputs), torch.as_tensor(targets).reshape(-1)).numpy()[:, None]

    return explain


@pytest.mark.slow
def test_three_families_by_value_against_quantus_called_directly(tmp_path, lite0):
    """compare's Sparseness (complexity), RelevanceMassAccuracy (localisation, on the COCO boxes) and RandomLogit
    (randomisation: it explains again, through the suite's GBP and the library's Grad-CAM) against Quantus called
    here on the same images, classes and saved maps, with the run's seed."""
    import quantus

    from cce_bench.data import create_dataset, image_batches
    from cce_bench.explainers import create_explainer

    out = tmp_path / "compare"
    metrics = ("metrics=[insertion_deletion,pointing_game,quantus_Sparseness,quantus_RelevanceMassAccuracy,"
               "quantus_RandomLogit]")
    result = run_cli("compare", "experiment=smoke", "methods=[gbp,pytorch_grad_cam_GradCAM]", metrics,
                     "save_maps=true", f"out={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = pd.read_csv(out / "records.csv").set_index("method")
    batch = next(iter(image_batches(create_dataset({"name": "photos_coco", "n_images": 1}, lite0.inputs), 1)))
    images, masks = batch["image"], batch["mask"]
    for method in ("gbp", "pytorch_grad_cam_GradCAM"):
        row = records.loc[method]
        with np.load(out / "maps" / f"{method}.npz") as saved:
            maps = saved[batch["image_id"][0]][None]
        targets = np.array([int(row["target"])])
        explain = explain_function_of(create_explainer(method, lite0))

        common = dict(model=lite0, x_batch=images.numpy(), y_batch=targets, a_batch=maps[:, None], channel_first=True,
                      device="cpu")
        sparseness = quantus.Sparseness(disable_warnings=True)(**common)
        mass = quantus.RelevanceMassAccuracy(disable_warnings=True)(**common, s_batch=masks.numpy()[:, None] * 1.0)
        np.random.seed(0)  # the run's seed + the batch's first index (0)
        random_logit = quantus.RandomLogit(num_classes=1000, seed=0, disable_warnings=True)(**common,
                                                                                          explain_func=explain)
        assert row["quantus_Sparseness"] == pytest.approx(sparseness[0], rel=1e-6)
        assert row["quantus_RelevanceMassAccuracy"] == pytest.approx(mass[0], rel=1e-6)
        assert row["quantus_RelevanceMassAccuracy"] == pytest.approx(row["proportion"], rel=1e-6)  # the contract
        assert row["quantus_RandomLogit"] == pytest.approx(random_logit[0], rel=1e-5)
    table = pd.read_csv(out / "table.csv")
    assert {"Sparseness ↑", "RelevanceMassAccuracy ↑ rank", "RandomLogit ↓", "RandomLogit ↓ s/img"} <= set(table)


def test_the_plan_names_the_quantus_metrics_whose_passes_it_cannot_count():
    from omegaconf import OmegaConf

    from cce_bench.runs.scoring import RunMetrics

    metrics = RunMetrics(["insertion_deletion", "quantus_Sparseness", "quantus_FaithfulnessCorrelation",
                          "quantus_MaxSensitivity", "quantus_PointingGame"], OmegaConf.create({"metric_knobs": {}}))
    # Sparseness and the pointing game read the maps (and boxes) alone; the other two run the model themselves
    assert metrics.unplanned() == ["quantus_FaithfulnessCorrelation", "quantus_MaxSensitivity"]


def test_a_quantus_metrics_passes_are_counted_as_it_scores(lite0, photos):
    from omegaconf import OmegaConf

    from cce_bench.metrics import MapsToScore
    from cce_bench.runs.cost import Passes
    from cce_bench.runs.scoring import RunMetrics

    cfg = OmegaConf.create({"metric_knobs": {"quantus_FaithfulnessCorrelation": {"nr_runs": 4, "subset_size": 224}},
                            "batch_size": 16})
    metrics = RunMetrics(["quantus_FaithfulnessCorrelation", "quantus_Sparseness"], cfg)
    images, ids = photos
    with torch.no_grad():
        targets = lite0(images).argmax(1)
    maps = torch.rand(2, 224, 224, generator=torch.Generator().manual_seed(0))
    metrics.score(MapsToScore(lite0, images, maps, targets, cfg, 0, ids=ids))
    counted = metrics.counted_now(2, {"side": 224})
    # Quantus's algorithm: one forward of each image, then one per run of its perturbed copy; Sparseness none
    assert list(counted) == ["quantus_FaithfulnessCorrelation"]
    what, passes = counted["quantus_FaithfulnessCorrelation"]
    assert passes == Passes(forward=5) and what["knobs"] == {"nr_runs": 4, "subset_size": 224}


def test_the_first_run_counts_a_quantus_metrics_passes_and_the_next_plans_them(tmp_path, warm_cli):
    args = ["compare", "methods=[gbp]", "data=photos", "data.n_images=2", "images_per_batch=1",
            "metrics=[insertion_deletion,quantus_FaithfulnessCorrelation]",
            "metric_knobs.insertion_deletion.step=12544",
            "metric_knobs.quantus_FaithfulnessCorrelation.nr_runs=4",
            "metric_knobs.quantus_FaithfulnessCorrelation.subset_size=224"]
    env = {"CCE_BENCH_CACHE": str(tmp_path / "cache")}
    first = warm_cli.run(*args, f"out={tmp_path / 'one'}", env=env)
    assert first.returncode == 0, first.stderr
    assert "plan: not counted yet: quantus_FaithfulnessCorrelation (" in first.stderr
    assert "counted in it: quantus_FaithfulnessCorrelation 5 passes per image, planned from now on" in first.stderr
    again = warm_cli.run(*args, f"out={tmp_path / 'two'}", env=env)
    assert again.returncode == 0, again.stderr
    # the plan before the second run has the count (and the same passes in all as the run made), no probe ran
    planned = re.search(r"plan: 2 images x ([\d,]+) model passes per image \(GBP 2, scoring \d+, "
                        r"quantus_FaithfulnessCorrelation 5\)", again.stderr)
    assert planned and "not counted yet" not in again.stderr, again.stderr
    made = json.loads((tmp_path / "two" / "run.json").read_text())["model_inputs_this_process"]
    assert 2 * int(planned.group(1)) == sum(made.values())
    one, two = (pd.read_csv(tmp_path / run / "records.csv").filter(regex=r"^(?!.*seconds)") for run in ("one", "two"))
    assert one.equals(two)  # what the cache saves is time, not a different number

"""`cce-bench sweep`: Tables 1-4 end to end on the real model and photos."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from helpers import run_cli


@pytest.fixture(scope="module")
def alpha_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    result = run_cli("sweep", "param=alpha", "data.n_images=2", "param.values=[1.0,0.7,0.1]",
                     "method_knobs.cce.M=2", "method_knobs.cce.steps=10", "metric_knobs.insertion_deletion.step=448",
                     "save_maps=true",
                     f"out={out}")  # curves of 113 points: half the protocol's 225, for time
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.slow
def test_alpha_sweep_writes_every_output(alpha_run):
    out, result = alpha_run
    for name in ("table.csv", "table.md", "records.csv", "records.jsonl", "config.yaml", "samples.csv",
                 "machine.json", "run.json", "curves.png", "metrics.png"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "table.csv")
    assert table["alpha"].tolist() == [1.0, 0.7, 0.1]
    # save_maps: a file per value, CCE's two maps with each; alpha only mixes M_sup and M_pro of the same
    # counterfactuals, so M_sup is one map whatever alpha, and at alpha 1 the unified map is M_sup's
    with np.load(out / "maps" / "cce_alpha=1.0.npz") as unified, \
            np.load(out / "maps" / "cce_alpha=1.0_M_sup.npz") as sup, \
            np.load(out / "maps" / "cce_alpha=0.1_M_sup.npz") as sup_again:
        assert unified.files == ["chelsea", "coffee"]
        np.testing.assert_allclose(unified["chelsea"], sup["chelsea"], atol=1e-5)
        np.testing.assert_array_equal(sup["coffee"], sup_again["coffee"])
    assert table.loc[1, "Ins (paper)"] == pytest.approx(57.9971)  # the published number beside ours
    assert table.loc[1, "Del (paper)"] == pytest.approx(17.9553)
    assert (table["Diff"] - (table["Ins"] - table["Del"])).abs().max() < 0.02

    records = pd.read_csv(out / "records.csv")
    assert len(records) == 2 * 3  # one per image and setting
    assert {"image_id", "target", "target_name", "alpha", "M", "gamma", "epsilon", "ins_auc", "del_auc",
            "valid"} <= set(records.columns)
    assert set(records["image_id"]) == {"chelsea", "coffee"}
    # Table values are 100 x the mean of the records
    means = records.groupby("alpha")["ins_auc"].mean() * 100
    assert table.set_index("alpha")["Ins"].to_dict() == pytest.approx(means.to_dict(), abs=0.01)
    # each mean with its standard error over the 2 images: |a - b| / 2 for two values
    diffs = records.assign(d=100 * (records["ins_auc"] - records["del_auc"])).pivot(
        index="image_id", columns="alpha", values="d"
    )
    by_hand = (diffs.iloc[0] - diffs.iloc[1]).abs() / 2
    assert table.set_index("alpha")["Diff SE"].to_dict() == pytest.approx(by_hand.to_dict(), abs=0.01)
    assert "standard error" in json.loads((out / "run.json").read_text())["caption"]
    # the counterfactuals were made once per image: one generation time shared by every alpha
    assert records.groupby("image_id")["seconds"].nunique().eq(1).all()
    # on real photos, inserting the salient pixels first beats deleting them first
    assert records["ins_auc"].mean() > records["del_auc"].mean()

    config = (out / "config.yaml").read_text()
    assert "steps: 10" in config and "step: 448" in config and "device: cpu" in config
    machine = json.loads((out / "machine.json").read_text())
    assert machine["versions"]["torch"] and machine["device_name"]
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    samples = pd.read_csv(out / "samples.csv")
    assert samples["image_id"].tolist() == ["chelsea", "coffee"]
    assert "| alpha |" in (out / "table.md").read_text().replace("|   alpha |", "| alpha |")
    assert "Ins (paper)" in result.stdout  # the markdown table is printed at the end
    # the caption says where the paper's numbers come from
    assert "VGG-19 on 1000 random ImageNet images" in json.loads((out / "run.json").read_text())["caption"]
    # the plan printed before the first image counts exactly the passes the run then made
    planned = re.search(
        r"plan: 2 images x [\d,]+ model passes per image \(CCE [\d,]+, scoring ([\d,]+)\) = ([\d,]+) passes",
        result.stderr,
    )
    assert planned, result.stderr
    made = json.loads((out / "run.json").read_text())["model_inputs_this_process"]
    assert int(planned.group(2).replace(",", "")) == sum(made.values())
    assert int(planned.group(1).replace(",", "")) == 1 + 3 * 2 * (112 + 1)  # the class, 3 maps' two curves
    # the run's bar moves inside the first image (its passes against the plan) and ends at 2.0/2
    assert re.search(r"\| 0\.[1-9]/2 \[", result.stderr) and "| 2.0/2 [" in result.stderr
    # after the first image (one per batch on a CPU), the plan again at that image's own rate
    assert re.search(r"plan: the first batch took \d+m\d+s \([\d.]+ s per image, planned [\d.]+ s\): about "
                     r"\d+m\d+s for the 1 image left", result.stderr), result.stderr


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, warm_cli):
    out = tmp_path / "run"
    result = warm_cli.run("sweep", "experiment=smoke", "--dry-run", f"out={out}")
    assert result.returncode == 0, result.stderr
    assert re.search(r"plan: 1 image x [\d,]+ model passes per image \(CCE \d+, scoring 101\) = [\d,]+ passes; at the "
                     r"rates measured here on .+ about \d+m\d+s", result.stderr), result.stderr
    assert not out.exists() and "written to" not in result.stdout  # scoring: the class, 10 alphas' 2 x 5 passes
    refused = warm_cli.run("explain", "chelsea", "--dry-run")
    assert refused.returncode == 2 and "--dry-run plans the scoring commands" in refused.stderr


def test_a_long_plan_offers_a_first_look_and_a_short_or_smoke_one_does_not():
    from cce_bench.runs.cost import LONG_PLAN_SECONDS, Passes, Plan, Rates, first_look_hint

    rates = Rates(forward=0.002, gradient=0.004, backward=0.004)  # seconds per pass
    per_image = {"CCE": Passes(forward=500, gradient=250, backward=250)}  # 1 + 1 + 1 = 3 s per image
    at_the_bar = Plan(images=LONG_PLAN_SECONDS // 3, parts=per_image, rates=rates, device_name="cpu")
    assert first_look_hint(at_the_bar, "sweep", None) == (
        "plan: that is long on this machine; for a first look in about a minute (one image, few steps, the same "
        "code paths) add experiment=smoke: cce-bench sweep ... experiment=smoke")
    assert first_look_hint(at_the_bar, "sweep", "smoke") == ""  # already the first look
    # an experiment of its own (one choice only): its settings on the images a minute holds, 60 s / 3 s = 20
    assert first_look_hint(at_the_bar, "compare", "parts_track") == (
        "plan: that is long on this machine; for a first look in about a minute with experiment=parts_track's own "
        "settings, on 20 image(s): cce-bench compare experiment=parts_track ... data.n_images=20")
    shorter = Plan(images=LONG_PLAN_SECONDS // 3 - 1, parts=per_image, rates=rates, device_name="cpu")
    assert first_look_hint(shorter, "sweep", "table1_alpha") == ""


def test_the_plan_at_the_first_batchs_rate_says_both_and_moves_the_bar_at_the_measured_rate():
    from cce_bench.runs.cost import Passes, Plan, Rates

    plan = Plan(images=10, parts={"CCE": Passes(forward=500, gradient=250, backward=250)},
                rates=Rates(forward=0.002, gradient=0.004, backward=0.004), device_name="cpu")  # 3 s per image
    again, line = plan.measured(seconds=9.0, items=2, left=8)  # 4.5 s per image: 1.5 times the plan
    assert line == "plan: the first batch took 0m9s (4.5 s per image, planned 3.0 s): about 0m36s for the 8 images left"
    assert again.images == 8 and again.seconds_per_image == pytest.approx(4.5)


def test_a_count_made_in_the_first_batch_joins_the_plan_and_is_kept_for_later_runs(tmp_path, monkeypatch, lite0):
    from cce_bench.runs.cost import PassCounts, Passes, Plan, Rates, pass_count_context

    monkeypatch.setenv("CCE_BENCH_CACHE", str(tmp_path))
    counts = PassCounts(lite0, pass_count_context(lite0, []))
    plan = Plan(images=10, parts={"CCE": Passes(forward=500, gradient=250, backward=250)},
                rates=Rates(forward=0.002, gradient=0.004, backward=0.004), device_name="cpu", counts=counts)
    stage = {"metric": "quantus_FaithfulnessCorrelation", "knobs": {"nr_runs": 4}}
    again, line = plan.measured(seconds=9.0, items=2, left=8, counted={"FC": (stage, Passes(forward=5))})
    assert line == ("plan: the first batch took 0m9s (4.5 s per image, planned 3.0 s; counted in it: FC 5 passes per "
                    "image, planned from now on): about 0m36s for the 8 images left")
    assert again.parts["FC"] == Passes(forward=5) and again.seconds_per_image == pytest.approx(4.5)
    # 3.0 s of CCE and 0.01 s of FC at the probe's rates, scaled to the 4.5 s measured
    assert again.rates.forward == pytest.approx(0.002 * 4.5 / 3.01)
    assert PassCounts(lite0, pass_count_context(lite0, [])).known(stage) == Passes(forward=5)  # for the next run


def test_a_methods_passes_are_counted_on_the_probe_once_and_read_back_after(tmp_path, monkeypatch, lite0):
    from cce_bench.explainers import create_explainer
    from cce_bench.runs.cost import PassCounts, Passes, method_parts, method_stage, pass_count_context

    monkeypatch.setenv("CCE_BENCH_CACHE", str(tmp_path))
    methods = {"rise": create_explainer("rise", lite0, N=24), "ig": create_explainer("ig", lite0, steps=5)}
    context = pass_count_context(lite0, [])
    first = PassCounts(lite0, context)
    # by the methods' definitions: RISE one forward per mask, IG one gradient per point of the path
    expected = {"RISE": Passes(forward=24), "IG": Passes(gradient=5, backward=5)}
    assert method_parts(first, methods) == expected and first.probed == ["RISE", "IG"]
    made = dict(lite0.passes.as_dict())
    again = PassCounts(lite0, context)
    assert method_parts(again, methods) == expected and again.probed == [] and lite0.passes.as_dict() == made
    # another knob, another count; another model (or library version, or user file), another key
    assert method_parts(again, {"rise": create_explainer("rise", lite0, N=12)}) == {"RISE": Passes(forward=12)}
    rise = method_stage(methods["rise"])
    assert again.known(rise) == expected["RISE"]
    assert PassCounts(lite0, {**context, "model": "other"}).known(rise) is None
    # a damaged cache is counted again, and one that cannot be written only costs the time
    (tmp_path / "pass_counts.json").write_text("{not json")
    assert method_parts(PassCounts(lite0, context), {"ig": methods["ig"]}) == {"IG": expected["IG"]}
    monkeypatch.setenv("CCE_BENCH_CACHE", str(tmp_path / "pass_counts.json" / "below a file"))
    assert method_parts(PassCounts(lite0, context), {"ig": methods["ig"]}) == {"IG": expected["IG"]}


def test_cfg_job_prints_the_composed_config():
    result = run_cli("sweep", "param=M", "model=vgg19", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "name: vgg19" in result.stdout and "paper: table2_M.csv" in result.stdout
    one_node = run_cli("sweep", "--cfg", "job", "--package", "param", "param=M", "--resolve")  # Hydra's flags, anywhere
    assert one_node.stdout.startswith("# @package param\nname: M\n"), one_node.stdout + one_node.stderr
    assert "with_time: true" in one_node.stdout
    exact = run_cli("sweep", "model=VGG19", "--cfg", "job")  # choices are taken as typed, a near miss named
    assert exact.returncode == 2 and "unknown model 'VGG19' (did you mean 'vgg19'?)" in exact.stderr, exact.stderr

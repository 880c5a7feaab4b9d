import json

import pandas as pd
import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def alpha_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    result = run_cli("sweep", "param=alpha", "data.n_images=2", "param.values=[1.0,0.7,0.1]",
                     "method.M=2", "method.steps=10", f"out={out}")
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
    # the counterfactuals were made once per image: one generation time shared by every alpha
    assert records.groupby("image_id")["gen_seconds"].nunique().eq(1).all()
    # on real photos, inserting the salient pixels first beats deleting them first
    assert records["ins_auc"].mean() > records["del_auc"].mean()

    config = (out / "config.yaml").read_text()
    assert "steps: 10" in config and "step: 224" in config and "device: cpu" in config
    machine = json.loads((out / "machine.json").read_text())
    assert machine["versions"]["torch"] and machine["device_name"]
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    samples = pd.read_csv(out / "samples.csv")
    assert samples["id"].tolist() == ["chelsea", "coffee"]
    assert "| alpha |" in (out / "table.md").read_text().replace("|   alpha |", "| alpha |")
    assert "Ins (paper)" in result.stdout  # the markdown table is printed at the end


def test_cfg_job_prints_the_composed_config():
    result = run_cli("sweep", "param=M", "model=VGG19", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "name: vgg19" in result.stdout and "paper: table2_M.csv" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["method.alpha=1.5"], "alpha=1.5 is outside [0, 1]"),
    (["param.values=[0.5,1.2]"], "alpha=1.2 is outside [0, 1]"),
    (["method.M=0"], "M=0 must be"),
    (["method.epsilon=0"], "epsilon=0 must be > 0"),
    (["model=vgg"], "unknown model 'vgg'; known: efficientnet_lite0, resnet50, vgg19"),
    (["param=delta"], "unknown param 'delta'; known:"),
    (["data=imagenet"], "data.root is not set: pass data.root="),
    (["data=imagenet", "data.root=/nonexistent/imagenet"], "data root '/nonexistent/imagenet' does not exist"),
    (["model=vgg19"], "no weights for vgg19"),
    (["metric.step=0"], "step=0 must be a positive"),
    (["device=cuda:0"], "torch sees no CUDA GPU"),
    (["out=/proc/cce-bench-cannot-write"], "cannot be written"),
])
def test_bad_values_exit_with_one_line_and_no_traceback(tmp_path, args, message):
    result = run_cli("sweep", *args, f"hydra.run.dir={tmp_path}/h", env={"TORCH_HOME": str(tmp_path / "torch")})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("cce-bench: error: "), result.stderr
    assert message in lines[0]


FAST_METHODS = ["method_knobs.rise.N=32", "method_knobs.cce.steps=3", "method_knobs.cce.M=2",
                "method_knobs.appb.steps=3", "method_knobs.ig.steps=4", "method_knobs.scam.target_layer=blocks.6"]


@pytest.mark.slow
def test_pointing_game_writes_table5_with_all_ten_columns(tmp_path):
    out = tmp_path / "pg"
    result = run_cli("pointing-game", "data.n_images=2", *FAST_METHODS, f"out={out}")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv")
    assert list(table.columns[1:]) == ["GBP", "IG", "RISE", "GCAM+", "SCAM", "FullIG", "CE", "APPB", "CALM", "CCE"]
    rows = table.set_index(table.columns[0])
    assert rows.loc["Proportion (%)", "CALM"] == "needs checkpoint"
    assert float(rows.loc["Proportion (paper)", "CCE"]) == pytest.approx(61.1)
    measured = rows.loc["Proportion (%)"].drop("CALM").astype(float)
    assert ((measured >= 0) & (measured <= 100)).all()
    records = pd.read_csv(out / "records.csv")
    assert len(records) == 2 * 9 and set(records["pair_id"]) <= {"2:cup", "3:bench", "3:bottle"}
    for name in ("samples.csv", "skipped.csv", "machine.json", "config.yaml", "run.json", "table.md", "table5.png"):
        assert (out / name).is_file(), name
    assert "train-calm" in (out / "table.md").read_text()


def test_pointing_game_runs_a_subset_by_name(tmp_path):
    out = tmp_path / "pg"
    result = run_cli("pointing-game", "methods=[gcam+,CE]", "data.n_images=1", f"out={out}")
    assert result.returncode == 0, result.stderr
    assert list(pd.read_csv(out / "table.csv").columns[1:]) == ["GCAM+", "CE"]


@pytest.mark.slow
def test_train_calm_then_the_calm_column_is_measured(tmp_path):
    import numpy as np
    import torch
    import torchvision
    from PIL import Image

    torch_home = tmp_path / "torch"
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(),
               torch_home / "hub" / "checkpoints" / "resnet50-0676ba61.pth")
    rng = np.random.default_rng(0)
    for wnid in ("n02123045", "n07920052"):  # tabby, espresso
        folder = tmp_path / "imagenet" / "train" / wnid
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (80, 90, 3), dtype=np.uint8)).save(folder / f"{i}.JPEG")
    env = {"TORCH_HOME": str(torch_home)}
    checkpoint = tmp_path / "calm.pth"
    trained = run_cli("train-calm", f"data.root={tmp_path / 'imagenet'}", "data.resize=64", "data.crop=64",
                      "batch_size=2", "num_workers=0", f"checkpoint={checkpoint}", f"out={tmp_path / 'calm'}", env=env)
    assert trained.returncode == 0, trained.stderr
    assert checkpoint.is_file()
    out = tmp_path / "pg"
    result = run_cli("pointing-game", "methods=[CALM]", "data.n_images=1", f"method_knobs.calm.checkpoint={checkpoint}",
                     f"out={out}", env=env)
    assert result.returncode == 0, result.stderr
    value = pd.read_csv(out / "table.csv").set_index("Unnamed: 0").loc["Proportion (%)", "CALM"]
    assert 0 <= float(value) <= 100

"""No "complete" run made of garbage: a model with broken weights stops with one line naming them; a map
that is all zero or not finite is flagged and warned about; one method that fails in `compare` gets its
row with the reason while the others are scored; --debug and CCE_BENCH_DEBUG mean what they say."""
import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from cce_bench.errors import debugging
from cce_bench.metrics import MapsToScore
from cce_bench.runs.scoring import RunMetrics, map_flags
from helpers import run_cli


def test_a_checkpoint_of_nan_weights_stops_the_run_in_one_line(tmp_path, lite0):
    state = {
        k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v) for k, v in lite0.net.state_dict().items()
    }
    checkpoint = tmp_path / "nan.pth"
    torch.save(state, checkpoint)
    out = tmp_path / "run"
    result = run_cli("sweep", "experiment=smoke", "param.values=[0.7]", f"model.checkpoint={checkpoint}", f"out={out}")
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert f"model efficientnet_lite0 with checkpoint {checkpoint} gives NaN or infinite outputs for chelsea" in error
    assert not out.exists()  # it failed after taking its folder's lock: the folder it made is removed


def test_blank_and_broken_maps_are_flagged_scored_as_nothing_and_warned_once(lite0, photos, capsys):
    images = photos[0][:1].expand(3, -1, -1, -1)
    maps = torch.rand(3, 224, 224)
    maps[1] = 0
    maps[2, 5, 5] = float("nan")
    assert map_flags(maps) == [None, "all zero", "not finite"]
    cfg = OmegaConf.create({"metric_knobs": {"insertion_deletion": {"step": 12544}}, "batch_size": 16})
    targets = torch.zeros(3, dtype=torch.long)
    run_metrics = RunMetrics(["insertion_deletion"], cfg)

    def scored():
        return run_metrics.score(MapsToScore(lite0, images, maps.clone(), targets, cfg, 0, ids=["a", "b", "c"],
                                             method="probe_method"))

    per_image, _ = scored()
    assert per_image["map_flag"] == [None, "all zero", "not finite"]
    # a broken map is scored as the all-zero map: the scores of no explanation
    assert per_image["ins_auc"][2] == pytest.approx(per_image["ins_auc"][1], abs=1e-6)
    scored()  # the same again in this run: no second warning
    warned = capsys.readouterr().err.strip().splitlines()
    assert warned == [
        "warning: probe_method's map of b is all zero: scored as no explanation (records.csv: map_flag); "
        "check the method's knobs",
        "warning: probe_method's map of c is not finite: scored as no explanation (records.csv: map_flag); "
        "check the method's knobs",
    ]


def test_one_failing_method_gets_its_row_and_the_others_are_scored(tmp_path):
    out = tmp_path / "compare"
    result = run_cli(
        "compare",
        "methods=[gbp,captum_Occlusion,captum_LRP]",
        "data=photos",
        "experiment=smoke",
        "metrics=[insertion_deletion,class_sensitivity]",
        "method_knobs.captum_Occlusion.sliding_window_shapes=[4,8,8]",
        f"out={out}",
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv", keep_default_na=False).set_index("method")
    assert table.loc["GBP", "rank"] == "1" and float(table.loc["GBP", "Ins"]) > 0
    assert table.loc["Occlusion (captum)", "Ins"] == "failed"
    assert table.loc["LRP (captum)", "Ins"] == "cannot run here"  # known before any work
    notes = (out / "table.md").read_text()
    assert "Occlusion (captum): failed on every image: captum Occlusion failed" in notes
    assert "LRP (captum): cannot run on this model: captum's LRP has no rule for" in notes
    records = pd.read_csv(out / "records.csv")
    assert records.loc[records["method"] == "captum_Occlusion", "error"].str.contains("cannot exceed").all()
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("value, on", [("", False), ("0", False), ("false", False), ("False", False), ("no", False),
                                       ("1", True), ("true", True)])
def test_cce_bench_debug_false_means_off(monkeypatch, value, on):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("CCE_BENCH_DEBUG", value)
    assert debugging() is on


def test_debug_shows_the_traceback_of_an_unexpected_value_error(tmp_path, monkeypatch, capsys):
    from cce_bench import cli
    from cce_bench.runs import engine

    def broken(*_args, **_kwargs):
        raise ValueError("deep inside the run")

    monkeypatch.setattr(engine, "execute", broken)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # restored after the test: --debug sets it
    monkeypatch.delenv("CCE_BENCH_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["sweep", "experiment=smoke", f"out={tmp_path / 'a'}"])
    assert exited.value.code == 2 and "unexpected ValueError: deep inside the run" in capsys.readouterr().err
    with pytest.raises(ValueError, match="deep inside the run"):
        cli.main(["sweep", "experiment=smoke", f"out={tmp_path / 'b'}", "--debug"])


def test_a_slurm_launcher_without_slurm_is_one_line_and_leaves_nothing(tmp_path):
    result = run_cli(
        "sweep", "-m", "hydra/launcher=slurm", "experiment=smoke", env={"PATH": str(tmp_path)}, cwd=tmp_path
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "hydra/launcher=slurm needs SLURM (sbatch on PATH)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_leaderboard_set_answers_bad_arguments_in_one_line(tmp_path):
    import subprocess
    import sys

    from helpers import ROOT

    script = str(ROOT / "scripts" / "leaderboard_set.py")
    for args, says in ((["--summarise", str(tmp_path / "nothing")], "has no records.csv: pass finished run folders"),
                       (["--views", "sideways", "--out", str(tmp_path / "set")], "unknown view 'sideways'")):
        result = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode != 0 and says in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "set").exists()


def test_cfg_job_prints_a_config_whose_mandatory_values_are_unset(warm_cli):
    result = warm_cli.run("sweep", "data=imagenet", "--cfg", "job")
    assert result.returncode == 0 and "not set" not in result.stderr, result.stderr  # Hydra prints `root: ???`
    run = warm_cli.run("sweep", "data=imagenet", "out=/nonexistent/never")
    assert run.returncode == 2 and "data.root is not set" in run.stderr  # a run still needs it


def test_a_failed_job_of_a_multirun_is_one_line_and_the_others_run(tmp_path):
    result = run_cli("sweep", "-m", "method=appb,cce", "method_knobs.appb.layers=[nope]", "experiment=smoke",
                     "param.values=[0.7]", f"hydra.sweep.dir={tmp_path / 'multi'}")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("cce-bench: error:")]
    assert (
        len(errors) == 1
        and errors[0].startswith("cce-bench: error: job 0 (method=appb,")
        and "no layer 'nope'" in errors[0]
    )
    assert "Traceback" not in result.stderr
    folders = [p.name for p in (tmp_path / "multi").iterdir() if p.is_dir()]
    assert len(folders) == 1 and folders[0].startswith("1_method=cce")  # the failed job's folder is removed
    assert (tmp_path / "multi" / folders[0] / "table.csv").is_file()


def test_a_name_the_file_system_refuses_is_one_line(tmp_path, warm_cli):
    too_long = tmp_path / ("a" * 300)
    result = warm_cli.run("sweep", "experiment=smoke", f"out={too_long}")
    assert result.returncode == 2 and "the file system refuses the name" in result.stderr, result.stderr
    assert "bug" not in result.stderr and not any(tmp_path.iterdir())


def test_failed_jobs_run_by_submitit_are_one_line_each_from_the_launching_process(tmp_path):
    # submitit's local executor runs each job in its own process, as SLURM would on a node
    result = run_cli("sweep", "-m", "method_knobs.appb.layers=[nope],[nada]", "method=appb", "experiment=smoke",
                     "param.values=[0.7]", "hydra/launcher=submitit_local", f"hydra.sweep.dir={tmp_path / 'multi'}")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("cce-bench: error:")]
    assert [e.split(":")[2].strip()[:5] for e in errors] == ["job 0", "job 1"], result.stderr
    assert "no layer 'nope'" in errors[0] and "no layer 'nada'" in errors[1]
    assert "Traceback" not in result.stderr
    left = sorted(p.name for p in (tmp_path / "multi").iterdir())
    assert left == [".submitit", "multirun.yaml"]  # the failed jobs' folders are gone, and the lines' carrier

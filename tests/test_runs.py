"""Runs that survive: resume after SIGKILL (bitwise equal to an uninterrupted run), a refused foreign config,
scale-out, multirun."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from helpers import ROOT, finished_batches, run_cli

# Small but real: the real model and photos, CCE with few steps, curves of 24 points.
# the smoke preset, curves of 24 points
FAST = ["experiment=smoke", "param.values=[1.0,0.5]", "metric_knobs.insertion_deletion.step=2240"]


TIMING = ["seconds"]


def table_and_records(out):
    records = pd.read_csv(out / "records.csv").drop(columns=TIMING)
    return (out / "table.csv").read_bytes(), records


@pytest.mark.slow
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    args = ["sweep", *FAST, "data.n_images=4"]
    reference = tmp_path / "reference"
    assert run_cli(*args, f"out={reference}").returncode == 0

    out = tmp_path / "killed"
    part = out / "parts" / "rank0.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "cce_bench.cli", *args, f"out={out}"], cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and (not part.exists() or len(finished_batches(part)) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(finished_batches(part))
    assert 2 <= done_before < 4, "the kill should land mid-run"
    assert not (out / "run.json").exists() and not (out / "table.csv").exists()  # visibly unfinished

    rerun = run_cli(*args, f"out={out}")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done_before} of 4 batches already done" in rerun.stderr
    # the plan of the resumed run counts what is left (the sweep's one value: a batch is one image)
    assert f"plan: {done_before} of 4 images are done in this folder; the plan counts the {4 - done_before} left" \
        in rerun.stderr and f"plan: {4 - done_before} image" in rerun.stderr, rerun.stderr
    batches = [batch["batch"] for batch in finished_batches(part)]
    assert sorted(batches) == [0, 1, 2, 3]  # every batch once: nothing finished was computed again
    # Bitwise: the batches of two processes (killed, then rerun) give the uninterrupted run's table and records,
    # so the same config and seed give the same numbers.
    ref_table, ref_records = table_and_records(reference)
    table, records = table_and_records(out)
    assert table == ref_table
    pd.testing.assert_frame_equal(records, ref_records, check_exact=True)
    config = (reference / "config.yaml").read_text()
    assert "seed: 0" in config and "deterministic: true" in config
    assert json.loads((reference / "machine.json").read_text())["versions"]["torch"]


@pytest.mark.slow
def test_ctrl_c_says_what_is_kept_where_and_how_to_go_on(tmp_path):
    out = tmp_path / "interrupted"
    part = out / "parts" / "rank0.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "cce_bench.cli", "sweep", *FAST, "data.n_images=4", f"out={out}"],
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not part.exists() or not finished_batches(part)):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1].endswith(
        f"interrupted: what had finished is kept in {out}; rerun with out={out} to go on from there (nothing finished "
        "is computed again)")
    kept = len(finished_batches(part))
    rerun = run_cli("sweep", *FAST, "data.n_images=4", f"out={out}")
    assert rerun.returncode == 0 and f"{kept} of 4 batches already done" in rerun.stderr, rerun.stderr


def test_a_cut_last_line_is_redone(tmp_path):
    from cce_bench.runs.run_folder import RunFolder

    run = RunFolder(tmp_path / "r")
    run.append_batch(0, 0, [{"image_id": "a"}], [])
    with open(run.path / "parts" / "rank0.jsonl", "a") as fh:
        fh.write('{"batch": 1, "records": [{"image_id": "b"')  # a crash in the middle of a write
    assert list(run.finished_batches()) == [0]


def test_another_config_in_the_same_folder_is_refused(tmp_path, warm_cli):
    out = tmp_path / "run"
    assert run_cli("sweep", *FAST, "data.n_images=1", f"out={out}").returncode == 0
    provenance = {p.name: p.read_bytes() for p in (out / ".hydra").iterdir()}
    assert set(provenance) == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert b"steps: 3" in provenance["config.yaml"] and b"data.n_images=1" in provenance["overrides.yaml"]
    result = warm_cli.run("sweep", *FAST, "data.n_images=1", "method_knobs.cce.steps=4", f"out={out}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "holds a run of another config (differs in method_knobs.cce.steps)" in result.stderr
    # The refused run changed nothing of the finished run's record (Hydra's own copy included).
    assert {p.name: p.read_bytes() for p in (out / ".hydra").iterdir()} == provenance
    again = warm_cli.run("sweep", *FAST, "data.n_images=1", f"out={out}", "num_workers=1")  # not a result setting
    assert again.returncode == 0 and "1 of 1 batches already done" in again.stderr


@pytest.mark.slow
def test_two_processes_with_gloo_equal_one(tmp_path):
    args = ["sweep", *FAST, "data.n_images=2"]  # a batch per process
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = run_cli(*args, f"out={tmp_path / 'one'}", env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "cce_bench.cli", *args, f"out={tmp_path / 'two'}"],
                         cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr
    assert sorted(p.name for p in (tmp_path / "two" / "parts").iterdir()) == ["rank0.jsonl", "rank1.jsonl"]
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2
    table_one, records_one = table_and_records(tmp_path / "one")
    table_two, records_two = table_and_records(tmp_path / "two")
    assert table_one == table_two
    pd.testing.assert_frame_equal(records_one, records_two, check_exact=True)


def test_multirun_with_the_local_launcher_writes_one_folder_per_point(tmp_path):
    result = run_cli("sweep", "-m", "method_knobs.cce.steps=2,3", "experiment=smoke", "param.values=[1.0]",
                     f"hydra.sweep.dir={tmp_path / 'multi'}")
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in (tmp_path / "multi").iterdir() if p.is_dir())
    assert [f.name.split("_")[0] for f in folders] == ["0", "1"]
    steps = [
        json.loads((f / "fingerprint.json").read_text())["settings"]["method_knobs"]["cce"]["steps"] for f in folders
    ]
    assert steps == [2, 3] and all((f / "table.csv").is_file() for f in folders)


def test_slurm_launcher_config_composes():
    result = run_cli("sweep", "hydra/launcher=slurm", "--cfg", "hydra")
    assert result.returncode == 0, result.stderr
    assert "hydra_plugins.hydra_submitit_launcher" in result.stdout and "gpus_per_node" in result.stdout


def test_every_method_takes_its_batch_size_from_the_device_where_the_config_leaves_it_null(tmp_path):
    from cce_bench.composing import compose_checked, register_knob_nodes
    from cce_bench.explainers import EXPLAINERS
    from cce_bench.runs.runtime import all_methods, resolve

    register_knob_nodes()
    cfg = resolve(compose_checked("compare", ["device=cpu", "method_knobs.gbp.batch_size=3", f"out={tmp_path}"]))
    expected = {name: EXPLAINERS.get(name).batch_sizes["cpu"] for name in EXPLAINERS.names()}
    assert {name: knobs.batch_size for name, knobs in cfg.method_knobs.items()} == {**expected, "gbp": 3}
    assert expected["appb"] == 16 and expected["ig"] == 4 and expected["cce"] == 16  # the settings measured before
    for name in EXPLAINERS.names():  # on a GPU every method batches more than on a CPU (not only CCE)
        assert EXPLAINERS.get(name).default_batch_size("cuda") > EXPLAINERS.get(name).default_batch_size("cpu"), name
    assert list(cfg.methods) == all_methods() and len(cfg.methods) == len(
        EXPLAINERS.names()
    )  # `all`, recorded as the list


STOPS_ONCE = '''
from pathlib import Path

import torch


def edge_map(model, images, targets, flag=""):
    """A map of the image's own edges; its first map of a run's image (not the plan's small probe) while `flag`
    does not exist stops the run as Ctrl-C does."""
    if flag and images.shape[-1] == 224 and not Path(flag).exists():
        Path(flag).write_text("stopped once")
        raise KeyboardInterrupt
    gray = images.mean(1)
    return torch.nn.functional.pad((gray[:, 1:, 1:] - gray[:, :-1, :-1]).abs(), (0, 1, 0, 1))
'''


def test_ctrl_c_inside_a_batch_keeps_the_methods_that_finished_and_the_rerun_does_not_redo_them(tmp_path):
    (tmp_path / "stops_once.py").write_text(STOPS_ONCE)
    out, flag = tmp_path / "run", tmp_path / "stopped"
    args = ["compare", "methods=[gbp,custom]", "method_knobs.custom._target_=stops_once.edge_map",
            f"method_knobs.custom.flag={flag}", "data=photos", "data.n_images=1", "metrics=[insertion_deletion]",
            "metric_knobs.insertion_deletion.step=2240", f"out={out}"]
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    stopped = run_cli(*args, env=env)
    assert stopped.returncode == 130 and f"what had finished is kept in {out}" in stopped.stderr, stopped.stderr
    kept = [json.loads(line) for line in (out / "parts" / "rank0.jsonl").read_text().splitlines()]
    assert [(entry["piece"], entry["batch"]) for entry in kept] == [("gbp", 0)]  # GBP's records, its batch unfinished
    again = run_cli(*args, env=env)
    assert again.returncode == 0, again.stderr
    records = pd.read_csv(out / "records.csv")
    assert sorted(records["method"]) == ["custom", "gbp"]
    gbp = records[records["method"] == "gbp"].iloc[0]
    # GBP was not computed again: its record is the one kept before the interruption, time included
    assert gbp["seconds"] == kept[0]["records"][0]["seconds"] and gbp["ins_auc"] == kept[0]["records"][0]["ins_auc"]
    made = json.loads((out / "run.json").read_text())["model_inputs_this_process"]
    assert made["with_gradient"] == 0  # GBP's gradient pass belongs to the first run only


def test_a_sweep_batch_cut_after_its_values_finished_is_resumed_from_its_pieces(tmp_path, warm_cli):
    out = tmp_path / "run"
    args = ["sweep", "experiment=smoke", "data.n_images=2", f"out={out}"]
    first = warm_cli.run(*args)
    assert first.returncode == 0, first.stderr
    table = pd.read_csv(out / "table.csv")
    lines = (out / "parts" / "rank0.jsonl").read_text().splitlines()
    assert sum('"piece"' in line for line in lines) == 2 * len(table)  # one per image and value
    (out / "parts" / "rank0.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # the second batch's end is lost
    (out / "run.json").unlink()
    again = warm_cli.run(*args)
    assert again.returncode == 0, again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out / "table.csv"), table)
    made = json.loads((out / "run.json").read_text())["model_inputs_this_process"]
    assert made == {"forward": 1, "with_gradient": 0, "backward": 0}  # the class only: every value was kept

"""Runs that survive: resume after SIGKILL, bad input, determinism, and scale-out (issue 4)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cce_bench.data import Sample, load_rgb, seeded_sample
from conftest import ROOT, run_cli

# Small but real: the real model and photos, CCE with few steps, curves of 24 points.
FAST = ["param.values=[1.0,0.5]", "method.M=2", "method.steps=3", "metric.step=2240", "images_per_batch=1"]
TIMING = ["gen_seconds"]


def table_and_records(out):
    records = pd.read_csv(out / "records.csv").drop(columns=TIMING)
    return (out / "table.csv").read_bytes(), records


# -- resume ----------------------------------------------------------------------------------------

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
    while time.time() < deadline and (not part.exists() or len(part.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(part.read_text().splitlines())
    assert 2 <= done_before < 4, "the kill should land mid-run"
    assert not (out / "run.json").exists() and not (out / "table.csv").exists()  # visibly unfinished

    rerun = run_cli(*args, f"out={out}")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done_before} of 4 batches already done" in rerun.stderr
    batches = [json.loads(line)["batch"] for line in part.read_text().splitlines()]
    assert sorted(batches) == [0, 1, 2, 3]  # every batch once: nothing finished was computed again
    ref_table, ref_records = table_and_records(reference)
    table, records = table_and_records(out)
    assert table == ref_table
    pd.testing.assert_frame_equal(records, ref_records)


def test_a_cut_last_line_is_redone(tmp_path):
    from cce_bench.run_folder import RunFolder

    run = RunFolder(tmp_path / "r")
    run.append_batch(0, 0, [{"a": 1}], [])
    with open(run.path / "parts" / "rank0.jsonl", "a") as fh:
        fh.write('{"batch": 1, "records": [{"a": 2')  # a crash in the middle of a write
    assert list(run.finished_batches()) == [0]


def test_another_config_in_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    assert run_cli("sweep", *FAST, "data.n_images=1", f"out={out}").returncode == 0
    result = run_cli("sweep", *FAST, "data.n_images=1", "method.steps=4", f"out={out}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "holds a run of another config (differs in method.steps)" in result.stderr
    again = run_cli("sweep", *FAST, "data.n_images=1", f"out={out}", "num_workers=1")  # not a result setting
    assert again.returncode == 0 and "1 of 1 batches already done" in again.stderr


# -- bad input -------------------------------------------------------------------------------------

def noise(path, size=(40, 30), mode="RGB"):
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode).save(path)


def test_load_rgb_converts_grayscale_cmyk_16bit_and_rgba(tmp_path):
    noise(tmp_path / "gray.png", mode="L")
    noise(tmp_path / "cmyk.jpg", mode="CMYK")
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "white16.png")
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(tmp_path / "grey16.png")
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red, fully transparent on the left half
    rgba[:, 2:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    for name in ("gray.png", "cmyk.jpg", "white16.png", "rgba.png"):
        assert load_rgb(str(tmp_path / name)).mode == "RGB"
    assert np.asarray(load_rgb(str(tmp_path / "white16.png"))).min() == 255
    assert abs(int(np.asarray(load_rgb(str(tmp_path / "grey16.png")))[0, 0, 0]) - 128) <= 1  # scaled, not clipped
    pixels = np.asarray(load_rgb(str(tmp_path / "rgba.png")))
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[0, 3]) == (255, 0, 0)  # over white


@pytest.fixture
def image_tree(tmp_path):
    root = tmp_path / "imagenet" / "val"
    for wnid in ("n02123045", "n07920052"):
        (root / wnid).mkdir(parents=True)
        noise(root / wnid / "a.JPEG")
    noise(root / "n02123045" / "b.png", mode="L")
    full = (root / "n02123045" / "a.JPEG").read_bytes()
    (root / "n07920052" / "truncated.JPEG").write_bytes(full[: len(full) // 2])
    (root / "n07920052" / "garbage.JPEG").write_bytes(b"not an image at all")
    return tmp_path / "imagenet"


def test_corrupt_and_truncated_images_are_skipped_and_recorded(image_tree, tmp_path):
    out = tmp_path / "run"
    result = run_cli("sweep", *FAST, "data=imagenet", f"data.root={image_tree}", "data.n_images=5", f"out={out}")
    assert result.returncode == 0, result.stderr
    skipped = pd.read_csv(out / "skipped.csv")
    assert sorted(skipped["id"]) == ["n07920052/garbage.JPEG", "n07920052/truncated.JPEG"]
    assert "warning: skipped n07920052/garbage.JPEG" in result.stderr
    records = pd.read_csv(out / "records.csv")
    assert set(records["image_id"]) == {"n02123045/a.JPEG", "n02123045/b.png", "n07920052/a.JPEG"}
    assert set(records["label"]) == {281, 967}  # wnid folders give the standard ImageNet indices


@pytest.mark.parametrize("make, args, message", [
    (lambda r: r.mkdir(), [], "no images"),
    (lambda r: (r / "val" / "n02123045").mkdir(parents=True), [], "no images"),
    (None, ["data.n_images=50"], "data.n_images=50 is larger than the 5 images"),
    (None, ["method.gamma=-1"], "gamma=-1 must be >= 0"),
    (None, ["method=GradCAM"], "unknown method 'GradCAM'; known: appb, calm, cce"),
    (None, ["data.n_images=5", "images_per_batch=0"], "images_per_batch=0 must be"),
])
def test_bad_data_and_values_give_one_line(tmp_path, image_tree, make, args, message):
    root = tmp_path / "empty" if make else image_tree
    if make:
        make(root)
    result = run_cli("sweep", "data=imagenet", f"data.root={root}", *args, f"out={tmp_path / 'out'}")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


# -- determinism -----------------------------------------------------------------------------------

def test_seeded_sample_depends_on_seed_only():
    samples = [Sample(f"c{i % 7}/img{i}.JPEG", f"/x/{i}", i % 7) for i in range(100)]
    first = seeded_sample(samples, 10, seed=3, what="x")
    assert first == seeded_sample(list(reversed(samples)), 10, seed=3, what="x")  # listing order does not matter
    assert [s.id for s in first] != [s.id for s in seeded_sample(samples, 10, seed=4, what="x")]
    assert len({s.id for s in first}) == 10


@pytest.mark.slow
def test_same_config_and_seed_give_bitwise_identical_tables(tmp_path):
    for name in ("a", "b"):
        assert run_cli("sweep", *FAST, "data.n_images=2", f"out={tmp_path / name}").returncode == 0
    table_a, records_a = table_and_records(tmp_path / "a")
    table_b, records_b = table_and_records(tmp_path / "b")
    assert table_a == table_b
    pd.testing.assert_frame_equal(records_a, records_b, check_exact=True)
    config = (tmp_path / "a" / "config.yaml").read_text()
    assert "seed: 0" in config and "deterministic: true" in config
    assert json.loads((tmp_path / "a" / "machine.json").read_text())["versions"]["torch"]


# -- scale-out -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_with_gloo_equal_one(tmp_path):
    args = ["sweep", *FAST, "data.n_images=3"]
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
    result = run_cli("sweep", "-m", "method.steps=2,3", "param.values=[1.0]", "data.n_images=1", "method.M=1",
                     "metric.step=2240", f"hydra.sweep.dir={tmp_path / 'multi'}")
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in (tmp_path / "multi").iterdir() if p.is_dir())
    assert [f.name.split("_")[0] for f in folders] == ["0", "1"]
    steps = [json.loads((f / "fingerprint.json").read_text())["settings"]["method"]["steps"] for f in folders]
    assert steps == [2, 3] and all((f / "table.csv").is_file() for f in folders)


def test_slurm_launcher_config_composes():
    result = run_cli("sweep", "hydra/launcher=slurm", "--cfg", "hydra")
    assert result.returncode == 0, result.stderr
    assert "hydra_plugins.hydra_submitit_launcher" in result.stdout and "gpus_per_node" in result.stdout

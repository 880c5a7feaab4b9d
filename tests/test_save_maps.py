"""save_maps=true: the maps a run scores, kept as maps/METHOD.npz, read back by `score` to the same scores,
kept across a resume, and written by explain too."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cce_bench.runs.map_store import MapStore
from helpers import readme_code, run_cli


def test_a_batch_done_twice_keeps_one_copy_and_the_parts_merge_in_batch_order(tmp_path):
    store = MapStore(enabled=True)
    (tmp_path / "parts").mkdir()
    first = torch.rand(2, 4, 4)
    store.keep("gbp", ["b", "a"], torch.zeros(2, 4, 4))
    store.keep("gbp", ["b", "a"], first)  # the batch again (after running out of memory): replaces
    store.write_batch(tmp_path, 0, 0)
    store.keep("gbp", ["c"], torch.ones(1, 4, 4))
    store.write_batch(tmp_path, 1, 10)  # another rank's later batch
    store.keep("gbp", ["c"], torch.full((1, 4, 4), 0.5))
    store.write_batch(tmp_path, 1, 10)  # the same batch redone after a stop: its file replaced
    (written,) = store.merge(tmp_path)
    assert not list((tmp_path / "parts" / "maps").iterdir())  # merged: one copy on disk
    assert store.merge(tmp_path) == [written]  # a finished run run again keeps its merged maps
    with np.load(written) as maps:
        assert maps.files == ["b", "a", "c"]
        np.testing.assert_array_equal(maps["a"], first[1].numpy())
        np.testing.assert_array_equal(maps["c"], np.full((4, 4), 0.5, np.float32))
    off = MapStore()
    off.keep("gbp", ["x"], torch.zeros(1, 4, 4))
    assert off.pending == {} and off.merge(tmp_path / "nowhere") == []


@pytest.mark.slow
def test_saved_maps_score_to_the_same_numbers_and_survive_a_resume(tmp_path):
    out = tmp_path / "compare"
    args = ("compare", "data=photos", "data.n_images=2", "experiment=smoke", "methods=[gbp,cce]",
            "save_maps=true", "metrics=[insertion_deletion,quantus_Sparseness]",
            f"out={out}")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (out / "maps").iterdir()) == ["cce.npz", "cce_M_pro.npz", "cce_M_sup.npz",
                                                                 "gbp.npz"]
    records = pd.read_csv(out / "records.csv").set_index(["method", "image_id"])
    for method in ("gbp", "cce", "cce_M_sup"):
        with np.load(out / "maps" / f"{method}.npz") as maps:
            assert maps.files == ["chelsea", "coffee"] and maps["chelsea"].dtype == np.float32
            assert maps["chelsea"].shape == (224, 224) and maps["chelsea"].max() == 1.0
    for method in ("cce",):  # scored again from the file: the same numbers
        scored = tmp_path / f"score_{method}"
        result = run_cli("score", f"maps={out / 'maps' / f'{method}.npz'}", "data=photos", "data.n_images=2",
                         "experiment=smoke", f"out={scored}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        again = pd.read_csv(scored / "records.csv").set_index("image_id")
        for image_id in ("chelsea", "coffee"):
            for column in ("ins_auc", "del_auc"):
                assert again.loc[image_id, column] == records.loc[(method, image_id), column]  # to 0.0

    # the documentation's example feeds the saved maps to Quantus directly: the run's numbers
    (tmp_path / "run").symlink_to(out)
    (tmp_path / "quantus_on_saved_maps.py").write_text(readme_code("# quantus_on_saved_maps.py"))
    direct = subprocess.run([sys.executable, "quantus_on_saved_maps.py"], cwd=tmp_path, capture_output=True, text=True)
    assert direct.returncode == 0, direct.stderr[-2000:]
    printed = [float(v) for v in direct.stdout.split()]
    assert printed == pytest.approx([records.loc[("gbp", i), "quantus_Sparseness"] for i in ("chelsea", "coffee")],
                                    abs=1e-6)

    # a run stopped after its first image (its part on disk, the second image's not): the second is done
    # again, and the maps hold each image once
    before = np.load(out / "maps" / "gbp.npz")["chelsea"].copy()
    first = {}
    for saved in (out / "maps").iterdir():
        with np.load(saved) as maps:
            first[f"{saved.stem}|chelsea"] = maps["chelsea"]
    (out / "parts" / "maps").mkdir(exist_ok=True)
    np.savez(out / "parts" / "maps" / "rank0_batch0.npz", **first)
    part = out / "parts" / "rank0.jsonl"
    part.write_text(part.read_text().splitlines()[0] + "\n")
    for name in ("run.json", "table.csv", "maps"):
        shutil.rmtree(out / name) if (out / name).is_dir() else (out / name).unlink()
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0 and "1 of 2 batches already done" in result.stderr, result.stderr[-2000:]
    assert not list((out / "parts" / "maps").iterdir())
    with np.load(out / "maps" / "gbp.npz") as maps:
        assert maps.files == ["chelsea", "coffee"]
        np.testing.assert_array_equal(maps["chelsea"], before)
    assert sorted(json.loads((out / "run.json").read_text())["maps"]) == [
        "maps/cce.npz", "maps/cce_M_pro.npz", "maps/cce_M_sup.npz", "maps/gbp.npz"]


@pytest.mark.slow
def test_explain_saves_its_maps_with_cce_two_maps(tmp_path):
    out = tmp_path / "explain"
    result = run_cli("explain", "chelsea", "methods=[gbp,cce]", "method_knobs.cce.M=2", "method_knobs.cce.steps=2",
                     "save_maps=true", f"out={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(out / "maps" / "cce.npz") as unified, np.load(out / "maps" / "cce_M_sup.npz") as sup:
        assert unified.files == sup.files == ["chelsea"]
        assert unified["chelsea"].max() == pytest.approx(1.0) and sup["chelsea"].min() >= 0
    assert (out / "maps" / "gbp.npz").is_file()
    with Image.open(out / "explain.png") as figure:  # one row: the image, GBP, CCE's M_sup, M_pro and unified map
        assert figure.size[0] > 3 * figure.size[1], figure.size  # (a row per method would be two rows, not one)

"""scripts/calibrate_cce.py at a tiny size: its rows, its statistics and its resume."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import ROOT

TINY = [
    "--images",
    "2",
    "--steps",
    "3",
    "--gamma",
    "5",
    "40",
    "--epsilon",
    "8",
    "--alpha",
    "1.0",
    "0.5",
    "--step",
    "12544",
    "--candidates",
    "unit,pixel",
    "--default-gamma",
    "40",
    "--default-alpha",
    "0.5",
    "--blur",
    "0.02",
    "0.1",
]


def calibrate(out, *extra):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "calibrate_cce.py"), *TINY, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_calibration_reports_every_candidate_and_knob_and_resumes(tmp_path):
    first = calibrate(tmp_path)
    assert first.returncode == 0, first.stderr
    table = pd.read_csv(tmp_path / "calibration.csv")
    # per candidate: gamma 5 at alpha 0.5, and the default setting (gamma 40) at alpha 1.0 and 0.5; and the
    # default setting's counterfactuals read off with blur 0.02 and 0.1 at both alphas
    assert set(table["candidate"]) == {
        "unit",
        "pixel",
        "unit+blur0.02",
        "unit+blur0.1",
        "pixel+blur0.02",
        "pixel+blur0.1",
    }
    assert len(table) == 2 * 3 + 4 * 2
    assert sorted(table[table["gamma"] == 40]["alpha"].tolist()) == [0.5] * 6 + [1.0] * 6
    assert (table[table["alpha"] == 1.0]["M_pro share"] == 0).all()
    assert ((table["valid"] >= 0) & (table["valid"] <= 1)).all()
    assert (table["|delta| mean"] > 0).all() and (table["at bound"] >= 0).all()
    assert (table["Diff"] - (table["Ins"] - table["Del"])).abs().max() < 1e-3
    images = pd.read_csv(tmp_path / "images.csv")
    assert images["id"].tolist() == ["chelsea/whole", "coffee/whole"]  # view-major: distinct scenes first
    assert "Paired effect of gamma" in (tmp_path / "calibration.md").read_text()
    # blur 0.02 is the search's own (SEARCH_BLUR): reading the same counterfactuals off again gives the same scores
    default = table[table["gamma"] == 40].set_index(["candidate", "alpha"])
    for candidate in ("unit", "pixel"):
        for alpha in (1.0, 0.5):
            assert default.loc[(f"{candidate}+blur0.02", alpha), "Diff"] == pytest.approx(
                default.loc[(candidate, alpha), "Diff"], abs=1e-3
            )
    # the criterion: Diff at the default alpha minus Diff at alpha 1, paired over the images, by hand
    rows = [json.loads(line) for line in (tmp_path / "settings.jsonl").read_text().splitlines()]
    criterion = pd.read_csv(tmp_path / "criterion.csv").set_index("candidate")
    for candidate in ("unit", "pixel+blur0.1"):
        diff = {r["alpha"]: np.asarray(r["ins"]) - np.asarray(r["del"]) for r in rows
                if r["candidate"] == candidate and r["gamma"] == 40}
        paired = 100 * (diff[0.5] - diff[1.0])
        mean, se = criterion.loc[candidate, "vs alpha 1"].split(" (")
        assert float(mean) == pytest.approx(paired.mean(), abs=0.006)
        assert float(se.rstrip(")")) == pytest.approx(paired.std(ddof=1) / np.sqrt(2), abs=0.006)
    assert (criterion["meets"] == "no").all()  # no alpha 0 was run: the criterion cannot be met
    # a rerun computes nothing again
    second = calibrate(tmp_path)
    assert second.returncode == 0 and "valid" not in second.stdout.split("CCE calibration")[0].split("metric step")[1]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "calibration.csv").drop(columns=["gen s/img"]),
                                  table.drop(columns=["gen s/img"]))


def leaderboard_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("leaderboard_set", ROOT / "scripts" / "leaderboard_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_comparison_set_mirrors_boxes_and_reads_through_pycocotools(tmp_path, lite0):
    from cce_bench.data import create_dataset

    script = leaderboard_script()
    mirrored = script.mirrored_annotations(
        {
            "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 50}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [10, 5, 30, 20]}],
            "categories": [],
        }
    )
    assert mirrored["images"][1] == {"id": 1001, "file_name": "a_mirrored.png", "width": 100, "height": 50}
    assert mirrored["annotations"][1]["bbox"] == [60, 5, 30, 20] and mirrored["annotations"][1]["image_id"] == 1001
    script.write_coco(tmp_path)
    pairs = create_dataset({"name": "coco", "root": str(tmp_path)}, lite0.inputs)
    shipped = create_dataset({"name": "photos_coco"}, lite0.inputs)
    assert len(pairs.samples) == 2 * len(shipped.samples)
    by_id = {s.id: s for s in pairs.samples}
    cup = pairs[[s.id for s in pairs.samples].index("2:cup")]
    cup_mirrored = pairs[[s.id for s in pairs.samples].index("1002:cup")]
    # the mirrored photo's box mask is the photo's mask mirrored (after the same resize and crop; a box edge
    # that falls inside a pixel may round to the other side)
    differ = (cup_mirrored["mask"] != cup["mask"].flip(-1)).float()
    assert cup["mask"].float().mean() > 0.1 and differ.mean() < 0.01 and differ.sum(1).max() <= 2  # an edge column
    assert torch.allclose(cup_mirrored["image"], cup["image"].flip(-1), atol=1e-5)
    assert set(by_id) >= {"1005:bench", "1005:bottle"}


def test_the_leaderboard_summary_pairs_each_method_with_cce_by_hand():
    script = leaderboard_script()
    records = pd.DataFrame({"image_id": ["a", "b", "c"] * 2, "method": ["cce"] * 3 + ["gbp"] * 3,
                            "diff": [0.3, 0.2, 0.4, 0.1, 0.3, 0.2]})
    table = script.paired_to(records, "diff").set_index("method")
    assert list(table.index) == ["cce", "gbp"] and table.loc["cce", "rank"] == 1
    # gbp - cce per image: -0.2, +0.1, -0.2 -> mean -10, sd 17.32, SE 10
    assert table.loc["gbp", "- cce"] == pytest.approx(-10.0) and table.loc["gbp", "- cce SE"] == pytest.approx(10.0)
    assert table.loc["cce", "SE"] == pytest.approx(5.77)

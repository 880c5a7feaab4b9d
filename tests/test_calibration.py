"""scripts/calibrate_cce.py at a tiny size: its rows, its statistics and its resume."""
import subprocess
import sys

import pandas as pd
import pytest

from helpers import ROOT

TINY = ["--images", "2", "--steps", "3", "--gamma", "5", "40", "--epsilon", "8", "--alpha", "1.0", "0.5",
        "--step", "12544", "--candidates", "unit,pixel", "--default-gamma", "40", "--default-alpha", "0.5"]


def calibrate(out, *extra):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "calibrate_cce.py"), *TINY, "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_calibration_reports_every_candidate_and_knob_and_resumes(tmp_path):
    first = calibrate(tmp_path)
    assert first.returncode == 0, first.stderr
    table = pd.read_csv(tmp_path / "calibration.csv")
    # per candidate: gamma 5 at alpha 0.5, and the default setting (gamma 40) at alpha 1.0 and 0.5
    assert set(table["candidate"]) == {"unit", "pixel"}
    assert len(table) == 2 * 3
    assert sorted(table[table["gamma"] == 40]["alpha"].tolist()) == [0.5, 0.5, 1.0, 1.0]
    assert (table[table["alpha"] == 1.0]["M_pro share"] == 0).all()
    assert ((table["valid"] >= 0) & (table["valid"] <= 1)).all()
    assert (table["|delta| mean"] > 0).all() and (table["at bound"] >= 0).all()
    assert (table["Diff"] - (table["Ins"] - table["Del"])).abs().max() < 1e-3
    images = pd.read_csv(tmp_path / "images.csv")
    assert images["id"].tolist() == ["chelsea/whole", "coffee/whole"]  # view-major: distinct scenes first
    assert "Paired effect of gamma" in (tmp_path / "calibration.md").read_text()
    # a rerun computes nothing again
    second = calibrate(tmp_path)
    assert second.returncode == 0 and "valid" not in second.stdout.split("CCE calibration")[0].split("metric step")[1]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "calibration.csv").drop(columns=["gen s"]),
                                  table.drop(columns=["gen s"]))

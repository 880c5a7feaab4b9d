"""Figures, run plots and the report (issue 5)."""
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cce_bench import UserError
from cce_bench.explain import class_index
from cce_bench.figures import display_scale, explanation_figure, overlay_rgb
from cce_bench.models import imagenet_categories
from conftest import run_cli

FAST_CCE = ["method_knobs.cce.steps=4", "method_knobs.cce.M=2"]


def test_overlay_shows_the_image_where_the_map_is_zero_and_colour_where_high():
    image = np.full((4, 4, 3), 0.5)
    saliency = np.zeros((4, 4))
    saliency[0, 0] = 1.0
    out = overlay_rgb(image, saliency)
    assert np.allclose(out[1:, 1:], 0.5)
    assert np.abs(out[0, 0] - 0.5).max() > 0.2  # jet's dark red at full weight, 60% opaque


def test_a_map_with_a_few_hot_pixels_is_drawn_at_its_98th_percentile_not_its_peak():
    # Like a guided-backprop map: 1% of the pixels at 10, the rest spread over [0, 1].
    saliency = np.tile(np.linspace(0, 1, 100), (100, 1))
    saliency[:1] = 10.0
    shown = display_scale(saliency)
    expected_top = np.percentile(saliency, 98)  # by hand: the 98th percentile of the rest, ~0.99
    assert np.allclose(shown[1:], np.clip(saliency[1:] / expected_top, 0, 1))
    assert shown[50, 50] > 0.45  # scaled to the peak (10) it would be 0.05, near transparent
    assert (shown == 1).mean() < 0.03
    assert np.all(display_scale(np.zeros((4, 4))) == 0)
    sparse = np.zeros((10, 10))
    sparse[0, 0] = 2.0  # percentile 0: falls back to the peak
    assert display_scale(sparse)[0, 0] == 1 and display_scale(sparse).sum() == 1


def test_figure_has_one_column_per_panel_and_one_row_per_question(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"label": "a", "image": rng.random((8, 8, 3)), "panels": [("m1", rng.random((8, 8))), ("m2", None)]},
            {"label": "b", "image": rng.random((8, 8, 3)), "panels": [("m1", rng.random((8, 8)))]}]
    path = explanation_figure(rows, tmp_path / "f.png")
    with Image.open(path) as img:
        assert img.size == (int(3.2 * 3 * 100), int(3.4 * 2 * 100))  # 3 columns (image + 2 panels), 2 rows


def test_class_names_and_indices():
    cats = imagenet_categories()
    assert class_index("tiger_cat", cats) == 282 and class_index("Tabby", cats) == 281 and class_index(967, cats) == 967
    with pytest.raises(UserError, match="did you mean 'tiger cat'"):
        class_index("tigercat", cats)


@pytest.mark.slow
def test_explain_why_p_writes_the_three_maps(tmp_path):
    out = tmp_path / "ex"
    result = run_cli("explain", "chelsea", *FAST_CCE, f"out={out}")
    assert result.returncode == 0, result.stderr
    facts = json.loads((out / "explain.json").read_text())
    question = facts["questions"][0]
    assert question["P"] in {"tabby", "tiger cat", "Egyptian cat"} and len(question["Q"]) == 2
    with Image.open(out / "explain.png") as img:
        assert img.size[0] == int(3.2 * 4 * 100)  # image, M_sup, M_pro, unified
        pixels = np.asarray(img.convert("RGB")).astype(int)
    assert pixels.std() > 20  # not a blank canvas


@pytest.mark.slow
def test_explain_two_images_and_several_targets(tmp_path):
    pair = run_cli("explain", "chelsea", "coffee", *FAST_CCE, f"out={tmp_path / 'pair'}")
    assert pair.returncode == 0, pair.stderr
    questions = json.loads((tmp_path / "pair" / "explain.json").read_text())["questions"]
    assert questions[0]["Q"] == questions[1]["P"] and questions[1]["Q"] == questions[0]["P"]  # a toward Q, b toward P
    many = run_cli("explain", "coffee", "targets=[espresso,cup]", "methods=[GCAM+,CE]", f"out={tmp_path / 'many'}")
    assert many.returncode == 0, many.stderr
    with Image.open(tmp_path / "many" / "explain.png") as img:
        assert img.size == (int(3.2 * 3 * 100), int(3.4 * 2 * 100))  # a row per method, a map per target
    bad = run_cli("explain", "no-such-photo.jpg")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    result = run_cli("sweep", "data.n_images=2", "param.values=[1.0,0.7]", "method.M=2", "method.steps=3",
                     "metric.step=2240", f"out={out}")
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_every_sweep_folder_gets_its_plots_and_mean_curves(finished_sweep):
    for name in ("curves.png", "metrics.png", "curves.json"):
        assert (finished_sweep / name).is_file()
    curves = json.loads((finished_sweep / "curves.json").read_text())
    records = pd.read_csv(finished_sweep / "records.csv")
    assert set(curves) == {"1.0", "0.7"} and len(curves["1.0"]["deletion"]) == 24  # ceil(50176 / 2240) + 1
    for value, curve in curves.items():
        mine = records[records["value"].astype(str) == value]
        # both curves meet the clean image's probability: deletion at 0, insertion at 1
        assert curve["deletion"][0] == pytest.approx(mine["target_prob"].mean(), abs=1e-5)
        assert curve["insertion"][-1] == pytest.approx(mine["target_prob"].mean(), abs=1e-5)
        trapezoid = (sum(curve["insertion"]) - curve["insertion"][0] / 2 - curve["insertion"][-1] / 2) / 23
        assert trapezoid == pytest.approx(mine["ins_auc"].mean(), abs=1e-5)


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_report_page_and_its_images_load_in_headless_chromium(finished_sweep, tmp_path):
    result = run_cli("report", str(finished_sweep))
    assert result.returncode == 0, result.stderr
    page = (finished_sweep / "report.html").read_text()
    markdown = (finished_sweep / "report.md").read_text()
    assert "Ins - paper" in page and "Ins - paper" in markdown and "Provenance" in page
    assert "examples.png" in page and "metrics.png" in markdown
    if chromium() is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", "<script>window.addEventListener('load', () => {"
                                  "const all = [...document.images];"
                                  "document.title = 'loaded ' + all.filter(i => i.complete && i.naturalWidth > 0).length"
                                  " + ' of ' + all.length; });</script></body>"))
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    loaded, total = map(int, re.search(r"<title>loaded (\d+) of (\d+)</title>", dom).groups())
    assert total >= 3 and loaded == total  # metrics, curves and examples, all decoded


def test_report_of_an_unfinished_folder_says_so(tmp_path):
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2 and "is not a finished run" in result.stderr

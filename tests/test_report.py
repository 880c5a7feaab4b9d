"""Run plots and `cce-bench report`."""
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from helpers import run_cli


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    result = run_cli(
        "sweep",
        "data.n_images=2",
        "param.values=[1.0,0.7]",
        "method_knobs.cce.M=2",
        "method_knobs.cce.steps=3",
        "metric_knobs.insertion_deletion.step=2240",
        f"out={out}",
    )
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
    # A file name is data, never markup: a PNG named as an HTML payload is shown as its name.
    hostile = "<img src=x onerror=document.body.dataset.pwned=1>.png"
    shutil.copy(finished_sweep / "metrics.png", finished_sweep / hostile)
    result = run_cli("report", str(finished_sweep))
    assert result.returncode == 0, result.stderr
    page = (finished_sweep / "report.html").read_text()
    markdown = (finished_sweep / "report.md").read_text()
    assert "Ins - paper" in page and "Ins - paper" in markdown and "Provenance" in page
    assert "examples.png" in page and "metrics.png" in markdown
    assert "<img src=x" not in page and "<img src=x" not in markdown
    assert "<figcaption>&lt;img src=x onerror=document.body.dataset.pwned=1&gt;.png</figcaption>" in page
    if chromium() is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.replace(
            "</body>",
            "<script>window.addEventListener('load', () => {"
            "const all = [...document.images];"
            "document.title = 'loaded ' + all.filter(i => i.complete && i.naturalWidth > 0).length"
            " + ' of ' + all.length; });</script></body>",
        )
    )
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    loaded, total = map(int, re.search(r"<title>loaded (\d+) of (\d+)</title>", dom).groups())
    assert total >= 4 and loaded == total  # metrics, curves, examples and the hostile name's copy, all decoded
    assert "data-pwned" not in dom  # the name's payload did not run


def test_report_of_an_unfinished_folder_says_so(tmp_path, warm_cli):
    result = warm_cli.run("report", str(tmp_path))
    assert result.returncode == 2 and "is not a finished run" in result.stderr


def test_a_leaderboards_examples_show_every_method_on_the_same_images_by_value(tmp_path, warm_cli, monkeypatch, lite0):
    import torch
    from omegaconf import OmegaConf

    from cce_bench.commands import COMMANDS, report
    from cce_bench.explainers import create_explainer

    out = tmp_path / "run"
    result = warm_cli.run("compare", "methods=[gbp,gradcam_pp]", "data=photos", "data.n_images=2",
                          "metrics=[insertion_deletion]", "metric_knobs.insertion_deletion.step=3136", "device=cpu",
                          f"out={out}")
    assert result.returncode == 0, result.stderr
    drawn = {}
    monkeypatch.setattr(report, "explanation_figure", lambda rows, path: drawn.setdefault("rows", rows) and path)
    records = pd.read_csv(out / "records.csv")
    report.example_grid(out, OmegaConf.load(out / "config.yaml"), COMMANDS["compare"].load(), records)
    rows = drawn["rows"]
    assert len(rows) == 2  # best and worst of two images (the median is one of them)
    from cce_bench.data import create_dataset

    dataset = create_dataset({"name": "photos", "n_images": 2}, lite0.inputs)
    for row in rows:
        image_id = row["label"].split(": ")[1].split("\n")[0]
        titles = [title for title, _ in row["panels"]]
        assert [t.split(" map")[0] for t in titles] == ["GBP", "GCAM+"], titles
        item = next(dataset[i] for i, s in enumerate(dataset.samples) if s.id == image_id)
        target = int(records[records["image_id"] == image_id]["target"].iloc[0])
        for (_, shown), method in zip(row["panels"], ("gbp", "gradcam_pp")):
            mine = create_explainer(method, lite0).attribute(item["image"][None], torch.tensor([target]))[0]
            assert torch.allclose(torch.as_tensor(shown), mine, atol=1e-4), (image_id, method)

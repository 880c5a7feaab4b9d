"""`cce-bench compare`: one row per method with every score, checked by value against the metrics run
here on the same maps; the paper's numbers beside; resumed; rendered by `report`."""
import json

import pandas as pd
import pytest

from cce_bench import insertion_deletion
from cce_bench.data import create_dataset
from cce_bench.explainers import create_explainer, postprocess
from cce_bench.metrics import energy_pointing_game
from cce_bench.metrics.class_sensitivity import class_deviation, other_classes
from cce_bench.metrics.sanity import Randomiser, map_similarities
from cce_bench.runs.scoring import explained_classes
from helpers import readme_command, run_cli


def test_compare_leaderboard_by_value_resumed_and_reported(tmp_path, lite0, warm_cli):
    out = tmp_path / "compare"
    args = ("compare", "experiment=smoke", "methods=[gradcam_pp,calm,cce]", f"out={out}")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv", keep_default_na=False).set_index("method")
    assert set(table.index[:2]) == {"GCAM+", "CCE"} and table.index[2] == "CALM"  # ranked; unavailable last
    assert list(table.columns) == [
        "rank",
        "Ins",
        "Ins SE",
        "Del",
        "Del SE",
        "Diff",
        "Diff SE",
        "Ins (paper)",
        "Del (paper)",
        "Proportion (%)",
        "Proportion SE",
        "paired diff",
        "paired diff SE",
        "Proportion (paper)",
        "images",
        "Class dev",
        "Class dev SE",
        "p (median)",
        "s/img",
        "sanity ρ",
        "sanity",
    ]
    assert table.loc["CALM", "Ins"] == "needs checkpoint"
    assert float(table.loc["CCE", "Ins (paper)"]) == pytest.approx(57.9971)  # Table 1, alpha = 0.7
    assert (
        float(table.loc["GCAM+", "Proportion (paper)"]) == 57.5
        and float(table.loc["CCE", "Proportion (paper)"]) == 61.1
    )
    assert table.loc["GCAM+", "sanity"] in ("passes", "FAILS")
    # photos_coco explains the box's category mapped to ImageNet, a class the model barely believes here: said
    assert float(table.loc["CCE", "p (median)"]) < 0.05
    assert "Warning: the explained classes have median probability" in (out / "table.md").read_text()
    assert "Warning: the explained classes" in result.stderr
    # table.tex for a paper: the same rows, each mean with its SE, the caption, booktabs rules
    latex = (out / "table.tex").read_text().splitlines()
    assert latex[:5] == [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{" + "l" * 16 + "}",
                         r"\toprule"] and r"\bottomrule" in latex
    assert latex[5].startswith(r"rank & method & Ins & Del & Diff & Ins (paper) & Del (paper) & Proportion (\%)")
    rows = {line.split(" & ")[1]: line.split(" & ") for line in latex[7:10]}
    cce_row = table.loc["CCE"]
    assert cce_row["Ins SE"] == "" and rows["CCE"][2] == f"{float(cce_row['Ins']):g}"  # one image: no SE to show
    assert rows["CALM"][2] == "needs checkpoint" and latex[-2].startswith(r"\caption{Every method on the same 1")
    # `cce-bench runs` lists it beside an unfinished one, with its headline: the first row by its ranking score
    (tmp_path / "unfinished").mkdir()
    for name in ("config.yaml", "fingerprint.json"):
        (tmp_path / "unfinished" / name).write_bytes((out / name).read_bytes())
    listed = run_cli("runs", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
             for line in listed.stdout.splitlines()[2:]}
    top = table.index[0]
    assert lines["compare"][:5] == ["compare", "complete", "photos_coco", "efficientnet_lite0", "1"]
    assert table.loc[top, "Proportion SE"] == ""  # one image: no SE, so none is shown
    assert lines["compare"][-1] == f"{top}: Proportion (%) {table.loc[top, 'Proportion (%)']}"
    assert lines["unfinished"][1].startswith("unfinished")

    # Grad-CAM++'s scores, recomputed here on the same pair with the metrics and randomiser called directly
    dataset = create_dataset({"name": "photos_coco", "n_images": 1}, lite0.inputs)
    pair = dataset[0]
    image, mask = pair["image"][None], pair["mask"][None]
    target, _ = explained_classes(lite0, image, pair["allowed"][None], 16)
    explainer = create_explainer("gradcam_pp", lite0)
    raw = explainer.raw_attribute(image, target)
    maps = postprocess(raw, (224, 224))
    scores = insertion_deletion(lite0, image, maps, target, step=12544)
    randomiser = Randomiser(lite0, seed=0)
    with randomiser.randomised(randomiser.blocks):
        raw_random = explainer.raw_attribute(image, target)
    rho = map_similarities(raw, maps, raw_random, postprocess(raw_random, (224, 224)))[0]["spearman_abs"]
    # class deviation: 1 - SSIM of the maps for the explained class and the second class (the default)
    other = other_classes(lite0(image), target, "second")
    deviation = class_deviation(maps, explainer.attribute(image, other))
    records = pd.read_csv(out / "records.csv")
    mine = records[records["method"] == "gradcam_pp"].iloc[0]
    assert mine["image_id"] == pair["image_id"] and mine["target"] == int(target)
    assert mine["ins_auc"] == pytest.approx(float(scores.insertion_auc[0]), abs=1e-4)
    assert mine["del_auc"] == pytest.approx(float(scores.deletion_auc[0]), abs=1e-4)
    assert mine["proportion"] == pytest.approx(float(energy_pointing_game(maps, mask)[0]), abs=1e-4)
    assert mine["sanity_spearman_abs"] == pytest.approx(rho, abs=1e-3)
    assert mine["other_class"] == int(other[0]) and mine["class_deviation"] == pytest.approx(
        float(deviation[0]), abs=1e-4
    )
    assert float(table.loc["GCAM+", "Class dev"]) == pytest.approx(round(mine["class_deviation"], 3))
    assert float(table.loc["GCAM+", "Ins"]) == pytest.approx(round(mine["ins_auc"] * 100, 2))

    again = warm_cli.run(*args)  # a resume with every batch done: only the tables are written again
    assert again.returncode == 0 and "1 of 1 batches already done" in again.stderr
    assert "plan:" not in again.stderr  # nothing left to plan, no rates measured
    assert pd.read_csv(out / "records.csv").drop(columns="seconds").equals(records.drop(columns="seconds"))

    report = warm_cli.run("report", str(out))
    assert report.returncode == 0, report.stderr
    page = (out / "report.html").read_text()
    assert "GCAM+" in page and "Proportion - paper" in page and "leaderboard.png" in page


def test_readme_compare_command_on_images_without_boxes(tmp_path):
    out = tmp_path / "compare"
    shown = readme_command("cce-bench compare methods=[gradcam_pp,gbp,ig,cce] data=photos experiment=smoke")
    result = run_cli(*shown, f"out={out}")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv")
    assert sorted(table["method"]) == ["CCE", "GBP", "GCAM+", "IG"] and "Proportion (%)" not in table
    assert list(table["rank"]) == [1, 2, 3, 4] and table["Diff"].is_monotonic_decreasing  # ranked by Diff
    assert table["sanity"].isin(["passes", "FAILS"]).all() and (table["images"] == 1).all()
    assert (out / "leaderboard.png").is_file() and (out / "curves.png").is_file()
    # a list of metrics means what it says: only its columns, ranked by its first score, its caption alone
    off = run_cli("compare", "experiment=smoke", "data=photos", "methods=[gbp,gradcam_pp]",
                  "metrics=[class_sensitivity]", f"out={tmp_path / 'off'}")
    assert off.returncode == 0, off.stderr
    columns = list(pd.read_csv(tmp_path / "off" / "table.csv"))
    assert columns == ["rank", "method", "images", "Class dev", "Class dev SE", "paired diff", "paired diff SE",
                       "p (median)", "s/img"], columns
    caption = (tmp_path / "off" / "table.md").read_text().splitlines()[0]
    assert "Ranked by Class dev" in caption and "sanity" not in caption and "Ins/Del" not in caption


def test_compare_refuses_an_empty_method_list_in_one_line(tmp_path, warm_cli):
    result = warm_cli.run("compare", "experiment=smoke", "methods=[]", f"out={tmp_path / 'run'}")
    assert result.returncode == 2 and "methods=[] is empty" in result.stderr
    assert not (tmp_path / "run" / "run.json").exists()


def ranked_leaderboard(records, cfg, has_boxes):
    """compare's leaderboard of gbp and cce scored by the suite's insertion/deletion (and pointing game)."""
    from cce_bench.runs.leaderboard import leaderboard, ranking_metric
    from cce_bench.runs.scoring import RunMetrics

    metrics = RunMetrics(["insertion_deletion"] + (["pointing_game"] if has_boxes else []), cfg)
    return leaderboard(records, ["gbp", "cce"], {}, cfg, metrics, ranking_metric(cfg, metrics, has_boxes))


def test_leaderboard_ranks_paired_differences_and_standard_errors_by_hand():
    from omegaconf import OmegaConf

    from cce_bench.tables import t_multiplier

    records = pd.DataFrame({"method": ["gbp"] * 3 + ["cce"] * 3, "image_id": ["a", "b", "c"] * 2,
                            "ins_auc": [0.5, 0.6, 0.9, 0.4, 0.4, 0.4], "del_auc": [0.1, 0.1, 0.2, 0.2, 0.1, 0.3],
                            "proportion": [0.2, 0.4, 0.6, 0.5, 0.5, 0.5], "seconds": [1.0] * 6,
                            "target_prob": [0.9, 0.8, 0.7] * 2})
    cfg = OmegaConf.create(
        {
            "paper": {"pointing_game": "table5_pointing_game.csv",
                      "insertion_deletion": {"table": "table1_alpha.csv", "name": "Table 1", "method": "cce",
                                             "knob": "alpha"}},
            "method_knobs": {"cce": {"alpha": 0.7}},
            "sanity": {"fail_above": 0.5},
        }
    )
    table, caption = ranked_leaderboard(records, cfg, has_boxes=True)
    table = table.set_index("method")
    assert list(table.columns[:7]) == ["rank", "Ins", "Ins SE", "Del", "Del SE", "Diff", "Diff SE"]
    assert list(table.columns[9:14]) == ["Proportion (%)", "Proportion SE", "paired diff", "paired diff SE",
                                         "Proportion (paper)"]
    # GBP: Ins - Del per image 0.4, 0.5, 0.7: sd 0.1528, SE 0.0882 -> 8.82; proportions 0.2, 0.4, 0.6: SE 0.1155
    assert table.loc["GBP", "Diff SE"] == pytest.approx(8.82)
    assert table.loc["GBP", "Proportion SE"] == pytest.approx(11.55)
    # CCE: Ins - Del 0.2, 0.3, 0.1: SE 5.77; equal proportions: SE 0
    assert table.loc["CCE", "Diff SE"] == pytest.approx(5.77) and table.loc["CCE", "Proportion SE"] == 0
    # ranked by the proportion (data with boxes): CCE 50 > GBP 40; GBP - CCE paired: -0.3, -0.1, 0.1
    assert list(table.index) == ["CCE", "GBP"] and list(table["rank"]) == [1, 2]
    assert table.loc["GBP", "paired diff"] == pytest.approx(-10.0) and table.loc[
        "GBP", "paired diff SE"
    ] == pytest.approx(11.55)
    assert pd.isna(table.loc["CCE", "paired diff"])
    assert "too small to tell the rows apart" in caption and "Warning" not in caption
    assert table.loc["GBP", "p (median)"] == pytest.approx(0.8)

    # without boxes: ranked by Diff (GBP 53.33 > CCE 20); CCE - GBP per image -0.2, -0.2, -0.6: -33.33, SE 13.33
    table, caption = ranked_leaderboard(records.drop(columns="proportion"), cfg, has_boxes=False)
    table = table.set_index("method")
    assert list(table.index) == ["GBP", "CCE"]
    assert table.loc["CCE", "paired diff"] == pytest.approx(-33.33) and table.loc[
        "CCE", "paired diff SE"
    ] == pytest.approx(13.33)
    # two standard errors (26.67) would call -33.33 a difference; on 3 images the 95% interval is Student's t with
    # 2 degrees of freedom, 4.30 standard errors (57.4): not told apart
    assert ("On these 3 images no method differs from GBP beyond the 95% interval of the paired difference "
            "(Student's t: 4.30 standard errors on 3 images)") in caption, caption
    assert [round(t_multiplier(n), 3) for n in (2, 3, 10, 10**6)] == [12.706, 4.303, 2.262, 1.96]
    cfg.compare = {"reference": "cce"}
    table, caption = ranked_leaderboard(records.drop(columns="proportion"), cfg, has_boxes=False)
    assert table.set_index("method").loc["GBP", "paired diff"] == pytest.approx(33.33) and "minus CCE's" in caption

    # classes the model barely believes: flagged in the caption
    _, caption = ranked_leaderboard(records.assign(target_prob=1e-5), cfg, has_boxes=True)
    assert "Warning: the explained classes have median probability 1e-05" in caption


def test_the_latex_table_folds_each_se_beside_its_mean_and_escapes_the_text():
    from cce_bench.tables import to_latex

    table = pd.DataFrame({"rank": [1, 2], "method": ["GBP", "my_method"], "Ins": [85.6, 84.3], "Ins SE": [1.08, None],
                          "Proportion (%)": [32.1, 20.0], "Proportion SE": [0.9, 0.5], "Contrast ρ": [0.23, None],
                          "images": [20, 20]})
    assert to_latex(table, "50% of A & B").splitlines() == [
        r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{llllll}", r"\toprule",
        r"rank & method & Ins & Proportion (\%) & Contrast $\rho$ & images \\", r"\midrule",
        r"1 & GBP & 85.6 $\pm$ 1.08 & 32.1 $\pm$ 0.9 & 0.23 & 20 \\",
        r"2 & my\_method & 84.3 & 20 $\pm$ 0.5 & -- & 20 \\", r"\bottomrule", r"\end{tabular}",
        r"\caption{50\% of A \& B}", r"\end{table}"]


def test_a_runs_headline_is_the_leaderboards_first_row_by_its_ranking_or_the_sweeps_best_diff():
    from cce_bench.commands.runs import headline

    board = pd.DataFrame({"rank": [1, 2], "method": ["CCE", "GBP"], "Ins": [80.0, 90.0], "Proportion (%)": [61.1, 50.0],
                          "Proportion SE": [1.2, 2.0]})
    assert headline(board, "... Ranked by Proportion (%); paired diff ...") == "CCE: Proportion (%) 61.1 ± 1.2"
    sweep = pd.DataFrame({"alpha": [1.0, 0.7, 0.0], "Diff": [74.91, 74.86, 70.52], "Diff SE": [0.2, 0.2, 0.34]})
    assert headline(sweep, "") == "alpha=1.0: Diff 74.91 ± 0.2"


def test_compare_refuses_a_reference_it_does_not_run(tmp_path, warm_cli):
    result = warm_cli.run(
        "compare", "experiment=smoke", "methods=[gbp]", "compare.reference=cce", f"out={tmp_path / 'run'}"
    )
    assert result.returncode == 2 and "compare.reference=cce is not among the methods compared (gbp)" in result.stderr


def test_every_published_column_gets_measured_minus_paper_with_its_se_in_both_layouts():
    from cce_bench.commands.pointing_game import beside_paper_by_row
    from cce_bench.tables import beside_paper

    table = pd.DataFrame({"method": ["CCE", "GBP"], "Ins": [50.0, 40.0], "Ins SE": [1.0, 2.0],
                          "Ins (paper)": [49.0, None], "Proportion (%)": [30.0, 20.0],
                          "Proportion SE": [0.5, None], "Proportion (paper)": [27.0, 25.0]})
    shown = beside_paper(table)
    assert list(shown.columns) == ["method", "Ins", "Ins SE", "Ins (paper)", "Ins - paper", "Proportion (%)",
                                   "Proportion SE", "Proportion (paper)", "Proportion - paper"]
    # 50 - 49 = +1.00 within 2 x 1.0; 30 - 27 = +3.00 outside 2 x 0.5; no paper or no SE: no verdict
    assert shown["Ins - paper"].iloc[0] == "+1.00 (SE 1.00, within 2 SE)" and pd.isna(shown["Ins - paper"].iloc[1])
    assert shown["Proportion - paper"].iloc[0] == "+3.00 (SE 0.50)" and pd.isna(shown["Proportion - paper"].iloc[1])
    by_row = pd.DataFrame([["Proportion (%)", 30.0, 20.0], ["Proportion SE", 0.5, 1.0],
                           ["Proportion (paper)", 27.0, 19.0]], columns=["", "CCE", "GBP"])
    last = beside_paper_by_row(by_row).iloc[-1].tolist()
    assert last == ["measured - paper", "+3.00 (SE 0.50)", "+1.00 (SE 1.00, within 2 SE)"]


def test_without_cce_or_the_pointing_game_no_empty_paper_column_and_no_advice_to_read_a_game_not_run():
    from omegaconf import OmegaConf

    from cce_bench.commands.compare import paper_caption
    from cce_bench.runs.leaderboard import leaderboard, ranking_metric
    from cce_bench.runs.scoring import RunMetrics

    cfg = OmegaConf.create({"paper": {"pointing_game": "table5_pointing_game.csv",
                                      "insertion_deletion": {"table": "table1_alpha.csv", "name": "Table 1",
                                                             "method": "cce", "knob": "alpha"}},
                            "method_knobs": {"cce": {"alpha": 0.7}}})
    records = pd.DataFrame({"method": ["gbp"] * 2 + ["ig"] * 2, "image_id": ["a", "b"] * 2,
                            "ins_auc": [0.5, 0.6, 0.4, 0.3], "del_auc": [0.1, 0.2, 0.2, 0.1], "seconds": [1.0] * 4,
                            "target_prob": [0.001] * 4})
    metrics = RunMetrics(["insertion_deletion"], cfg)
    table, caption = leaderboard(records, ["gbp", "ig"], {}, cfg, metrics, ranking_metric(cfg, metrics, False))
    assert not [c for c in table.columns if "(paper)" in c] and paper_caption(cfg, table) == ""
    assert "barely believes" in caption and "pointing game" not in caption  # this run has none
    with_cce = records.assign(method=["gbp", "gbp", "cce", "cce"])
    table, _ = leaderboard(with_cce, ["gbp", "cce"], {}, cfg, metrics, ranking_metric(cfg, metrics, False))
    assert "Ins (paper)" in table and "Proportion (paper)" not in table
    assert paper_caption(cfg, table).startswith("(paper): CCE's insertion/deletion of Table 1 at its alpha")


def test_the_barely_believed_warning_gives_advice_that_fits_the_run():
    from omegaconf import OmegaConf

    from cce_bench.runs.leaderboard import barely_believed

    low = pd.DataFrame({"target_prob": [0.001, 0.002], "proportion": [0.5, 0.4]})
    assert barely_believed(low.assign(target_prob=[0.5, 0.6])) == ""
    random = barely_believed(low, OmegaConf.create({"model": {"random_init": True}, "data": {"name": "photos"}}))
    assert random.endswith("the model has random weights (model.random_init=true), which believe no class.")
    on_photos = barely_believed(low.drop(columns="proportion"), OmegaConf.create({"data": {"name": "photos"}}))
    assert "data=photos" not in on_photos and "pointing game" not in on_photos
    on_coco = barely_believed(low, OmegaConf.create({"data": {"name": "photos_coco"}}))
    assert on_coco.endswith("(data=photos, data=imagenet) and read the pointing game from this run.")


def test_seeds_repeat_each_method_and_report_the_seed_spread_beside_the_image_spread(tmp_path, warm_cli):
    out = tmp_path / "seeds"
    result = warm_cli.run("compare", "methods=[rise,gbp]", "method_knobs.rise.N=20", "seeds=[0,1,2]", "data=photos",
                          "data.n_images=2", "metrics=[insertion_deletion]",
                          "metric_knobs.insertion_deletion.step=2240", f"out={out}")
    assert result.returncode == 0, result.stderr
    records = pd.read_csv(out / "records.csv").assign(diff=lambda r: 100 * (r["ins_auc"] - r["del_auc"]))
    assert len(records) == 3 * 2 * 2 and sorted(records["seed"].unique()) == [0, 1, 2]
    rise, gbp = (records[records["method"] == m].pivot(index="image_id", columns="seed", values="diff")
                 for m in ("rise", "gbp"))
    assert rise.std(axis=1).max() > 0.01 and gbp.std(axis=1).max() < 1e-6  # RISE's masks follow the seed; GBP has none
    table = pd.read_csv(out / "table.csv").set_index("method")
    for label, scores in (("RISE", rise), ("GBP", gbp)):
        per_image = scores.mean(axis=1)  # each image's mean over the seeds
        assert table.loc[label, "Diff"] == pytest.approx(per_image.mean(), abs=0.006)
        assert table.loc[label, "Diff SE"] == pytest.approx(per_image.std(ddof=1) / 2 ** 0.5, abs=0.006)
        assert table.loc[label, "Diff seed SD"] == pytest.approx(scores.mean(axis=0).std(ddof=1), abs=0.006)
    assert "once per seed [0, 1, 2]" in json.loads((out / "run.json").read_text())["caption"]

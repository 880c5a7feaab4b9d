"""`cce-bench merge`: the leaderboards of finished compare runs on the same images as one table, from their
records, with the same numbers each run gave its methods and the paired differences across the runs."""
import pandas as pd
import pytest

SCORES = ["metrics=[insertion_deletion]", "metric_knobs.insertion_deletion.step=3136"]  # 16 steps: for time
COMMON = ["data=photos", "data.n_images=2", *SCORES]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, warm_cli):
    root = tmp_path_factory.mktemp("merge")
    for name, methods in (("a", "methods=[gbp]"), ("b", "methods=[gradcam_pp]")):
        result = warm_cli.run("compare", methods, *COMMON, f"out={root / name}")
        assert result.returncode == 0, result.stderr
    return root


def test_merge_puts_each_runs_numbers_in_one_table_with_paired_differences_across_runs(two_runs, warm_cli):
    result = warm_cli.run("merge", str(two_runs / "a"), str(two_runs / "b"), f"out={two_runs / 'merged'}")
    assert result.returncode == 0, result.stderr
    merged = pd.read_csv(two_runs / "merged" / "table.csv").set_index("method")
    for name in ("a", "b"):
        alone = pd.read_csv(two_runs / name / "table.csv").set_index("method")
        for method in alone.index:
            for column in ("Ins", "Ins SE", "Del", "Diff", "Diff SE", "images"):
                assert merged.loc[method, column] == alone.loc[method, column], (method, column)
    assert set(merged.index) == {"GBP", "GCAM+"} and (two_runs / "merged" / "table.tex").is_file()
    # the paired difference across the two runs, by hand from their records
    records = pd.concat([pd.read_csv(two_runs / n / "records.csv") for n in ("a", "b")])
    diff = (records.assign(d=100 * (records["ins_auc"] - records["del_auc"]))
            .pivot(index="image_id", columns="method", values="d"))
    best, other = ("gbp", "gradcam_pp") if diff["gbp"].mean() >= diff["gradcam_pp"].mean() else ("gradcam_pp", "gbp")
    label = {"gbp": "GBP", "gradcam_pp": "GCAM+"}
    assert merged.loc[label[other], "paired diff"] == pytest.approx((diff[other] - diff[best]).mean(), abs=0.006)
    assert merged.loc[label[best], "rank"] == 1


@pytest.mark.parametrize("second, message", [
    ("a", "method gbp is in both"),
    ("fewer", "differs from"),
])
def test_merge_refuses_runs_that_do_not_share_methods_apart_or_the_same_data(two_runs, warm_cli, second, message):
    if second == "fewer" and not (two_runs / "fewer").exists():
        result = warm_cli.run("compare", "methods=[gradcam_pp]", "data=photos", "data.n_images=1", *SCORES,
                              f"out={two_runs / 'fewer'}")
        assert result.returncode == 0, result.stderr
    result = warm_cli.run("merge", str(two_runs / "a"), str(two_runs / second), f"out={two_runs / 'refused'}")
    assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1], result.stderr
    assert not (two_runs / "refused").exists()

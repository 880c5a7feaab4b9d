"""Overlays and figure grids."""
import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from cce_bench.figures import (
    display_scale,
    explanation_figure,
    grid_rows,
    leaderboard_panels,
    method_grid,
    overlay_rgb,
    plot_leaderboard,
    standard_error_row,
)


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
    long_title = [{"label": "CCE: why tabby (0.17), not the model's answer Egyptian cat (0.38)?\ncounterfactual -> "
                            "Egyptian cat (not valid); valid 1/2\nthird line", "image": rng.random((8, 8, 3)),
                   "panels": [("m1", rng.random((8, 8)))]}]
    with Image.open(explanation_figure(long_title, tmp_path / "g.png")) as img:
        assert img.size[1] > 340  # a row with a five-line title is taller, so the title is not cut off


def blue_panels(path) -> int:
    """The solid blue rectangles of a figure drawn from an all-blue image with all-zero maps (an overlay of a
    zero map is the image itself), counted as connected regions of pure blue pixels."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    blue = (rgb[..., 0] < 10) & (rgb[..., 1] < 10) & (rgb[..., 2] > 245)
    labels, count = ndimage.label(blue)
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes > 0.5 * sizes.max()).sum())  # panels, not specks of anti-aliasing


def test_several_methods_draw_the_image_once_then_a_panel_per_map(tmp_path):
    image = np.zeros((16, 16, 3))
    image[..., 2] = 1.0
    zero = np.zeros((16, 16))
    two_by_three = [[(f"{m}: why {c}", zero) for m in ("GBP", "IG", "CCE")] for c in ("cat", "dog")]
    assert blue_panels(method_grid(image, "chelsea", two_by_three, tmp_path / "grid.png")) == 1 + 6
    assert blue_panels(method_grid(image, "why cat?", [[("GBP", zero)]], tmp_path / "one.png")) == 1 + 1
    rows = [{"label": "GBP: why cat?", "image": image, "panels": [("GBP", zero)]},
            {"label": "IG: why cat?", "image": image, "panels": [("IG", zero)]}]
    assert blue_panels(explanation_figure(rows, tmp_path / "rows.png")) == 2 * 2  # the old layout repeats the image


def test_many_panels_wrap_into_even_rows():
    assert [len(row) for row in grid_rows(list(range(11)))] == [6, 5]
    assert [len(row) for row in grid_rows(list(range(12)))] == [6, 6]
    assert [len(row) for row in grid_rows(list(range(4)))] == [4]
    assert [len(row) for row in grid_rows(list(range(13)))] == [5, 5, 3]


def test_only_measured_bars_get_a_standard_error_bar():
    assert standard_error_row("Proportion (%)") == "Proportion SE"
    assert standard_error_row("Contrastive (%)") == "Contrastive SE"
    assert standard_error_row("Proportion (paper)") is None  # the paper's numbers come without one


def test_the_leaderboard_has_a_panel_per_score_with_bars_only_where_an_se_was_measured(tmp_path):
    table = pd.DataFrame({"method": ["CCE", "GBP"], "Ins": [50.0, 40.0], "Ins SE": [2.0, 3.0], "Del": [20.0, 25.0],
                          "Del SE": [1.0, 1.5], "Diff": [30.0, 15.0], "Diff SE": [2.5, 3.5],
                          "Proportion (%)": [60.0, 55.0], "Proportion SE": [4.0, 5.0],
                          "Proportion (paper)": [61.1, "–"], "Class dev": ["–", "–"]})
    from cce_bench.commands.compare import panels
    from cce_bench.runs.scoring import RunMetrics

    every_panel = panels(RunMetrics(["insertion_deletion", "pointing_game", "class_sensitivity"], None))
    panels = {column: se for _, column, se, _ in leaderboard_panels(table, every_panel)}
    assert panels == {"Ins": "Ins SE", "Del": "Del SE", "Diff": "Diff SE", "Proportion (%)": "Proportion SE",
                      "Proportion (paper)": None}  # no class deviation measured; no SE for the paper's numbers
    table.to_csv(tmp_path / "table.csv", index=False)
    with Image.open(plot_leaderboard(tmp_path, every_panel)) as img:  # 5 panels: 4 in the first row, 1 in the second
        assert img.size[1] > 1.8 * 360 and img.size[0] >= 4 * 320

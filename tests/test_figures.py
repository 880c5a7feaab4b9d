"""Overlays and figure grids."""
import numpy as np
from PIL import Image

from cce_bench.figures import display_scale, explanation_figure, overlay_rgb


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

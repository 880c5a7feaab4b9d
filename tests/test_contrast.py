"""Contrast, measured: class deviation and the other class by hand, the contrastive pointing game's share
by hand on a synthetic box pair, each method's answer to "why P rather than Q?", and the contrastive game
end to end from the command line, checked by value."""
import re

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import structural_similarity

from cce_bench.data import create_dataset
from cce_bench.data.coco import box_mask
from cce_bench.explainers import CCE, Contrast, create_explainer, postprocess
from cce_bench.metrics.class_sensitivity import class_deviation, other_classes
from cce_bench.metrics.pointing_game import contrastive_share, energy_pointing_game
from cce_bench.runs.scoring import explained_classes
from helpers import run_cli


def test_class_deviation_by_hand():
    a = torch.tensor([[[0.0, 0.25], [0.5, 1.0]]])
    reversed_ranks = torch.tensor([[[1.0, 0.5], [0.25, 0.0]]])
    # Spearman of ranks 1 2 3 4 against 4 3 2 1 is -1: deviation 2; a map against itself: 0
    assert class_deviation(a, reversed_ranks, "spearman").item() == pytest.approx(2.0)
    assert class_deviation(a, a, "spearman").item() == pytest.approx(0.0)
    # a constant map carries no ranking: against a ranked one the correlation is 0 (deviation 1)
    assert class_deviation(a, torch.zeros(1, 2, 2), "spearman").item() == pytest.approx(1.0)
    # SSIM: identical maps 1 (deviation 0); two different maps, against scikit-image called directly
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 16, 16)), rng.random((2, 16, 16))
    expected = [1 - structural_similarity(x[i], y[i], data_range=1.0) for i in range(2)]
    np.testing.assert_allclose(class_deviation(torch.tensor(x), torch.tensor(y)).numpy(), expected)
    assert class_deviation(torch.tensor(x), torch.tensor(x)).abs().max() < 1e-12


def test_the_other_class_by_each_rule():
    logits = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3], [2.0, -1.0, 0.0, 1.0, 3.0]])
    targets = torch.tensor([1, 3])  # the second image's target is not its top-1 (class 4)
    assert other_classes(logits, targets, "second").tolist() == [3, 0]  # top-1 and target left out
    assert other_classes(logits, targets, "least").tolist() == [0, 1]
    drawn = other_classes(logits, targets, "random", seed=7, image_ids=["a", "b"])
    # seeded by image: the same class in another batch, never the target
    assert other_classes(logits[1:], targets[1:], "random", seed=7, image_ids=["b"]).tolist() == drawn[1:].tolist()
    many = other_classes(
        torch.zeros(400, 5), torch.full((400,), 2), "random", seed=0, image_ids=[str(i) for i in range(400)]
    )
    assert 2 not in many.tolist() and set(many.tolist()) == {0, 1, 3, 4}


def test_every_declared_choice_is_one_its_module_acts_on():
    """cce_bench/choices.py names the choices (the schema checks values against them without torch); each
    name is one the acting module runs, and a name it does not know is refused."""
    from cce_bench.choices import MAP_FRAMES, OTHER_CLASSES, POINTING_GAMES, SANITY_MODES, SIMILARITIES
    from cce_bench.data.saved_maps import FRAMES
    from cce_bench.metrics.class_sensitivity import SIMILARITY_FUNCTIONS
    from cce_bench.metrics.sanity import MODES

    logits, targets = torch.tensor([[0.1, 0.9, 0.5, 0.7]]), torch.tensor([1])
    for rule in OTHER_CLASSES:
        assert 0 <= int(other_classes(logits, targets, rule, image_ids=["a"])[0]) < 4
    with pytest.raises(ValueError, match="unknown other-class rule"):
        other_classes(logits, targets, "nearest", image_ids=["a"])
    maps = torch.rand(1, 8, 8)
    for similarity in SIMILARITIES:
        assert class_deviation(maps, maps, similarity).abs().max() < 1e-6
    assert set(SIMILARITY_FUNCTIONS) == set(SIMILARITIES)
    assert MODES == tuple(SANITY_MODES) and FRAMES == tuple(MAP_FRAMES)
    assert set(POINTING_GAMES) == {"energy", "contrastive"}  # the two branches of commands/pointing_game.py


def test_contrastive_share_by_hand_on_a_synthetic_box_pair():
    saliency = torch.tensor([[0., 2., 2., 0., 0., 0.],
                             [0., 2., 4., 1., 1., 0.],
                             [0., 0., 0., 1., 1., 0.],
                             [0., 0., 0., 0., 0., 8.]])
    p = box_mask([(1, 0, 2, 2)], width=6, height=4)   # columns 1-2, rows 0-1: 2 + 2 + 2 + 4 = 10
    q = box_mask([(2, 1, 3, 2)], width=6, height=4)   # columns 2-4, rows 1-2: 4 + 1 + 1 + 1 + 1 = 8
    # min-max divides by 8: E_P = 10/8, E_Q = 8/8 (the pixel of value 4 is in both boxes and counts in both)
    share = contrastive_share(saliency[None], p[None], q[None])
    assert share.item() == pytest.approx(10 / 18)
    assert contrastive_share(saliency[None], q[None], p[None]).item() == pytest.approx(8 / 18)
    # energy on neither box: no preference
    only_corner = torch.zeros(1, 4, 6)
    only_corner[0, 3, 5] = 1.0
    assert contrastive_share(only_corner, p[None], q[None]).item() == 0.5
    # the plain game on the same map, for comparison: 10 / 8 of 22 / 8
    assert energy_pointing_game(saliency[None], p[None]).item() == pytest.approx(10 / 22)


def test_each_method_answers_why_p_rather_than_q(tiny_net):
    net = tiny_net.double()
    torch.manual_seed(0)
    images = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    logits = net(images)
    targets = logits.argmax(1)
    order = logits.argsort(1, descending=True)
    contrast = order[:, 3]  # a class the default rules would not pick
    # CE: Grad-CAM of the cross-entropy toward Q; its own rule picks the second class
    ce = create_explainer("contrastive_gradcam", net, target_layer="conv")
    torch.testing.assert_close(ce.attribute(images, Contrast(targets, order[:, 1])), ce.attribute(images, targets))
    assert not torch.allclose(ce.attribute(images, Contrast(targets, contrast)), ce.attribute(images, targets))
    assert ce.answers_contrast() and list(ce.explain(images, Contrast(targets, contrast)).maps) == ["map"]
    # CCE: question 2 is the unified map of the one counterfactual toward Q
    cce = CCE(net, M=3, steps=10, epsilon=32, batch_size=9, target_layer="conv")
    one = cce.with_knobs(M=1).contrastive_maps(images, targets, contrast=contrast[:, None])
    torch.testing.assert_close(cce.attribute(images, Contrast(targets, contrast)),
                               postprocess(one.unified(cce.alpha), (12, 12)))
    assert torch.equal(one.contrast[:, 0], contrast)
    # a method without a contrastive map answers with its map for P
    ig = create_explainer("ig", net, steps=4)
    assert not ig.answers_contrast()
    torch.testing.assert_close(ig.attribute(images, Contrast(targets, contrast)), ig.attribute(images, targets))


def test_cce_answers_with_its_three_maps_by_name_and_any_caller_takes_them(tiny_net):
    """CCE's answer names its maps (the unified map the answer, M_sup and M_pro beside it), each post-processed
    as every method's map; the contrast classes default to its own M most likely other classes."""
    net = tiny_net.double()
    torch.manual_seed(1)
    images = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    targets = net(images).argmax(1)
    cce = CCE(net, M=2, steps=6, epsilon=32, batch_size=4, target_layer="conv")
    answer = cce.explain(images, Contrast(targets))
    assert answer.main == "unified" and set(answer.maps) == {"unified", "M_sup", "M_pro"}
    maps = cce.contrastive_maps(images, targets)
    torch.testing.assert_close(answer.contrast, maps.contrast)
    for name, raw in (("M_sup", maps.sup), ("M_pro", maps.pro), ("unified", maps.unified(cce.alpha))):
        torch.testing.assert_close(answer.maps[name], postprocess(raw, (12, 12)))
    torch.testing.assert_close(cce.attribute(images, targets), answer.answer)  # "why P?" is the same question
    titles = [title for title, _ in answer.titles(0, [f"class{i}" for i in range(10)])]
    q = ", ".join(f"class{int(c)}" for c in maps.contrast[0])
    assert titles == [f"why class{int(targets[0])}: M_sup", f"why not {q}: M_pro", f"unified, alpha={cce.alpha}"]
    assert re.fullmatch(r"counterfactual -> \d+ \((valid|not valid)\); valid [0-2]/2", answer.found[0])  # no names
    assert set(answer.details) == {"valid", "predicted", "counterfactual"}


class QuarterNet(torch.nn.Module):
    """Class 0 reads the top-left quarter of a convolution's output, class 1 the bottom-right quarter."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(5)).abs() * 0.3)
            self.conv.bias.zero_()

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return torch.stack([h[:, :, :8, :8].mean((1, 2, 3)), h[:, :, 8:, 8:].mean((1, 2, 3)), torch.zeros(len(x))], 1)


@pytest.mark.parametrize("readoff", ["layer_contrast", "layer_path", "input"])
def test_m_sup_lies_on_p_and_m_pro_on_q(readoff):
    """Why top-left (class 0) rather than bottom-right (class 1)? M_sup on the top-left quarter, M_pro on the
    bottom-right: two different answers, each where its class's evidence is."""
    net = QuarterNet().eval()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.2
    images[:, :, :8, :8] += 1.0
    images[:, :, 8:, 8:] += 0.8
    targets, contrast = torch.tensor([0, 0]), torch.tensor([[1], [1]])
    cce = CCE(net, M=1, steps=60, epsilon=64, gamma=0.05, target_layer="conv", readoff=readoff, blur_sigma=0.05,
              mean=(0, 0, 0), std=(1, 1, 1))
    maps = cce.contrastive_maps(images, targets, contrast=contrast)
    assert maps.valid.all()
    top_left, bottom_right = (slice(None), slice(0, 8), slice(0, 8)), (slice(None), slice(8, 16), slice(8, 16))
    assert (maps.sup[top_left].mean((1, 2)) > 2 * maps.sup[bottom_right].mean((1, 2))).all()
    assert (maps.pro[bottom_right].mean((1, 2)) > 2 * maps.pro[top_left].mean((1, 2))).all()


def test_the_bundled_set_asks_each_pair_of_categories_both_ways(lite0):
    dataset = create_dataset({"name": "photos_coco", "contrastive": True}, lite0.inputs)
    assert sorted(s.id for s in dataset.samples) == ["3:bench-vs-bottle", "3:bottle-vs-bench",
                                                     "5:bench-vs-bottle", "5:bottle-vs-bench"]
    item = dataset[0]
    assert item["mask"].any() and item["contrast_mask"].any() and not torch.equal(item["mask"], item["contrast_mask"])
    assert not (item["allowed"] & item["contrast_allowed"]).any()


def test_contrastive_pointing_game_end_to_end_by_value(tmp_path, lite0):
    out = tmp_path / "pg"
    result = run_cli("pointing-game", "game=contrastive", "methods=[gradcam_pp,contrastive_gradcam,cce]",
                     "experiment=smoke", "data.n_images=2", f"out={out}")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv")
    rows = table.set_index(table.columns[0])
    assert list(rows.index) == ["Contrastive (%)", "Contrastive SE", "Proportion (%)", "Proportion SE",
                                "Proportion (paper)", "s/img"]
    assert list(rows.columns) == ["GCAM+", "CE", "CCE"] and rows.loc["Proportion (paper)"].isna().all()
    records = pd.read_csv(out / "records.csv")
    assert len(records) == 2 * 3 and records["contrastive"].between(0, 1).all()
    # Grad-CAM++ answers with its map for P: recomputed here on the same question
    dataset = create_dataset({"name": "photos_coco", "contrastive": True, "n_images": 2}, lite0.inputs)
    mine = records[records["method"] == "gradcam_pp"].set_index("image_id")
    for item in (dataset[0], dataset[1]):
        image = item["image"][None]
        target, _ = explained_classes(lite0, image, item["allowed"][None], 16)
        contrast, _ = explained_classes(lite0, image, item["contrast_allowed"][None], 16)
        maps = create_explainer("gradcam_pp", lite0).attribute(image, target)
        share = contrastive_share(maps, item["mask"][None], item["contrast_mask"][None])
        assert mine.loc[item["image_id"], "contrastive"] == pytest.approx(float(share[0]), abs=1e-5)
        assert mine.loc[item["image_id"], "contrast"] == int(contrast[0])
    assert float(rows.loc["Contrastive (%)", "GCAM+"]) == pytest.approx(round(100 * mine["contrastive"].mean(), 2))
    assert "why P rather than Q" in (out / "table.md").read_text() and (out / "table5.png").is_file()

"""`cce-bench explain`: class names, the three questions, several methods and targets."""
import json

import numpy as np
import pytest
from PIL import Image

from cce_bench import UserError
from cce_bench.models import class_index, imagenet_categories
from helpers import run_cli

FAST_CCE = ["experiment=smoke"]


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
    report = run_cli("report", str(out))  # the figure is the result: report says so in one line
    assert report.returncode == 2 and "holds the figures of `cce-bench explain`" in report.stderr, report.stderr
    assert "Traceback" not in report.stderr and not (out / "report.html").exists()


@pytest.mark.slow
def test_explain_two_images_and_several_targets(tmp_path, warm_cli):
    pair = run_cli("explain", "chelsea", "coffee", *FAST_CCE, f"out={tmp_path / 'pair'}")
    assert pair.returncode == 0, pair.stderr
    questions = json.loads((tmp_path / "pair" / "explain.json").read_text())["questions"]
    assert questions[0]["Q"] == questions[1]["P"] and questions[1]["Q"] == questions[0]["P"]  # a toward Q, b toward P
    many = run_cli(
        "explain",
        "coffee",
        "targets=[espresso,cup]",
        "methods=[gradcam_pp,contrastive_gradcam]",
        f"out={tmp_path / 'many'}",
    )
    assert many.returncode == 0, many.stderr
    facts = json.loads((tmp_path / "many" / "explain.json").read_text())
    assert facts["questions"] == [{"targets": ["espresso", "cup"]}]
    with Image.open(tmp_path / "many" / "explain.png") as img:  # the grid: the image once, 2 targets x 2 methods
        assert img.size[0] < int(3.2 * 3 * 100) and img.size[1] < int(3.4 * 2 * 100)  # smaller than a row per method
    bad = warm_cli.run("explain", "no-such-photo.jpg")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_a_target_that_is_not_the_answer_is_said_and_contrasts_skip_improbable_classes():
    import torch

    from cce_bench.commands.explain import asked, default_contrast

    cats = ["Egyptian cat", "tiger cat", "tabby", "window screen", "lynx"]
    probs = torch.tensor([0.378, 0.376, 0.17, 0.001, 0.075])
    assert asked(cats, probs, 0) == "Egyptian cat (0.38)"
    assert asked(cats, probs, 2) == "tabby (0.17), not the model's answer Egyptian cat (0.38)"
    # the next M = 3 classes by probability are tiger cat, tabby, lynx; window screen is below the floor
    assert default_contrast(probs, 0, 4, floor=0.01) == [1, 2, 4]
    assert default_contrast(probs, 0, 4, floor=0.0) == [1, 2, 4, 3]
    # tabby explained: neither tabby nor the model's answer (no change needed) is a contrast; at least one is
    assert default_contrast(probs, 2, 2, floor=0.5) == [1]


def test_two_images_with_pair_false_are_a_row_each_under_every_method_by_value(tmp_path, warm_cli, photos, lite0):

    from cce_bench.explainers import create_explainer

    out = tmp_path / "grid"
    result = warm_cli.run("explain", "chelsea", "coffee", "methods=[gbp,gradcam_pp]", "pair=false", "save_maps=true",
                          "device=cpu", f"out={out}")
    assert result.returncode == 0, result.stderr
    questions = json.loads((out / "explain.json").read_text())["questions"]
    assert [(q["image"], q["method"]) for q in questions] == [("chelsea", "gbp"), ("chelsea", "gradcam_pp"),
                                                              ("coffee", "gbp"), ("coffee", "gradcam_pp")]
    images, ids = photos
    answers = lite0(images).argmax(1)
    for method in ("gbp", "gradcam_pp"):
        saved = np.load(out / "maps" / f"{method}.npz")
        mine = create_explainer(method, lite0).attribute(images, answers)  # each image for its own top-1 class
        for b, image_id in enumerate(ids):
            assert np.allclose(saved[image_id], mine[b].numpy(), atol=1e-4), (method, image_id)
    refused = warm_cli.run("explain", "chelsea", "coffee", "methods=[gbp]", "pair=false", "contrast=cup",
                           f"out={tmp_path / 'refused'}")
    assert refused.returncode == 2 and "pair=false explains each of the two images" in refused.stderr

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


@pytest.mark.slow
def test_explain_two_images_and_several_targets(tmp_path, warm_cli):
    pair = run_cli("explain", "chelsea", "coffee", *FAST_CCE, f"out={tmp_path / 'pair'}")
    assert pair.returncode == 0, pair.stderr
    questions = json.loads((tmp_path / "pair" / "explain.json").read_text())["questions"]
    assert questions[0]["Q"] == questions[1]["P"] and questions[1]["Q"] == questions[0]["P"]  # a toward Q, b toward P
    many = run_cli("explain", "coffee", "targets=[espresso,cup]", "methods=[gradcam_pp,contrastive_gradcam]", f"out={tmp_path / 'many'}")
    assert many.returncode == 0, many.stderr
    with Image.open(tmp_path / "many" / "explain.png") as img:
        assert img.size == (int(3.2 * 3 * 100), int(3.4 * 2 * 100))  # a row per method, a map per target
    bad = warm_cli.run("explain", "no-such-photo.jpg")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr

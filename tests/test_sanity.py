"""The model-parameter randomisation test: which blocks, what randomising them does (and undoes), the
similarity measures against scipy and by hand, a map that ignores the model failing, and the command."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from scipy.stats import spearmanr
from torch import nn

from cce_bench.commands.sanity import score_batch, verdicts
from cce_bench.explainers import Explainer
from cce_bench.metrics.sanity import Randomiser, Sanity, randomisation_blocks, spearman
from cce_bench.runs.map_store import MapStore
from helpers import TinyNet, readme_command, run_cli


class InputEdges(Explainer):
    """A 'method' that never asks the model: the image's own grey levels (signed, normalised)."""

    name, label = "edges", "Edges"

    def _attribute_batch(self, images, targets):
        return images.mean(1)


class InputGradient(Explainer):
    """The gradient of the target's logit, summed over channels (signed)."""

    name, label = "grad", "Gradient"

    def _attribute_batch(self, images, targets):
        return input_gradient(self.model, images, targets)


def input_gradient(model, images, targets):
    with torch.enable_grad():
        x = images.detach().clone().requires_grad_(True)
        model(x).gather(1, targets[:, None]).sum().backward()
    return x.grad.sum(1)


def small_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)).eval()
    with torch.no_grad():  # a trained normalisation layer is not at its initial values
        for tensor in (net[1].weight, net[1].bias, net[1].running_mean):
            tensor.normal_()
        net[1].running_var.uniform_(0.5, 2.0)
    return net


def test_blocks_of_the_paper_models_from_the_logits_down(lite0):
    resnet = [b.name for b in randomisation_blocks(torchvision.models.resnet50(weights=None))]
    assert resnet[0] == "conv1+bn1" and resnet[-1] == "fc" and resnet[-2] == "layer4.2" and len(resnet) == 18
    vgg = [b.name for b in randomisation_blocks(torchvision.models.vgg19(weights=None))]
    assert len(vgg) == 19 and vgg[-3:] == ["classifier.0", "classifier.3", "classifier.6"] and vgg[0] == "features.0"
    assert [b.name for b in randomisation_blocks(lite0)] == [
        "conv_stem+bn1", *[f"blocks.{i}" for i in range(7)], "conv_head+bn2", "classifier"]
    # every parameter of the network is in exactly one block
    owned = [id(p) for b in randomisation_blocks(lite0) for m in b.modules for p in m.parameters(recurse=False)]
    assert sorted(owned) == sorted(id(p) for p in lite0.net.parameters())


def changed(net, trained):
    return {name.split(".")[0] for name, value in net.state_dict().items()
            if value.dtype.is_floating_point and not torch.equal(value, trained[name])}


def test_cascading_randomises_the_top_k_blocks_and_independent_one_and_both_undo_it():
    net = small_net()
    trained = copy.deepcopy(net.state_dict())
    randomiser = Randomiser(net, seed=3)
    assert [b.name for b in randomiser.blocks] == ["0+1", "3", "6"]
    seen = []
    for _block in randomiser.walk("cascading"):
        seen.append(changed(net, trained))
    assert seen == [{"6"}, {"6", "3"}, {"6", "3", "0", "1"}]
    cascading_fc = None
    for _block in randomiser.walk("cascading"):
        cascading_fc = net[6].weight.clone()
        break
    seen = [(block, changed(net, trained)) for block in randomiser.walk("independent")]
    assert seen == [("6", {"6"}), ("3", {"3"}), ("0+1", {"0", "1"})]
    for name, value in net.state_dict().items():
        assert torch.equal(value, trained[name]), name  # the trained weights are back
    with pytest.raises(RuntimeError):
        with randomiser.randomised(randomiser.blocks):
            raise RuntimeError("a method failed")
    assert all(torch.equal(v, trained[k]) for k, v in net.state_dict().items())
    # the same block gets the same weights in every mode; another seed gives others
    with randomiser.randomised(randomiser.blocks[-1:]):
        assert torch.equal(net[6].weight, cascading_fc)
    with Randomiser(net, seed=4).randomised(randomiser.blocks[-1:]):
        assert not torch.equal(net[6].weight, cascading_fc)
    # a normalisation layer is reset to the identity
    with randomiser.randomised(randomiser.blocks[:1]):
        assert torch.equal(net[1].running_var, torch.ones(4)) and torch.equal(net[1].weight, torch.ones(4))


def test_spearman_against_scipy_with_ties_and_the_constant_map_rule():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, (20, 20)).astype(float), rng.normal(size=(20, 20))
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(np.zeros((4, 4)), b[:4, :4]) == 0.0 and spearman(np.ones((4, 4)), np.zeros((4, 4))) == 1.0


def test_a_map_that_ignores_the_model_fails_and_a_gradient_changes_as_computed_independently():
    torch.manual_seed(0)
    net = TinyNet(classes=5)
    images = torch.randn(3, 3, 16, 16)
    explainers = {"edges": InputEdges(net), "grad": InputGradient(net)}
    cfg = OmegaConf.create({"device": "cpu", "batch_size": 8, "seed": 0,
                            "metric_knobs": {"sanity": {"modes": ["cascading", "independent"], "layers": None}}})
    batch = {"image": images, "index": [0, 1, 2], "image_id": ["a", "b", "c"]}
    records, _ = score_batch(net, batch, explainers, Sanity(cfg), MapStore(), cfg)  # the sanity metric's walk
    records = pd.DataFrame(records)
    assert len(records) == 2 * 3 * 2 * 2  # methods x images x modes x blocks (fc, conv)
    edges = records[records["method"] == "edges"]
    assert np.allclose(edges[["spearman", "spearman_abs", "ssim"]], 1.0)
    verdict = verdicts(records, {"edges": "Edges", "grad": "Gradient"}, fail_above=0.5).set_index("method")
    assert verdict.loc["Edges", "verdict"].startswith("FAILS")

    # the gradient after both blocks are randomised, recomputed on a separately built copy of the network
    randomiser = Randomiser(net, seed=0)
    with randomiser.randomised(randomiser.blocks):
        destroyed_state = copy.deepcopy(net.state_dict())
    destroyed = TinyNet(classes=5)
    destroyed.load_state_dict(destroyed_state)
    targets = net(images).argmax(1)
    original, after = input_gradient(net, images, targets), input_gradient(destroyed, images, targets)
    last = records[(records["method"] == "grad") & (records["mode"] == "cascading") & (records["step"] == 2)]
    for i, image_id in enumerate(["a", "b", "c"]):
        row = last[last["image_id"] == image_id].iloc[0]
        assert row["block"] == "conv"
        assert row["spearman"] == pytest.approx(spearmanr(original[i].ravel(), after[i].ravel()).statistic, abs=1e-9)
        assert row["spearman_abs"] == pytest.approx(
            spearmanr(original[i].abs().ravel(), after[i].abs().ravel()).statistic, abs=1e-9)
    assert last["spearman_abs"].mean() < 0.9
    assert not np.allclose(last["spearman"], last["spearman_abs"])  # a signed map: the two measures differ


def test_readme_sanity_command(tmp_path, lite0, photos):
    out = tmp_path / "sanity"
    result = run_cli(*readme_command("cce-bench sanity methods=[gradcam_pp,gbp] "), f"out={out}")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv")
    blocks = ["classifier", "conv_head+bn2", *[f"blocks.{i}" for i in range(6, -1, -1)], "conv_stem+bn1"]
    for mode in ("cascading", "independent"):
        for label in ("GCAM+", "GBP"):
            mine = table[(table["mode"] == mode) & (table["method"] == label)]
            assert mine["block"].tolist() == blocks and mine["step"].tolist() == list(range(1, 11))
    verdict = pd.read_csv(out / "verdict.csv")
    assert verdict["method"].tolist() == ["GCAM+", "GBP"] and (verdict["randomised down to"] == "conv_stem+bn1").all()
    assert (out / "sanity.png").is_file() and "SSIM, independent randomisation" in (out / "table.md").read_text()
    # For magnitude maps (GCAM+ and GBP here: raw maps >= 0) the signed Spearman equals the absolute one,
    # and its panel, a copy, is left out; where they differ (signed maps), all three panels are drawn.
    from PIL import Image

    from cce_bench.figures import plot_sanity

    assert (table["spearman"] == table["spearman_abs"]).all()
    assert Image.open(out / "sanity.png").size[0] == 1000  # two panels of 5 inches at 100 dpi
    table.loc[table["method"] == "GBP", "spearman"] *= -1  # as signed maps would give
    table.to_csv(out / "table.csv", index=False)
    assert Image.open(plot_sanity(out, 0.5)).size[0] == 1500

    # step 1 (the classifier re-initialised), recomputed here with scipy's Spearman
    from cce_bench.explainers import create_explainer, postprocess

    image = photos[0][:1]
    explainer = create_explainer("gradcam_pp", lite0)
    target = lite0(image).argmax(1)
    before = explainer.raw_attribute(image, target)
    randomiser = Randomiser(lite0, seed=0)
    with randomiser.randomised(randomiser.blocks[-1:]):
        after = explainer.raw_attribute(image, target)
    first = table[(table["mode"] == "cascading") & (table["step"] == 1)].iloc[0]
    assert first["spearman_abs"] == pytest.approx(spearmanr(before.ravel(), after.ravel()).statistic, abs=2e-3)
    from skimage.metrics import structural_similarity

    expected_ssim = structural_similarity(postprocess(before, (224, 224))[0].double().numpy(),
                                          postprocess(after, (224, 224))[0].double().numpy(), data_range=1.0)
    assert first["ssim"] == pytest.approx(expected_ssim, abs=2e-3)

"""The Python `cce_bench.compare` on a model whose evidence is known, and the API's answers to wrong arguments."""
from __future__ import annotations

import os

import pytest
import torch

import cce_bench


class QuadrantModel(torch.nn.Module):
    """Class 0's logit is 10 x the mean of the top-left quadrant; class 1's is 0: the evidence is that quadrant."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, x):
        evidence = self.scale * x[:, :, :16, :16].mean((1, 2, 3))
        return torch.stack([evidence, torch.zeros_like(evidence)], 1)


def quadrant(model, images, targets):
    """The true evidence: 1 on the top-left quadrant."""
    maps = torch.zeros(len(images), images.shape[-2], images.shape[-1])
    maps[:, :16, :16] = 1.0
    return maps + torch.linspace(0, 0.01, maps[0].numel()).view(maps.shape[1:])  # ties broken the same way each time


def elsewhere(model, images, targets):
    return 1.0 - quadrant(model, images, targets)


@pytest.fixture
def model_and_images():
    torch.manual_seed(0)
    return QuadrantModel(), torch.rand(4, 3, 32, 32) + 0.5


def test_compare_ranks_own_callables_by_the_protocol_and_writes_nothing(model_and_images, tmp_path, monkeypatch):
    model, images = model_and_images
    monkeypatch.chdir(tmp_path)
    table = cce_bench.compare(model, images, methods=[elsewhere, quadrant], metrics=["insertion_deletion"],
                              overrides=["metric_knobs.insertion_deletion.step=64"])
    assert list(table["method"]) == ["quadrant", "elsewhere"] and list(table["rank"]) == [1, 2]
    assert os.listdir(tmp_path) == []  # nothing written unless asked
    # the row is the protocol's own numbers: the API's insertion_deletion on the same maps
    scores = cce_bench.insertion_deletion(model, images, quadrant(model, images, None), step=64)
    records = table.attrs["records"]
    mine = records[records["method"] == "quadrant"]
    assert mine["ins_auc"].tolist() == pytest.approx(scores.insertion_auc.tolist(), abs=1e-6)
    assert mine["del_auc"].tolist() == pytest.approx(scores.deletion_auc.tolist(), abs=1e-6)
    row = table.set_index("method").loc["quadrant"]
    assert row["Ins"] == pytest.approx(100 * float(scores.insertion_auc.mean()), abs=0.05)
    assert len(records) == 8 and set(records["target"]) == {0}
    assert table.attrs["caption"].startswith("Every method on the same 4 images: Ins/Del = 100 x mean insertion")
    assert "Student's t" in table.attrs["caption"] and "(paper)" not in " ".join(table.columns)


def test_compare_takes_names_knobs_targets_and_writes_where_asked(model_and_images, tmp_path):
    model, images = model_and_images
    table = cce_bench.compare(model, images, methods="rise", metrics="insertion_deletion", targets=1,
                              method_knobs={"rise": {"N": 20}}, out=tmp_path / "run",
                              overrides=["metric_knobs.insertion_deletion.step=256"])
    assert list(table["method"]) == ["RISE"] and set(table.attrs["records"]["target"]) == {1}
    assert sorted(os.listdir(tmp_path / "run")) == ["records.csv", "table.csv", "table.md"]


@pytest.mark.parametrize("call,error,words", [
    (lambda m, x: cce_bench.explain("vgg19", x), TypeError, "model takes a torch.nn.Module, got str: pass "
                                                            "cce_bench.create_model(name)"),
    (lambda m, x: cce_bench.explain(m, x[0]), ValueError, "pass images[None] for one image"),
    (lambda m, x: cce_bench.explain(m, x.numpy()), TypeError, "images takes a float tensor [B, 3, H, W], got ndarray"),
    (lambda m, x: cce_bench.explain(m, (x * 255).to(torch.uint8)), TypeError, "got torch.uint8"),
    (lambda m, x: cce_bench.explain(m, x[..., :2, :2]), ValueError, "too small to explain"),
    (lambda m, x: cce_bench.explain(m, x * float("nan")), ValueError, "hold NaN or infinite values"),
    (lambda m, x: cce_bench.explain(m, x, "gradcam_pp", targets="tabby"), ValueError,
     "targets takes class indices 0..1, got 'tabby' (a name: model.categories.index(name) gives its index)"),
    (lambda m, x: cce_bench.explain(m, x, "gradcam_pp", targets=[7]), ValueError, "got 7"),
    (lambda m, x: cce_bench.explain(m, x, "gradcam_pp", targets=[0, 1]), ValueError, "2 classes for 4 images"),
    (lambda m, x: cce_bench.compare(m, x, methods=[3]), TypeError, "methods takes names and callables, got int"),
    (lambda m, x: cce_bench.compare(m, x, metrics={"insertion_deletion"}), TypeError, "metrics takes a list"),
])
def test_wrong_arguments_are_one_clear_error_naming_the_argument(model_and_images, call, error, words):
    model, images = model_and_images
    with pytest.raises(error) as raised:
        call(model, images)
    assert words in str(raised.value)


def test_one_name_where_a_list_goes_is_a_list_of_one():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    assert cce_bench.load_images("chelsea", model).shape[0] == 1

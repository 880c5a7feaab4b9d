"""Your own method without a fork: `methods=[custom]` by import path (a function, a class, an Explainer subclass)
and methods an installed package declares under the `cce_bench.methods` entry point group."""
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from cce_bench.errors import UserError
from cce_bench.explainers import create_explainer, postprocess
from cce_bench.metrics import insertion_deletion
from helpers import run_cli

USER_CODE = '''
import torch

from cce_bench.explainers import Explainer


def edge_map(model, images, targets, power=1.0):
    """The image's local contrast: a map that ignores the model (a sanity baseline)."""
    grey = images.mean(1)
    dx = (grey[:, :, 1:] - grey[:, :, :-1]).abs()[:, :-1, :]
    dy = (grey[:, 1:, :] - grey[:, :-1, :]).abs()[:, :, :-1]
    return (dx + dy) ** power


class Corner:
    """Instances are called as the function is; built with their own arguments."""

    def __init__(self, side=8):
        self.side = side

    def __call__(self, model, images, targets):
        maps = torch.zeros(len(images), *images.shape[-2:])
        maps[:, :self.side, :self.side] = 1
        return maps


class LogitGradient(Explainer):
    """A subclass of the suite's base class: the gradient of the explained logit, summed over channels."""

    label = "LogitGrad"

    def _attribute_batch(self, images, targets):
        images = images.clone().requires_grad_(True)
        logits = self.model(images)
        (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), images)
        return grad.abs().sum(1)


def wrong_shape(model, images, targets):
    return torch.zeros(len(images) + 1, 4, 4)


def broken(model, images, targets):
    raise RuntimeError("my bug")
'''


@pytest.fixture(autouse=True)
def one_line_errors(monkeypatch):
    """Errors as users see them (not --debug's tracebacks), whatever an earlier test left in the environment."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.delenv("CCE_BENCH_DEBUG", raising=False)


@pytest.fixture(scope="module")
def user_code(tmp_path_factory):
    """A module of the user's on sys.path, as PYTHONPATH puts it there."""
    folder = tmp_path_factory.mktemp("user_code")
    (folder / "my_saliency.py").write_text(USER_CODE)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("my_saliency", None)


def test_a_function_a_class_and_an_explainer_subclass_give_their_maps_by_value(user_code, tiny_net):
    images = torch.rand(2, 3, 16, 16)
    targets = torch.tensor([0, 1])
    function = create_explainer("custom", tiny_net, _target_="my_saliency.edge_map", power=2.0)
    import my_saliency

    expected = postprocess(my_saliency.edge_map(tiny_net, images, targets, power=2.0), (16, 16))
    assert torch.equal(function.attribute(images, targets), expected)
    assert function.label == "edge_map" and function.knobs()["_target_"] == "my_saliency.edge_map"
    again = function.with_knobs(power=1.0)  # rebuilt from its knobs, the path among them
    plain = postprocess(my_saliency.edge_map(None, images, None), (16, 16))
    assert torch.equal(again.attribute(images, targets), plain)

    corner = create_explainer("custom", tiny_net, _target_="my_saliency.Corner", side=4).attribute(images, targets)
    assert corner[:, :4, :4].eq(1).all() and corner.sum() == 2 * 16

    gradient = create_explainer("custom", tiny_net, _target_="my_saliency.LogitGradient")
    x = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(tiny_net(x).gather(1, targets[:, None]).sum(), x)
    assert torch.allclose(gradient.attribute(images, targets), postprocess(grad.abs().sum(1), (16, 16)))
    assert gradient.label == "LogitGrad"


@pytest.mark.parametrize("knobs, message", [
    ({}, "methods=[custom] needs its callable: pass method_knobs.custom._target_=PACKAGE.MODULE.NAME"),
    ({"_target_": "no_such_module.edge_map"}, "cannot import no_such_module (ModuleNotFoundError"),
    ({"_target_": "my_saliency.edge_mop"}, "module my_saliency has no edge_mop"),
    ({"_target_": "my_saliency.edge_map", "powr": 2}, "has no knob powr"),
])
def test_a_custom_method_that_cannot_be_built_is_one_line(user_code, tiny_net, knobs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")):
        create_explainer("custom", tiny_net, **knobs)


@pytest.mark.parametrize("target, message", [
    ("my_saliency.wrong_shape", r"returned maps of shape \(3, 4, 4\): it must return one map per image, "
                                r"\[B, H, W\] with B = 2"),
    ("my_saliency.broken", r"method broken \(my_saliency.broken\) raised RuntimeError: my bug"),
])
def test_a_custom_method_that_fails_says_so_in_one_line(user_code, tiny_net, target, message):
    with pytest.raises(UserError, match=message):
        create_explainer("custom", tiny_net, _target_=target).attribute(torch.rand(2, 3, 8, 8), torch.tensor([0, 1]))


@pytest.mark.slow
def test_compare_ranks_a_custom_function_beside_the_suites_methods(tmp_path, user_code, lite0, photos):
    out = tmp_path / "run"
    result = run_cli("compare", "experiment=smoke", "data=photos", "methods=[custom,gbp]",
                     "method_knobs.custom._target_=my_saliency.edge_map", "method_knobs.custom.power=2",
                     "metrics=[insertion_deletion,sanity]", f"out={out}", cwd=tmp_path,
                     env={"PYTHONPATH": str(user_code)})
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out / "table.csv").set_index("method")
    assert {"edge_map", "GBP"} == set(table.index)
    assert table.loc["edge_map", "sanity"] == "FAILS"  # a map that ignores the model stays the same without it
    import my_saliency

    images = photos[0][:1]
    record = pd.read_csv(out / "records.csv").set_index("method").loc["custom"]
    maps = postprocess(my_saliency.edge_map(lite0, images, None, power=2.0), (224, 224))
    expected = insertion_deletion(lite0, images, maps, torch.tensor([int(record["target"])]), step=12544)
    assert record["ins_auc"] == pytest.approx(float(expected.insertion_auc[0]), abs=1e-6)
    assert record["del_auc"] == pytest.approx(float(expected.deletion_auc[0]), abs=1e-6)


def test_a_custom_methods_unknown_argument_is_refused_before_any_work(tmp_path, user_code, warm_cli):
    result = warm_cli.run("compare", "experiment=smoke", "methods=[custom]", "method_knobs.custom._target_="
                          "my_saliency.edge_map", "method_knobs.custom.powr=2", f"out={tmp_path / 'run'}",
                          env={"PYTHONPATH": str(user_code)})
    assert result.returncode == 2 and "method_knobs.custom has no knob powr: edge_map's knobs are _target_, " \
        "power, batch_size" in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_an_installed_package_s_entry_point_is_listed_and_compared(tmp_path):
    """A tiny package declaring `centre` under `cce_bench.methods`, installed with pip (into a folder on
    PYTHONPATH, as `pip install --target` does), then taken by name."""
    package = tmp_path / "centre_package"
    (package / "centre_method").mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "centre-method"
        version = "0.1"

        [project.entry-points."cce_bench.methods"]
        centre = "centre_method:centre"
    '''))
    (package / "centre_method" / "__init__.py").write_text(textwrap.dedent('''
        import torch


        def centre(model, images, targets, width=0.25):
            h, w = images.shape[-2:]
            rows = torch.linspace(-0.5, 0.5, h).view(-1, 1)
            cols = torch.linspace(-0.5, 0.5, w).view(1, -1)
            return torch.exp(-(rows ** 2 + cols ** 2) / (2 * width ** 2)).expand(len(images), h, w)
    '''))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(package)], check=True, cwd=tmp_path)
    listing = run_cli("methods", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "| centre " in listing.stdout and "an installed package" in listing.stdout
    out = tmp_path / "run"
    result = run_cli("compare", "experiment=smoke", "data=photos", "methods=[centre,gbp]",
                     "method_knobs.centre.width=0.1", "metrics=[insertion_deletion]", f"out={out}", cwd=tmp_path,
                     env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out / "table.csv").set_index("method")
    assert {"centre", "GBP"} == set(table.index) and table["Ins"].notna().all()

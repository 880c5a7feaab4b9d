"""captum's and pytorch-grad-cam's methods by name: each family through the real library on a tiny model,
maps by value against calling the library directly with the documented rule, the suite's own library
methods reproduced by name, knob errors as one line, the listing, and a compare run."""
import pandas as pd
import pytest
import torch
from captum import attr as captum
from omegaconf import OmegaConf
from pytorch_grad_cam import EigenCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from cce_bench import UserError
from cce_bench.explainers import EXPLAINERS, create_explainer, postprocess
from cce_bench.models import Classifier, InputSettings, ModelFacts
from helpers import ROOT


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).double()
    inputs = InputSettings(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    classifier = Classifier("tiny", net, inputs, [f"c{i}" for i in range(10)]).double()
    classifier.facts = ModelFacts(target_layer="2")
    return classifier


@pytest.fixture(scope="module")
def images(model):
    return torch.randn(3, 3, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def targets(model, images):
    return torch.tensor([1, 4, 7])


def black(model, images):
    return (torch.zeros_like(images) - model.mean) / model.std


def input_rule(attribution):
    return attribution.abs().sum(1)


def close(a, b):
    assert torch.allclose(a.double(), b.double(), atol=1e-6), (a - b).abs().max()


@pytest.mark.parametrize("name, direct", [
    ("Saliency", lambda m, x, t: input_rule(captum.Saliency(m).attribute(x, target=t))),
    ("InputXGradient", lambda m, x, t: input_rule(captum.InputXGradient(m).attribute(x, target=t))),
    ("DeepLift", lambda m, x, t: input_rule(captum.DeepLift(m).attribute(x, baselines=black(m, x), target=t))),
    ("IntegratedGradients", lambda m, x, t: input_rule(
        captum.IntegratedGradients(m).attribute(x, baselines=black(m, x), target=t, n_steps=50))),
    ("GuidedGradCam", lambda m, x, t: input_rule(captum.GuidedGradCam(m, m.net[2]).attribute(x, target=t))),
    ("LayerGradCam", lambda m, x, t: captum.LayerGradCam(m, m.net[2]).attribute(x, target=t).sum(1)),
    ("LayerConductance", lambda m, x, t: captum.LayerConductance(m, m.net[2]).attribute(
        x, baselines=black(m, x), target=t, n_steps=50).sum(1)),
    ("Occlusion", lambda m, x, t: input_rule(captum.Occlusion(m).attribute(
        x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), baselines=black(m, x), target=t))),
])
def test_a_captum_method_by_name_is_the_library_call_with_the_map_rule(model, images, targets, name, direct):
    maps = create_explainer(f"captum_{name}", model).attribute(images, targets)
    close(maps, postprocess(direct(model, images.clone().requires_grad_(True), targets).detach(), images.shape[-2:]))


def test_feature_masks_are_square_cells_of_feature_cell_pixels(model, images, targets):
    cells = torch.tensor([[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5], [3, 3, 4, 4, 5], [6, 6, 7, 7, 8]])
    x = images[:, :, :5, :5]
    expected = captum.FeatureAblation(model).attribute(x, baselines=black(model, x), target=targets,
                                                        feature_mask=cells.expand(1, 1, 5, 5))
    maps = create_explainer("captum_FeatureAblation", model, feature_cell=2).attribute(x, targets)
    close(maps, postprocess(input_rule(expected), (5, 5)))


def test_noise_tunnel_wraps_the_named_method_with_its_knobs(model, images, targets):
    torch.manual_seed(3)
    expected = captum.NoiseTunnel(captum.IntegratedGradients(model)).attribute(
        images, nt_type="smoothgrad_sq", nt_samples=4, stdevs=0.2, baselines=black(model, images), target=targets,
        n_steps=5, internal_batch_size=16)
    torch.manual_seed(3)
    maps = create_explainer("captum_NoiseTunnel", model, method="IntegratedGradients", nt_type="smoothgrad_sq",
                            nt_samples=4, stdevs=0.2, n_steps=5, batch_size=16).raw_attribute(images, targets)
    close(maps, input_rule(expected))


def test_a_pytorch_grad_cam_method_by_name_is_the_library_call(model, images, targets):
    cam = EigenCAM(model=model, target_layers=[model.net[2]])
    expected = cam(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    maps = create_explainer("pytorch_grad_cam_EigenCAM", model).raw_attribute(images, targets)
    close(maps, torch.as_tensor(expected))


def test_the_suites_own_library_methods_are_reproduced_by_name(lite0, photos):
    images, _ = photos
    targets = lite0(images).argmax(1)
    ig = create_explainer("ig", lite0, steps=8).attribute(images, targets)
    by_name = create_explainer("captum_IntegratedGradients", lite0, n_steps=8, internal_batch_size=16).attribute(
        images, targets
    )
    # bitwise equal on two threads; on one, float rounding of 2.6e-4 in a raw map of 1.08 (5.5e-4 after min-max
    # on 0.2% of pixels); one path point more (n_steps=9) moves the map by 0.52
    assert torch.allclose(ig, by_name, atol=1e-3), (ig - by_name).abs().max()
    ours = create_explainer("gradcam_pp", lite0).attribute(images, targets)
    theirs = create_explainer("pytorch_grad_cam_GradCAMPlusPlus", lite0).attribute(images, targets)
    assert torch.equal(ours, theirs)
    direct = GradCAMPlusPlus(model=lite0, target_layers=[lite0.net.bn2])(
        input_tensor=images.clone().requires_grad_(True), targets=[ClassifierOutputTarget(int(t)) for t in targets])
    assert torch.allclose(theirs, postprocess(torch.as_tensor(direct), images.shape[-2:]), atol=1e-6)


def test_knobs_are_the_librarys_arguments_and_a_bad_one_is_one_line(model, images, targets):
    with pytest.raises(UserError, match=r"method captum_Occlusion has no knob stride; its knobs: .*strides"):
        create_explainer("captum_Occlusion", model, stride=[3, 8, 8])
    for needs_a_layer in ("LayerGradCam", "GuidedGradCam", "InternalInfluence"):
        with pytest.raises(UserError, match="NoiseTunnel wraps captum's input gradient methods"):
            create_explainer("captum_NoiseTunnel", model, method=needs_a_layer)
    occlusion = create_explainer("captum_Occlusion", model, sliding_window_shapes=[3, 15])
    with pytest.raises(
        UserError, match=r"^captum Occlusion failed on this model with these knobs \(.*sliding_window_shapes=\[3, 15\]"
    ):
        occlusion.attribute(images, targets)
    with pytest.raises(
        UserError, match="baselines='grey' is not valid: it must be one of black, white, zero, black_white"
    ):
        create_explainer("captum_DeepLift", model, baselines="grey")
    with pytest.raises(UserError, match=r"did you mean 'captum_DeepLift'"):
        create_explainer("captum:DeepLift", model)


def test_methods_lists_the_suite_and_both_libraries_with_what_runs_on_the_model(capsys):
    from cce_bench.cli import main

    main(["methods"])
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| name")}
    assert rows["cce"][:3] == ["CCE", "cce-bench", "optimisation"] and rows["cce"][3] == "runs"
    assert rows["captum_DeepLift"][1:4] == ["captum", "gradient", "runs"]
    assert rows["cce"][4].startswith("alpha=0.7, M=5, gamma=20, epsilon=8, steps=50")  # from its knobs class
    assert rows["captum_Occlusion"][4] == "baselines, batch_size, and the library's arguments"
    assert rows["pytorch_grad_cam_EigenCAM"][1] == "pytorch-grad-cam"
    assert "no rule for" in rows["captum_LRP"][3]  # Lite0's ReLU6: captum's LRP cannot run
    assert rows["calm"][3].startswith("needs a checkpoint")
    assert (
        len([n for n in rows if n.startswith("captum_")]) >= 25
        and len([n for n in rows if n.startswith("pytorch_grad_cam_")]) >= 10
    )


@pytest.mark.slow
def test_compare_runs_library_methods_beside_the_suites(tmp_path, warm_cli):
    out = tmp_path / "compare"
    result = warm_cli.run("compare", "methods=[captum_Occlusion,pytorch_grad_cam_EigenCAM,gradcam_pp]", "data=photos",
                          "experiment=smoke", "method_knobs.captum_Occlusion.sliding_window_shapes=[3,56,56]",
                          "method_knobs.captum_Occlusion.strides=[3,56,56]", f"out={out}")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv")
    assert sorted(table["method"]) == ["EigenCAM (grad-cam)", "GCAM+", "Occlusion (captum)"]
    assert list(table["rank"]) == [1, 2, 3] and table["Diff"].is_monotonic_decreasing
    assert table["sanity"].notna().all() and table["Ins"].notna().all()
    assert table["Class dev"].notna().all()  # class deviation runs for library methods by name too
    records = pd.read_csv(out / "records.csv")
    assert set(records["method"]) == {"captum_Occlusion", "pytorch_grad_cam_EigenCAM", "gradcam_pp"}
    assert "sliding_window_shapes:\n    - 3\n    - 56\n    - 56" in (out / "config.yaml").read_text()
    bad = warm_cli.run("compare", "methods=[captum_Occlusion]", "method_knobs.captum_Occlusion.window=[3,8,8]",
                       f"out={tmp_path / 'bad'}")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "has no knob window" in bad.stderr
    assert not (tmp_path / "bad").exists() and ROOT.is_dir()


def test_no_name_of_the_suite_starts_with_a_library_prefix():
    from cce_bench.method_knobs import LIBRARY_PREFIXES, is_library_method

    for name in EXPLAINERS.names():
        assert not any(name.startswith(prefix + "_") for prefix in LIBRARY_PREFIXES), name
        assert not is_library_method(name)
    assert EXPLAINERS.get("gradcam_pp").__module__ == "cce_bench.explainers.gradcam_pp"  # the former prefix's twin


def test_the_former_pytorch_grad_cam_spelling_still_works_with_a_warning(tmp_path, capsys):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3))
    old = create_explainer("gradcam_EigenCAM", model, target_layer="0")
    new = create_explainer("pytorch_grad_cam_EigenCAM", model, target_layer="0")
    assert type(old) is type(new) and old.name == "pytorch_grad_cam_EigenCAM"
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(old.attribute(images, 0), new.attribute(images, 0))
    create_explainer("gradcam_EigenCAM", model, target_layer="0")
    said = [line for line in capsys.readouterr().err.splitlines() if "gradcam_EigenCAM is now called" in line]
    assert len(said) == 1  # once per name


@pytest.mark.slow
def test_the_former_spelling_on_the_command_line_runs_under_the_new_name(tmp_path, warm_cli):
    out = tmp_path / "old"
    result = warm_cli.run("sweep", "method=gradcam_EigenCAM", "method_knobs.gradcam_EigenCAM.eigen_smooth=true",
                          "experiment=smoke", f"out={out}")
    assert result.returncode == 0, result.stderr
    assert "gradcam_EigenCAM is now called pytorch_grad_cam_EigenCAM" in result.stderr
    assert "method_knobs.gradcam_EigenCAM is now method_knobs.pytorch_grad_cam_EigenCAM" in result.stderr
    config = OmegaConf.load(out / "config.yaml")  # the command line as typed, run under the new name
    assert config.method_knobs.gradcam_EigenCAM.eigen_smooth is True
    assert set(pd.read_csv(out / "records.csv")["method"]) == {"pytorch_grad_cam_EigenCAM"}

"""Bad input: one line naming the problem and the fix, exit 2, no traceback."""
import pytest


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda r: r.mkdir(), [], "no images"),
        (lambda r: (r / "val" / "n02123045").mkdir(parents=True), [], "no images"),
        (None, ["data.n_images=50"], "data.n_images=50 is larger than the 5 images"),
        (None, ["method_knobs.cce.gamma=-1"], "method_knobs.cce.gamma=-1 is not valid: it must be a number >= 0"),
        (None, ["method=GradCAM"], "unknown method 'GradCAM' (did you mean 'gradcam_pp'?); known: appb, calm, cce"),
        (
            None,
            ["data.n_images=5", "images_per_batch=0"],
            "images_per_batch=0 is not valid: it must be a whole number >= 1",
        ),
    ],
)
def test_bad_data_and_values_give_one_line(tmp_path, image_tree, make, args, message, warm_cli):
    root = tmp_path / "empty" if make else image_tree
    if make:
        make(root)
    result = warm_cli.run("sweep", "data=imagenet", f"data.root={root}", *args, f"out={tmp_path / 'out'}")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["method_knobs.cce.alpha=1.5"], "method_knobs.cce.alpha=1.5 is not valid: it must be a number >= 0 and <= 1"),
    (["param.values=[0.5,1.2]"], "param.values: 1.2 is not valid for alpha: it must be a number >= 0 and <= 1"),
    (["method_knobs.cce.M=0"], "method_knobs.cce.M=0 is not valid: it must be a whole number >= 1"),
    (["method_knobs.cce.epsilon=0"], "method_knobs.cce.epsilon=0 is not valid: it must be a number > 0 and <= 255"),
    (["model=vgg"], "unknown model 'vgg' (did you mean 'vgg19'?); known: custom, efficientnet_lite0, "
                    "efficientnet_lite1, efficientnet_lite2, parts_cnn, resnet50, vgg19, and timm_NAME, "
                    "torchvision_NAME (cce-bench models lists them)"),
    (["param=delta"], "unknown param 'delta'; known:"),
    (["data=imagenet"], "data.root is not set: pass data.root="),
    (["data=imagenet", "data.root=/nonexistent/imagenet"], "data root '/nonexistent/imagenet' does not exist"),
    (["data=imagenet", "data.root=/proc/version"], "data root '/proc/version' is a file, not a folder"),
    (["data=coco", "data.root=/proc/version"], "data root '/proc/version' is a file, not a folder"),
    (["model=vgg19"], "no weights for vgg19"),
    (["metric_knobs.insertion_deletion.step=0"],
     "metric_knobs.insertion_deletion.step=0 is not valid: it must be a whole number >= 1"),
    (["metric.step=448"], "metric.step is now metric_knobs.insertion_deletion.step"),  # a key of an earlier release
    (["sanity.enabled=false"], "sanity.enabled is gone: name the metrics to score, e.g. metrics=[insertion_deletion"),
    (["device=cuda:0"], "torch sees no CUDA GPU"),
    (["out=/proc/cce-bench-cannot-write"], "cannot be made in /proc"),
])
def test_bad_values_exit_with_one_line_and_no_traceback(tmp_path, args, message, warm_cli):
    result = warm_cli.run("sweep", *args, f"hydra.run.dir={tmp_path}/h", env={"TORCH_HOME": str(tmp_path / "torch")})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("cce-bench: error: "), result.stderr
    assert message in lines[0]

"""Inputs a hostile user would try, with real files: every one gets one line and exit 2, or a skip listed
in skipped.csv, never a traceback, a hang or a half-written file."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from cce_bench.cli import main
from cce_bench.data import bundled_photo_path, create_dataset
from cce_bench.data.coco import pointing_pairs
from cce_bench.errors import describe_error
from helpers import ROOT, run_cli


def one_line(result, message):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("cce-bench: error: "), result.stderr
    assert message in lines[0], lines[0]


def test_files_that_are_not_images_are_skipped_and_listed(tmp_path, image_tree):
    folder = image_tree / "val" / "n02123045"
    os.mkfifo(folder / "pipe.JPEG")                                  # would block any reader forever
    os.symlink(folder / "loop2.JPEG", folder / "loop1.JPEG")        # a symlink loop
    os.symlink(folder / "loop1.JPEG", folder / "loop2.JPEG")
    os.symlink(image_tree / "val" / "loop", image_tree / "val" / "loop")  # a class folder that loops
    Image.new("1", (15000, 15000)).save(folder / "bomb.png")        # 225 Mpx: PIL's decompression-bomb limit
    (folder / os.fsdecode(b"caf\xe9.JPEG")).write_bytes((folder / "a.JPEG").read_bytes())  # Latin-1 name
    out = tmp_path / "run"
    result = run_cli("sweep", "data=imagenet", f"data.root={image_tree}", "method=gradcam_pp", "experiment=smoke",
                     "data.n_images=null", f"out={out}", timeout=300)
    assert result.returncode == 0, result.stderr
    skipped = pd.read_csv(out / "skipped.csv", keep_default_na=False)
    reasons = dict(zip(skipped["image_id"].str.rsplit("/", n=1).str[-1], skipped["reason"]))
    assert "is a FIFO, not a regular file" in reasons["pipe.JPEG"]
    assert "cannot follow" in reasons["loop1.JPEG"] and "symbolic links" in reasons["loop1.JPEG"]
    assert "DecompressionBombError" in reasons["bomb.png"]
    assert reasons["caf\\xe9.JPEG"].startswith("the file name is not valid UTF-8")
    assert reasons["loop"] == f"cannot follow {image_tree / 'val' / 'loop'}: Too many levels of symbolic links"
    records = pd.read_csv(out / "records.csv")
    assert sorted(records["image_id"]) == ["n02123045/a.JPEG", "n02123045/b.png", "n07920052/a.JPEG"]
    assert not list(out.glob(".*.tmp")) and json.loads((out / "run.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "out= is empty"),
    (lambda d: (d / "file.txt").write_text("x"), "is a file, not a folder"),
    (lambda d: (d / "theirs").mkdir() or (d / "theirs" / "run.json").write_text("{}"),
     "holds files that are not a cce-bench run (e.g. 'run.json')"),
])
def test_the_output_folder_is_checked_before_anything_is_written(tmp_path, make, message, warm_cli):
    make(tmp_path)
    target = {"out= is empty": "", "is a file, not a folder": tmp_path / "file.txt"}.get(message, tmp_path / "theirs")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    one_line(warm_cli.run("sweep", f"out={target}"), message)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created, nothing overwritten


def test_a_second_writer_is_refused_and_a_killed_ones_lock_does_not_block_the_resume(tmp_path, warm_cli):
    out = tmp_path / "run"
    first = run_cli("sweep", "experiment=smoke", "method=gradcam_pp", f"out={out}")
    assert first.returncode == 0, first.stderr
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
        "f.seek(0); f.truncate(); f.write('pid 4242 on a-node since now'); f.flush(); print('held', flush=True); "
        "time.sleep(120)"), str(out / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line(warm_cli.run("sweep", "experiment=smoke", "method=gradcam_pp", f"out={out}"),
                 f"out={out} is being written by pid 4242 on a-node since now")
    finally:
        holder.send_signal(signal.SIGKILL)  # killed with the lock held: the kernel drops it
        holder.wait()
    again = warm_cli.run("sweep", "experiment=smoke", "method=gradcam_pp", f"out={out}")
    assert again.returncode == 0 and "1 of 1 batches already done" in again.stderr, again.stderr


def test_two_runs_started_at_once_on_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "cce_bench.cli", "sweep", "method=gradcam_pp", "data.n_images=1", f"out={out}"]
    runs = [subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=str(ROOT))
            for _ in range(2)]
    results = [(r.wait(timeout=600), r.stderr.read()) for r in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is being written by pid" in refused and "Traceback" not in refused
    records = pd.read_csv(out / "records.csv")
    assert records["image_id"].tolist() == ["chelsea"]  # the batch written once


def coco_folder(tmp_path, dataset: dict):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(dataset))
    return tmp_path


@pytest.mark.parametrize("content, message", [
    ({}, "is malformed: it has no list 'images'"),
    ({"images": [{"id": 1}], "annotations": [], "categories": []}, "an entry of 'images' has no 'file_name'"),
    ([1, 2], "is not COCO instances JSON"),
])
def test_a_malformed_coco_file_is_one_line(tmp_path, content, message, warm_cli):
    root = coco_folder(tmp_path, content)
    one_line(warm_cli.run("pointing-game", "data=coco", f"data.root={root}", f"out={tmp_path / 'out'}"), message)


def test_a_coco_annotation_of_a_missing_image_or_without_a_box_is_a_skipped_pair(tmp_path, lite0):
    shipped = json.loads((ROOT / "cce_bench" / "assets" / "photos_coco.json").read_text())
    cup = next(c["id"] for c in shipped["categories"] if c["name"] == "cup")
    shipped["annotations"] += [{"id": 9001, "image_id": 999, "category_id": cup, "bbox": [1, 1, 5, 5], "iscrowd": 0},
                               {"id": 9002, "image_id": shipped["images"][0]["id"], "category_id": cup, "bbox": "wide",
                                "iscrowd": 0}]
    root = coco_folder(tmp_path, shipped)
    for info in shipped["images"]:
        shutil.copy(bundled_photo_path("chelsea").parent / info["file_name"], root / "val2017" / info["file_name"])
    from cce_bench.data import preprocessing

    pairs = pointing_pairs("coco", str(root / "annotations" / "instances_val2017.json"), str(root / "val2017"),
                           preprocessing(*lite0.channel_stats()))
    reasons = {s["image_id"]: s["reason"] for s in pairs.skipped}
    assert reasons["999:cup"] == "an annotation points at image id 999, which the file does not list"
    assert reasons[f"{shipped['images'][0]['id']}:cup"] == "annotation 9002 has no bbox [x, y, w, h] of numbers"
    expected = {s.id for s in create_dataset({"name": "photos_coco"}, lite0.inputs).samples}
    assert {s.id for s in pairs.samples} == expected - {f"{shipped['images'][0]['id']}:cup"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", "alpah=0.5"], "unknown key 'alpah' (did you mean method_knobs.cce.alpha?)"),
        (["sweep", "data.n_imgs=3"], "unknown key 'data.n_imgs' (did you mean data.n_images?)"),
        (["sweep", "data.n_images=abc"], "data.n_images='abc' is not valid: it must be a whole number >= 1, or null"),
        (["sweep", "seed=-1"], "seed=-1 is not valid: it must be a whole number >= 0"),
        (["sweep", "metric_knobs.insertion_deletion.blur_size=4"],
         "metric_knobs.insertion_deletion.blur_size=4 is not valid: it must be an odd whole number >= 1"),
        (["sweep", "method_knobs.cce.M=2.5"], "method_knobs.cce.M=2.5 is not valid: it must be a whole number >= 1"),
        (
            ["sweep", "method_knobs.rise.keep=abc"],
            "method_knobs.rise.keep='abc' is not valid: it must be a number > 0 and < 1, or null",
        ),
        (["sweep", "deterministic=maybe"], "deterministic='maybe' is not valid: it must be true or false"),
        (
            ["compare", "metric_knobs.sanity.modes=[sideways]"],
            "metric_knobs.sanity.modes=['sideways'] is not valid: it must be a list [a,b,...] of cascading, "
            "independent",
        ),
        (["sweep", "model=vgg19,resnet50"], "a list of values needs -m"),
        (["pointing-game", "methods=[]"], "methods=[] is empty"),
        (["sanity", "methods=[]"], "methods=[] is empty"),
        (["sanity", "metric_knobs.sanity.modes=[]"],
         "metric_knobs.sanity.modes=[] is empty: name at least one of cascading, independent"),
        (["pointing-game", "methods=[cce,gbp,cce]"], "methods names cce twice"),
        (["sweep", "param.values=[abc]"], "param.values: 'abc' is not valid for alpha: it must be a number"),
        (
            ["sweep", "param=M", "param.values=[0]"],
            "param.values: 0 is not valid for M: it must be a whole number >= 1",
        ),
        (["sweep", "seed=1e20"], "it must be a whole number >= 0 and <= 4294967295"),
        (["sweep", "metric_knobs.insertion_deletion.blur_sigma=inf"],
         "metric_knobs.insertion_deletion.blur_sigma=inf is not valid: it must be a number >= 0.01 and <= 1000"),
        (
            ["sweep", "data.resize=-5"],
            "data.resize=-5 is not valid: it must be a whole number in 32..4096, or [height, width]",
        ),
        # every knob has a range, checked before any work
        (
            ["sweep", "param=M", "param.values=[1001]"],
            "param.values: 1001 is not valid for M: it must be a whole number >= 1 and <= 998",
        ),
        (
            ["explain", "chelsea", "methods=[gbp]", "data.resize=1"],
            "data.resize=1 is not valid: it must be a whole number in 32..4096",
        ),
        (["explain", "chelsea", "methods=[gbp]", "data.resize=100"], "data.resize=100 is smaller than data.crop=224"),
        (
            ["train-calm", "data.root=/tmp", "lr_head=nan"],
            "lr_head=nan is not valid: it must be a number > 0 and <= 10",
        ),
        (["train-calm", "data.root=/tmp", "momentum=5"], "momentum=5 is not valid: it must be a number >= 0 and < 1"),
        (
            ["sweep", "method_knobs.cce.epsilon=300"],
            "method_knobs.cce.epsilon=300 is not valid: it must be a number > 0 and <= 255",
        ),
        (
            ["sweep", "method_knobs.rise.keep=1"],
            "method_knobs.rise.keep=1 is not valid: it must be a number > 0 and < 1, or null",
        ),
        (
            ["user-study-results", "a.json", "study=s", "confidence=1"],
            "confidence=1 is not valid: it must be a number > 0 and < 1",
        ),
        (["sweep", "num_workers=100000"], "num_workers=100000 is not valid: it must be a whole number >= 0 and <= 256"),
        (["explain", "chelsea", "methods=[gbp]", "out=/proc/cce-bench"], "out=/proc/cce-bench cannot be made in /proc"),
        (["explain", "chelsea", "coffee", "methods=[gbp]"],
         "two images) is asked of one method that answers 'P rather than Q' itself "
         "(methods=[cce,contrastive_gradcam])"),
        (["explain", "chelsea", "target=tabby", "contrast=tabby"], "contrast=tabby is the explained class itself"),
        (["score"], "maps is not set: pass maps="),
        (["frobnicate"], "unknown command 'frobnicate'"),
        # found by the fuzzer (tests/fuzzing.py, scripts/fuzz.py)
        (["compare", "method_knobs.cce=3"], "method_knobs.cce=3: it holds cce's knobs, not one value: set them as "
                                            "method_knobs.cce.KNOB=VALUE"),
        (["user-study", "metric_knobs=1e-300"], "metric_knobs=1e-300: metric_knobs holds keys, not one value"),
        (["compare", "method_knobs=[1]"], "method_knobs=[1]: method_knobs holds keys, not one value"),
        (["sweep", "batch_size=${oc.env:HOME}"], "batch_size: its interpolation cannot be resolved here"),
        (["sweep", "+batch_sizex=1"], "unknown key 'batch_sizex' (did you mean batch_size"),
        (["compare", "+data.n_imagesx=3"], "unknown key 'data.n_imagesx' (did you mean data.n_images?): a + adds a "
                                           "key, and nothing here reads this one"),
        (["explain", "chelsea", "contrast=1e-300"], "contrast=1e-300 is not valid: it must be a class name"),
        (["explain", "chelsea", "targets=tabby"], "targets='tabby' is not valid: it must be a list [a,b,...], each a "
                                                  "class name (tabby, tiger_cat) or index (281), or null"),
        (["train-parts", "model.world=1e-300"], "model.world=1e-300 is not valid: it must be a node of keys"),
        (["compare", "model=custom", "model._target_=a.b", "model.std=[1,0,1]"],
         "model.std=[1, 0, 1] is not valid: it must be a list [a,b,...], each a number > 0"),
        (["compare", "method_knobs.cce.std=[1,0,1]"], "method_knobs.cce.std=[1, 0, 1] is not valid"),
        (["compare", "metric_knobs.insertion_deletion.blur_sigma=1e-300"],
         "metric_knobs.insertion_deletion.blur_sigma=1e-300 is not valid: it must be a number >= 0.01 and <= 1000"),
        (["sweep", "out=a'b"], "\"out=a'b\" cannot be read as KEY=VALUE: a value that holds quotes, '=', brackets or "
                               "letters outside ASCII goes in quotes, as \"out='VALUE'\""),
        (["sweep", "out=é"], "'out=é' cannot be read as KEY=VALUE"),
        (["user-study", "sets=7"], "sets=7 is more than the 6 bundled photos: pass sets=6 or fewer"),
        (["compare", "methods=[captum_LayerGradCam]", "method_knobs.captum_LayerGradCam.layer=nope"],
         "the model has no layer 'nope': pass method_knobs.captum_LayerGradCam.layer=DOTTED.PATH"),
        (["compare", "methods=[gradcam_pp]", "method_knobs.gradcam_pp.target_layer=classifier"],
         "layer 'classifier' gives [1, 1000] for one image, not a map per channel [B, C, H, W]: pass "
         "method_knobs.gradcam_pp.target_layer=DOTTED.PATH naming a convolutional layer"),
        (["compare", "methods=[gradcam_pp]", "model.target_layer=global_pool"],
         "layer 'global_pool' gives [1, 1280] for one image, not a map per channel [B, C, H, W]: pass "
         "model.target_layer=DOTTED.PATH"),
        (["compare", "methods=[captum_Occlusion]", "method_knobs.captum_Occlusion.strides=-4"],
         "Occlusion (captum) strides=-4 is not valid: it must be a whole number >= 1 or a list [a,b,...], each a "
         "whole number >= 1 (method_knobs.captum_Occlusion.strides)"),
        (["compare", "methods=[gbp]", "metrics=[quantus_FaithfulnessCorrelation]",
          "metric_knobs.quantus_FaithfulnessCorrelation.nr_runs=0"],
         "metric_knobs.quantus_FaithfulnessCorrelation.nr_runs=0 is not valid: it counts something, so it must be "
         "at least 1"),
        (["compare", "methods=[gbp]", "metrics=[quantus_FaithfulnessCorrelation]",
          "metric_knobs.quantus_FaithfulnessCorrelation.nr_runs=abc"],
         "metric_knobs.quantus_FaithfulnessCorrelation.nr_runs='abc' is not valid: it must be a whole number"),
        (["compare", "methods=[gbp]", "metrics=[quantus_FaithfulnessCorrelation]",
          "metric_knobs.quantus_FaithfulnessCorrelation.perturb_func=numpy.mean"],
         "perturb_func='numpy.mean' is not valid: it takes a Python function, which the command line cannot give"),
        (["compare", "methods=[gbp]", "metrics=[quantus_Sparseness]", "metric_knobs.quantus_Sparseness.abs=3"],
         "metric_knobs.quantus_Sparseness.abs=3 is not valid: it must be true or false"),
    ],
)
def test_typos_types_ranges_and_empty_lists_are_one_line(tmp_path, args, message, warm_cli):
    out = [] if any(a.startswith("out=") for a in args) else [f"out={tmp_path / 'out'}"]
    one_line(warm_cli.run(*args, *out), message)
    assert list(tmp_path.iterdir()) == []  # nothing written: refused before Hydra made the folder, or removed


def test_an_output_folder_inside_a_file_is_one_line(tmp_path, warm_cli):
    (tmp_path / "file").write_text("x")
    one_line(
        warm_cli.run("sweep", f"out={tmp_path / 'file' / 'run'}"), f"cannot be made: {tmp_path / 'file'} is a file"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_run_refused_after_its_folder_was_made_leaves_no_folder(tmp_path):
    """The default folder (results/runs/<time>_explain) is made by Hydra before the run reads its input: a
    run that stops there removes it, and the folders made above it."""
    one_line(
        run_cli("explain", "chelsea", "methods=[gbp]", "target=5000", cwd=tmp_path),
        "class index 5000 is outside 0..999",
    )
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "results" / "runs").mkdir(parents=True)
    one_line(run_cli("explain", str(tmp_path / "no_such.png"), "methods=[gbp]", cwd=tmp_path), "does not exist")
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == ["results", "results/runs"]


def test_a_decompression_bomb_to_explain_is_the_inputs_problem(tmp_path, warm_cli):
    Image.new("1", (15000, 15000)).save(tmp_path / "bomb.png")
    result = warm_cli.run("explain", str(tmp_path / "bomb.png"), "methods=[gbp]", f"out={tmp_path / 'out'}")
    one_line(result, f"cannot read {tmp_path / 'bomb.png'}: DecompressionBombError: Image size (225000000 pixels)")
    assert "bug in cce-bench" not in result.stderr and not (tmp_path / "out").exists()


def test_names_are_data_not_markup_in_figures(tmp_path):
    """Matplotlib reads `$...$` as a formula: an image named so is drawn as its name."""
    for photo, name in (("chelsea", "cat_$\\foo^$.JPEG"), ("coffee", "b_$x$.png")):
        Image.open(bundled_photo_path(photo)).convert("RGB").save(tmp_path / name)
    files = sorted(str(p) for p in tmp_path.iterdir())
    result = run_cli("explain", *files, "method_knobs.cce.M=1", "method_knobs.cce.steps=2", f"out={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    labels = json.loads((tmp_path / "out" / "explain.json").read_text())
    assert (tmp_path / "out" / "explain.png").stat().st_size > 10_000 and labels


def test_an_unexpected_error_is_one_line_that_says_how_to_report_it_and_debug_shows_it(monkeypatch, capsys, tmp_path):
    message, code = describe_error(TypeError("unsupported operand"))
    assert code == 2 and message.startswith("unexpected TypeError: unsupported operand") and "--debug" in message

    def broken(cfg):
        raise KeyError("a key nobody expected")

    from cce_bench.commands import CommandEntry

    monkeypatch.setattr(CommandEntry, "load", lambda entry: type("Broken", (), {"run": staticmethod(broken)}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", f"out={tmp_path / 'a'}"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "unexpected KeyError" in err[0] and "bug in cce-bench" in err[0]
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # --debug sets it to 1: restored after the test
    with pytest.raises(KeyError):
        main(["sweep", "--debug", f"out={tmp_path / 'b'}"])


@pytest.mark.parametrize("run_json", ['{"status": "complete", "tool": "another"}', "not json at all", "[1, 2]"])
def test_report_of_another_tools_folder_is_one_line(tmp_path, run_json, warm_cli):
    (tmp_path / "run.json").write_text(run_json)
    one_line(warm_cli.run("report", str(tmp_path)), "is not a finished cce-bench run")


@pytest.mark.parametrize("field, value", [("width", "wide"), ("height", -5), ("width", 1.5), ("height", None),
                                          ("width", True), ("width", 1e30), ("height", 65536)])
def test_an_image_entry_with_a_size_that_is_not_pixels_skips_its_pairs(tmp_path, lite0, field, value):
    from cce_bench.data import preprocessing

    shipped = json.loads((ROOT / "cce_bench" / "assets" / "photos_coco.json").read_text())
    first = shipped["images"][0]
    first[field] = value
    root = coco_folder(tmp_path, shipped)
    pairs = pointing_pairs("coco", str(root / "annotations" / "instances_val2017.json"), str(root / "val2017"),
                           preprocessing(*lite0.channel_stats()))
    reasons = [s["reason"] for s in pairs.skipped if s["image_id"].startswith(f"{first['id']}:")]
    assert reasons and all(
        f"image {first['id']} has width" in r and "whole numbers of pixels > 0" in r for r in reasons
    )


COCO_FIELDS = [("images", f) for f in ("id", "file_name")] + [("categories", f) for f in ("id", "name")] + \
    [("annotations", f) for f in ("image_id", "category_id", "iscrowd", "id", "bbox")]


@pytest.mark.parametrize("part, field", COCO_FIELDS)
def test_a_coco_field_of_any_wrong_type_is_one_line_or_a_skipped_pair(tmp_path, part, field):
    from cce_bench.data import preprocessing
    from cce_bench.errors import UserError

    for value in ("x", [1], None, 1.5, 5, {"a": 1}, True):
        shipped = json.loads((ROOT / "cce_bench" / "assets" / "photos_coco.json").read_text())
        for entry in shipped[part]:  # every entry: the first alone may take part in no evaluable pair
            entry[field] = value
        folder = tmp_path / f"{field}{len(str(value))}{type(value).__name__}"
        folder.mkdir()
        root = coco_folder(folder, shipped)
        try:
            pointing_pairs("coco", str(root / "annotations" / "instances_val2017.json"), str(root / "val2017"),
                           preprocessing((0.5,) * 3, (0.5,) * 3))
        except UserError as exc:
            assert "\n" not in str(exc) and "instances_val2017.json" in str(exc), exc


def test_an_empty_npz_of_maps_is_one_line(tmp_path):
    from cce_bench.data.saved_maps import SavedMaps
    from cce_bench.errors import UserError

    (tmp_path / "maps.npz").write_bytes(b"")
    with pytest.raises(UserError, match=r"maps=.*maps.npz cannot be read as a .npz \(.*\): save it with np.savez"):
        SavedMaps(str(tmp_path / "maps.npz"))


def test_a_curve_of_few_points_is_warned_about_when_the_model_sets_the_crop(capsys):
    from cce_bench.composing import compose_checked
    from cce_bench.models import create_model
    from cce_bench.runs.runtime import record_model_settings

    cfg = compose_checked("compare", ["metric_knobs.insertion_deletion.step=999999"])
    assert cfg.data.crop is None  # the model's input side, filled in when the model is built
    record_model_settings(cfg, create_model("efficientnet_lite0"))
    assert "metric_knobs.insertion_deletion.step=999999 gives 1 points on each insertion/deletion curve" in \
        capsys.readouterr().err


HOSTILE_MODULE = '''
import sys
import torch
from torch import nn

def exits(**kw):
    sys.exit(3)

class Pooled(nn.Module):  # a network of fixed operations: no parameters, no buffers
    def forward(self, x):
        return x.mean((2, 3)).repeat(1, 4)

def without_parameters(**kw):
    return Pooled()

def quits(model, images, targets):
    sys.exit(0)
'''


def test_models_and_methods_that_exit_or_have_no_parameters_are_one_line_or_run(tmp_path, monkeypatch):
    import torch

    from cce_bench.errors import UserError
    from cce_bench.explainers import create_explainer
    from cce_bench.models import create_model

    (tmp_path / "hostile_models.py").write_text(HOSTILE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match=r"model._target_=hostile_models.exits called sys.exit\(3\)"):
        create_model("custom", _target_="hostile_models.exits")
    path = os.pathsep.join([str(tmp_path), str(ROOT)])
    explained = run_cli("explain", "chelsea", "model=custom", "model._target_=hostile_models.without_parameters",
                        "methods=[gbp]", f"out={tmp_path / 'run'}", env={"PYTHONPATH": path})
    assert explained.returncode == 0, explained.stderr  # a model of fixed operations runs where it can
    model = create_model("custom", _target_="hostile_models.without_parameters")
    images = torch.rand(2, 3, 32, 32)
    quits = create_explainer("custom", model, _target_="hostile_models.quits")
    with pytest.raises(UserError, match=r"called sys.exit\(0\): a method must return maps or raise"):
        quits.attribute(images, torch.tensor([0, 1]))


@pytest.mark.parametrize("name", ["torchvision_resnet18", "timm_resnet18"])
def test_a_download_without_network_is_one_line_at_once(tmp_path, monkeypatch, name):
    import socket

    from cce_bench.errors import UserError
    from cce_bench.models import create_model

    def unreachable(address, timeout=None):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for variable in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(UserError, match=r"model.download=true cannot reach (download.pytorch.org|huggingface.co) "
                                         r"\(Name or service not known\) for .*: put .* on a machine with network"):
        create_model(name, download=True)


def test_a_library_metric_that_scored_no_image_does_not_complete_the_run():
    from omegaconf import OmegaConf

    from cce_bench.errors import UserError
    from cce_bench.runs.scoring import RunMetrics

    metrics = RunMetrics(["insertion_deletion", "quantus_Sparseness"], OmegaConf.create({"metric_knobs": {}}))
    scored = pd.DataFrame({"method": ["gbp", "ig"], "ins_auc": [0.5, 0.4], "del_auc": [0.1, 0.2],
                           "quantus_Sparseness": [0.3, None]})
    metrics.check_scored(scored)  # one value is a result
    metrics.failures["quantus_Sparseness"] = "the library raised ValueError: no"
    with pytest.raises(UserError, match=r"quantus_Sparseness scored no image \(the library raised ValueError: no\): "
                                        r"fix metric_knobs.quantus_Sparseness.KNOB .*not marked complete"):
        metrics.check_scored(scored.assign(quantus_Sparseness=[None, None]))


def test_a_score_run_that_scored_nothing_removes_the_folder_it_made(tmp_path, warm_cli):
    import numpy as np

    np.savez(tmp_path / "maps.npz", chelsea=np.full((224, 224), np.nan, dtype=np.float32))
    out = tmp_path / "made" / "run"
    result = warm_cli.run("score", f"maps={tmp_path / 'maps.npz'}", "data=photos", f"out={out}")
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and last.startswith("cce-bench: error: no image of photos could be scored (2 "
                                                      "skipped, e.g. chelsea: "), result.stderr
    assert not (tmp_path / "made").exists()  # nothing finished: no folder left looking like a run

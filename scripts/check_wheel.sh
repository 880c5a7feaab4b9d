#!/usr/bin/env bash
# The suite as a user installs it: build the wheel, install it (not editable) into a fresh virtual
# environment, and run every command from a folder outside the checkout at a tiny size, checking that
# each writes its table and finds its configs and the paper's numbers.
#
#   bash scripts/check_wheel.sh                    # CPU; torch from TORCH_SPEC (see below)
#   DEVICE=cuda bash scripts/check_wheel.sh        # the same on a GPU
#
# TORCH_SPEC: what pip installs beside the wheel (default: "torch==2.14.1 torchvision==0.29.1", as CI);
# set TORCH_SPEC=system to make the environment with --system-site-packages and use the torch already
# installed (a GPU box with its own CUDA build of torch). WHEELS=DIR: install the dependencies offline
# from DIR (pip --no-index --find-links DIR). VENV=DIR: make the environment there and keep it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
device="${DEVICE:-cpu}"
torch_spec="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
work="$(mktemp -d "${TMPDIR:-/tmp}/cce-bench-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
venv="${VENV:-$work/venv}"
step() { printf '\n== %s\n' "$*"; }

step "building the wheel"
python3 -m pip wheel --quiet --no-deps -w "$work/dist" "$repo"
wheel="$(ls "$work"/dist/cce_bench-*.whl)"
echo "$wheel"

step "installing it into a fresh environment"
pip_offline=()
[[ -n "${WHEELS:-}" ]] && pip_offline=(--no-index --find-links "$WHEELS")
if [[ "$torch_spec" == system ]]; then
    python3 -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install --quiet "${pip_offline[@]}" "$wheel"
else
    python3 -m venv "$venv"
    # shellcheck disable=SC2086  # the spec is a list of requirements
    "$venv/bin/python" -m pip install --quiet "${pip_offline[@]}" $torch_spec "$wheel"
fi
bin="$venv/bin"
mkdir "$work/elsewhere" && cd "$work/elsewhere"   # nothing of the checkout is reachable from here
"$bin/python" - <<'EOF'
import cce_bench, cce_bench.resources as r
assert "site-packages" in cce_bench.__file__, cce_bench.__file__
print("installed at", cce_bench.__file__, "| configs:", r.config_dir(), "| paper:", r.paper_dir())
EOF

step "cce-bench sweep param=alpha --cfg job"
"$bin/cce-bench" sweep param=alpha --cfg job > job.yaml
grep -q "name: alpha" job.yaml && grep -q "paper: table1_alpha.csv" job.yaml && echo "composed config: ok"

step "a tiny sweep on device=$device"
"$bin/cce-bench" sweep param=alpha "device=$device" experiment=smoke "param.values=[1.0,0.5]" out=sweep
"$bin/cce-bench" compare "device=$device" experiment=smoke --dry-run out=dry 2> dry.txt
grep -q "^plan: 1 image x " dry.txt && test ! -e dry || { cat dry.txt; echo "--dry-run did not plan, or wrote"; exit 1; }
step "a tiny pointing game on device=$device"
"$bin/cce-bench" pointing-game "device=$device" "methods=[gradcam_pp,contrastive_gradcam,cce]" experiment=smoke \
    out=pointing
step "the contrastive pointing game on device=$device"
"$bin/cce-bench" pointing-game game=contrastive "device=$device" "methods=[gradcam_pp,cce]" experiment=smoke \
    out=contrastive
step "train-calm on a tiny labelled folder (random ResNet-50 weights), then the CALM column"
"$bin/python" - <<'EOF'
import os
import numpy as np, torch, torchvision
from PIL import Image
torch.save(torchvision.models.resnet50(weights=None).state_dict(), "resnet50_random.pth")
rng = np.random.default_rng(0)
for wnid in ("n02123045", "n07920052"):  # tabby, espresso
    os.makedirs(f"imagenet/train/{wnid}")
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (72, 80, 3), dtype=np.uint8)).save(f"imagenet/train/{wnid}/{i}.JPEG")
EOF
"$bin/cce-bench" train-calm "device=$device" data.root=imagenet backbone_checkpoint=resnet50_random.pth data.resize=64 \
    data.crop=64 batch_size=2 num_workers=0 out=calm checkpoint=calm/calm.pth
"$bin/cce-bench" pointing-game "device=$device" "methods=[calm]" experiment=smoke \
    method_knobs.calm.checkpoint=calm/calm.pth out=pointing_calm
step "score (maps from a .npz), sanity and compare"
"$bin/python" -c "import numpy as np; np.savez('maps.npz', chelsea=np.random.default_rng(0).random((56, 56)))"
"$bin/cce-bench" score maps=maps.npz "device=$device" experiment=smoke out=score
"$bin/cce-bench" sanity "device=$device" "methods=[gradcam_pp]" experiment=smoke metric_knobs.sanity.layers=2 out=sanity
"$bin/cce-bench" compare "device=$device" "methods=[gradcam_pp,captum_DeepLift,pytorch_grad_cam_EigenCAM,cce]" experiment=smoke \
    method_knobs.captum_DeepLift.eps=1e-9 "metrics=[insertion_deletion,pointing_game,quantus_Sparseness,quantus_RandomLogit]" save_maps=true out=compare
test -s compare/maps/cce_M_sup.npz && grep -q "Sparseness" compare/table.md || { echo "compare: no maps or metric"; exit 1; }
"$bin/cce-bench" methods > methods.md
step "models by name, and your own module by import path from PYTHONPATH"
"$bin/cce-bench" models resnet18 > models.md && grep -q "timm_resnet18" models.md && grep -q "torchvision_resnet18" models.md
mkdir user_code && cat > user_code/my_nets.py <<'EOF'
from torch import nn


def build(width=8, classes=1000):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, classes))
EOF
PYTHONPATH=user_code "$bin/cce-bench" compare model=custom model._target_=my_nets.build model.width=4 \
    model.input_size=64 data=photos "device=$device" "methods=[gradcam_pp,cce]" experiment=smoke "metrics=[insertion_deletion]" \
    out=custom_model
grep -q "custom my_nets.build" custom_model/table.md && grep -q "target_layer: '1'" custom_model/config.yaml \
    || { echo "custom model: its table or recorded layer is missing"; exit 1; }
"$bin/cce-bench" report compare
step "user-study (the page is package data), then its results from an answer file"
"$bin/cce-bench" user-study "device=$device" experiment=smoke sets=2 data.n_images=2 save_maps=true out=study
test -s study/maps/cce_M_pro.npz || { echo "user-study: no maps"; exit 1; }
"$bin/python" - <<'EOF'
# One participant's answers as the page writes them (the order drawn by the page's generator's Python twin).
import json
from cce_bench.study.order import CHOICES, METHODS, shuffled
study = json.load(open("study/study.json"))
sets = []
for i, s in enumerate(study["sets"]):
    sets.append({"set": i, "image_id": s["image_id"], "guess": s["answer"],
                 "choices_shown": shuffled(s["choices"], study["seed"], 5, i, CHOICES),
                 "methods_shown": shuffled(study["methods"], study["seed"], 5, i, METHODS),
                 "scores": {"A": 3, "B": 4, "C": 5}, "ranks": {"A": 3, "B": 2, "C": 1}})
json.dump({"format": "cce-bench-user-study-answers/1", "study_id": study["study_id"], "study_seed": study["seed"],
           "participant_seed": 5, "background": {"gender": "woman", "ml_experience": 3, "knows_interpretability": "yes"},
           "sets": sets}, open("answers_5.json", "w"))
EOF
"$bin/cce-bench" user-study-results answers_5.json study=study out=study_results
step "explain and report"
"$bin/cce-bench" explain chelsea "device=$device" experiment=smoke out=explain
"$bin/cce-bench" report sweep

step "checking what they wrote"
"$bin/python" - "$device" <<'EOF'
import json, sys
import pandas as pd

device = sys.argv[1]
sweep = pd.read_csv("sweep/table.csv")
assert sweep["alpha"].tolist() == [1.0, 0.5], sweep
assert sweep["Ins (paper)"].notna().all(), "the paper's Table 1 was not found"
pointing = pd.read_csv("pointing/table.csv", index_col=0)
assert list(pointing.columns) == ["GCAM+", "CE", "CCE"], pointing.columns
assert pointing.loc["Proportion (paper)"].notna().all(), "the paper's Table 5 was not found"
contrastive = pd.read_csv("contrastive/table.csv", index_col=0)
assert 0 <= float(contrastive.loc["Contrastive (%)", "CCE"]) <= 100, contrastive
for run in ("sweep", "pointing", "contrastive"):
    assert json.load(open(f"{run}/run.json"))["status"] == "complete"
    assert json.load(open(f"{run}/machine.json"))["device"].startswith(device)
assert json.load(open("explain/explain.json"))["questions"]
calm = pd.read_csv("pointing_calm/table.csv", index_col=0)
assert 0 <= float(calm.loc["Proportion (%)", "CALM"]) <= 100, calm
assert pd.read_csv("score/table.csv")["method"].tolist() == ["maps"]
assert pd.read_csv("sanity/verdict.csv")["method"].tolist() == ["GCAM+"]
compare = pd.read_csv("compare/table.csv")
assert sorted(compare["method"]) == ["CCE", "DeepLift (captum)", "EigenCAM (grad-cam)", "GCAM+"], compare
assert compare["rank"].tolist() == [1, 2, 3, 4] and {"paired diff", "p (median)", "Diff SE"} <= set(compare), compare
assert compare.set_index("method").loc[["GCAM+", "CCE"], "Proportion (paper)"].notna().all(), compare
assert "| captum_NoiseTunnel " in open("methods.md").read() and "| pytorch_grad_cam_HiResCAM " in open("methods.md").read()
assert "<script" in open("study/study.html").read() and pd.read_csv("study_results/methods.csv")["answers"].tolist() == [2, 2, 2]
for run in ("score", "sanity", "compare", "study", "study_results"):
    assert json.load(open(f"{run}/run.json"))["status"] == "complete"
for name in ("compare/report.html", "sanity/sanity.png", "calm/calm.pth", "explain/explain.png", "sweep/report.html", "sweep/report.md"):
    open(name, "rb").close()
print(f"wheel check passed on {device}: sweep, pointing-game, train-calm, score, sanity, compare, user-study, "
      "user-study-results, explain and report wrote their outputs")
EOF

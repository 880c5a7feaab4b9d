#!/usr/bin/env bash
# The GPU check, in one command: every command on the GPU from an installed wheel, the same sweep twice
# compared record by record, and the speed benchmarks with the card named.
#
#   bash scripts/gpu_check.sh                 # on a machine with a CUDA GPU and a CUDA build of torch
#   DEVICE=cpu QUICK=1 bash scripts/gpu_check.sh   # the same steps on a CPU, at smoke-test sizes
#
# It uses the torch already installed (TORCH_SPEC=system, see check_wheel.sh); WHEELS=DIR installs the
# other dependencies offline from a folder of wheels. Everything it prints is also written to
# gpu_check.log in the current folder (LOG=PATH to change).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
device="${DEVICE:-cuda}"
log="$(realpath "${LOG:-gpu_check.log}")"
work="$(mktemp -d "${TMPDIR:-/tmp}/cce-bench-gpu.XXXXXX")"
trap 'rm -rf "$work"' EXIT
exec > >(tee "$log") 2>&1
step() { printf '\n== %s\n' "$*"; }
if [[ -n "${QUICK:-}" ]]; then
    det_images=1; det_steps=3; id_images=1; id_batch=16; cce_images=1; cce_steps=3; methods_images=1; rise_n=64
    id_extra=(--step 3136 --repeats 1)
else
    id_extra=()
    det_images=4; det_steps=50; id_images=32; id_batch=256; cce_images=8; cce_steps=50; methods_images=4; rise_n=4000
fi

step "machine"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

step "every command on device=$device, from the wheel (scripts/check_wheel.sh)"
VENV="$work/venv" DEVICE="$device" TORCH_SPEC="${TORCH_SPEC:-system}" bash "$repo/scripts/check_wheel.sh"
bin="$work/venv/bin"
"$bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'GPU:',
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"

step "each method's batch size on device=$device where its config leaves it null"
"$bin/python" -c "
from cce_bench.composing import compose_checked, register_method_knobs
from cce_bench.runs.runtime import resolve
register_method_knobs()
cfg = resolve(compose_checked('compare', ['device=$device']))
print({name: knobs.batch_size for name, knobs in cfg.method_knobs.items()})"

step "determinism: the same sweep twice on device=$device, record by record"
for run in first second; do
    (cd "$work" && "$bin/cce-bench" sweep param=gamma "device=$device" data.n_images=$det_images "param.values=[5,40]" \
        method_knobs.cce.steps=$det_steps out="det_$run" > /dev/null)
done
"$bin/python" - "$work/det_first" "$work/det_second" <<'EOF'
import sys
import pandas as pd
a, b = (pd.read_csv(f"{d}/records.csv").drop(columns=["seconds"]) for d in sys.argv[1:])
numeric = a.select_dtypes("number").columns
assert a.drop(columns=numeric).equals(b.drop(columns=numeric)), "the runs differ in a non-numeric column"
diff = (a[numeric] - b[numeric]).abs().to_numpy().max()
same = int(((a[numeric] - b[numeric]).abs().max(axis=1) == 0).sum())
print(f"records identical: {same} of {len(a)}; max difference {diff:.3g}")
assert diff <= 1e-4, "the two runs differ by more than 1e-4"
EOF

step "speed (ratios against the bare passes, measured in the same run)"
cd "$repo/scripts"   # the scripts import the installed package, not the checkout
"$bin/python" -c "import torch, torchvision; torch.save(torchvision.models.vgg19(weights=None).state_dict(), '$work/vgg19_random.pth')"
"$bin/python" bench_insertion_deletion.py --device "$device" --images $id_images --batch-size $id_batch "${id_extra[@]}"
"$bin/python" bench_insertion_deletion.py --device "$device" --model vgg19 --checkpoint "$work/vgg19_random.pth" \
    --images $id_images --batch-size $id_batch "${id_extra[@]}"
"$bin/python" bench_cce.py --device "$device" --images $cce_images --steps $cce_steps
"$bin/python" bench_cce.py --device "$device" --model vgg19 --checkpoint "$work/vgg19_random.pth" --images $cce_images \
    --steps $cce_steps
"$bin/python" bench_methods.py --device "$device" --images $methods_images --rise-n $rise_n --batch-size $id_batch
step "gpu check passed on device=$device; log in $log"

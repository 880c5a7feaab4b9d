"""Numerical precision of a model's passes: precision=fp32|tf32|bf16.

fp32 is IEEE float32 everywhere; tf32 lets cuDNN convolutions and cuBLAS matrix products use TF32 tensor
cores (PyTorch's own default for convolutions, hence the suite's default); bf16 runs the network under
bfloat16 autocast. On a CPU, fp32 and tf32 are the same. torch is imported when a precision is set, so
that the config's schema can read PRECISIONS without it.
"""
from __future__ import annotations

from ..errors import UserError

PRECISIONS = ("fp32", "tf32", "bf16")


def set_precision(model, precision: str) -> None:
    """fp32, tf32 or bf16 (PRECISIONS) for every pass of `model`; TF32 is a process-wide cuDNN/cuBLAS
    setting (set through torch's fp32_precision flags, the legacy allow_tf32 ones are never read)."""
    import torch

    if precision not in PRECISIONS:
        raise UserError(f"precision={precision} is not one of {', '.join(PRECISIONS)}: pass precision=fp32, "
                        "precision=tf32 (the default) or precision=bf16")
    tf32 = "tf32" if precision == "tf32" else "ieee"
    torch.backends.cudnn.conv.fp32_precision = tf32  # type: ignore[attr-defined]  # torch >= 2.9, not in its stubs
    torch.backends.cuda.matmul.fp32_precision = tf32
    model.autocast_dtype = torch.bfloat16 if precision == "bf16" else None


def precision_in_effect(precision: str, device: str) -> str:
    """What `precision` is on `device`, as tables and run.json name it: TF32 exists only on CUDA cards of
    compute capability 8.0 (Ampere) or later, so tf32 elsewhere (a CPU, an older card) is plain fp32."""
    if precision != "tf32":
        return precision
    if not str(device).startswith("cuda"):
        return "fp32"
    import torch

    return "tf32" if torch.cuda.get_device_capability(torch.device(str(device))) >= (8, 0) else "fp32"

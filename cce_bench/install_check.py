"""Whether the installed torch and torchvision fit each other, said before any work as one line that
names both versions and the pip command that fixes them (a mismatched pair otherwise fails deep inside
torchvision, e.g. "operator torchvision::nms does not exist")."""
from __future__ import annotations

import re
from importlib import metadata

from .errors import DESCRIBERS, UserError

# The pip package of a module torchvision imports, where the two names differ.
PIP_NAMES = {"PIL": "pillow"}
# torchvision 0.(N + 15) is built against torch 2.N (0.15 with 2.0, ..., 0.29 with 2.14).
TORCHVISION_MINOR_OFFSET = 15


def release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a version string ("2.14.1+cpu" -> (2, 14)); None when it is not of that form."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def fitting_torchvision(torch_version: str) -> str | None:
    """The torchvision release line built for `torch_version` ("2.14.1" -> "0.29"); None beyond torch 2."""
    torch_release = release(torch_version)
    if torch_release is None or torch_release[0] != 2:
        return None
    return f"0.{torch_release[1] + TORCHVISION_MINOR_OFFSET}"


def mismatch_message(torch_version: str, torchvision_version: str, detail: str = "") -> str:
    """The line for a pair that does not fit, with a pip command that replaces both: --force-reinstall, since a
    pair whose version numbers fit but whose builds do not (a CUDA torch beside a CPU torchvision) would
    otherwise be "already satisfied", and the index of the installed torch's build (+cpu, +cu121)."""
    fitting = fitting_torchvision(torch_version)
    pin = f"torchvision=={fitting}.*" if fitting else "torchvision"
    because = f" ({detail})" if detail else ""
    build = torch_version.partition("+")[2]
    index = (f" --index-url https://download.pytorch.org/whl/{build}" if build
             else " (add --index-url https://download.pytorch.org/whl/cpu on a CPU-only machine)")
    return (f"torchvision {torchvision_version} does not fit torch {torch_version}{because}: install the pair "
            f"together, e.g. pip install --force-reinstall --no-deps \"torch=={torch_version.split('+')[0]}\" "
            f"\"{pin}\"{index}")


def describe_mismatch(exc: BaseException) -> str | None:
    """The line for torchvision's missing compiled operators (`operator torchvision::nms does not exist`)."""
    if isinstance(exc, RuntimeError) and "operator torchvision::" in str(exc):
        text = str(exc).strip()
        return mismatch_message(metadata.version("torch"), metadata.version("torchvision"), text.splitlines()[0])
    return None


DESCRIBERS.append(describe_mismatch)


def check_torch_pair(torch_version: str | None = None, torchvision_version: str | None = None) -> None:
    """Raises UserError when the versions do not fit or torchvision's compiled operators are missing."""
    try:
        torch_version = torch_version or metadata.version("torch")
        torchvision_version = torchvision_version or metadata.version("torchvision")
    except metadata.PackageNotFoundError as exc:
        raise UserError(
            f"{exc.name} is not installed: pip install torch torchvision (see the README's Install)"
        ) from None
    fitting = fitting_torchvision(torch_version)
    found = release(torchvision_version)
    if fitting and found and f"{found[0]}.{found[1]}" != fitting:
        raise UserError(mismatch_message(torch_version, torchvision_version))
    try:
        import torch
        import torchvision  # noqa: F401  (registers its compiled operators)

        torch.ops.torchvision.nms  # noqa: B018  (missing when torchvision's C++ part does not load)
    except ModuleNotFoundError as exc:
        if exc.name not in ("torch", "torchvision"):  # a dependency of theirs, not the pair
            package = PIP_NAMES.get(str(exc.name), str(exc.name))
            raise UserError(f"torchvision needs {exc.name}, which is not installed: pip install {package}") from None
        raise UserError(mismatch_message(torch_version, torchvision_version, str(exc))) from None
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(mismatch_message(torch_version, torchvision_version, first)) from None

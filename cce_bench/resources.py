"""Where the suite's own files are (Hydra configs, the paper's tables, shipped assets), installed or not.

A wheel installs `configs/` and `results/paper/` inside the package (`cce_bench/configs`,
`cce_bench/paper`, as pyproject.toml maps them); a checkout, or `pip install -e .`, reads the top-level
folders. Plain paths are looked up rather than `importlib.resources.files()`: the configs are data
folders without `__init__.py`, for which `files()` returns a `MultiplexedPath`, not a path that Hydra
or `open()` can take.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def _locate(in_package: str, in_checkout: str) -> Path:
    for candidate in (PACKAGE / in_package, CHECKOUT / in_checkout):
        if candidate.is_dir():
            return candidate
    raise UserError(f"the installed cce-bench has no {in_package}/ folder ({PACKAGE / in_package}): reinstall it "
                    "with `pip install --force-reinstall cce-bench` (or `pip install .` from a checkout)")


def config_dir() -> Path:
    return _locate("configs", "configs")


def paper_dir() -> Path:
    return _locate("paper", "results/paper")


def asset_path(name: str) -> Path:
    """A file shipped in `cce_bench/assets/` (the COCO-ImageNet mapping, the embedded COCO file)."""
    path = PACKAGE / "assets" / name
    if not path.is_file():
        raise UserError(f"the installed cce-bench lacks assets/{name}: reinstall it")
    return path


def cache_dir() -> Path:
    """Where the suite keeps what it made once and reads again (trained models, counted passes): $CCE_BENCH_CACHE,
    else $XDG_CACHE_HOME/cce-bench, else ~/.cache/cce-bench."""
    if os.environ.get("CCE_BENCH_CACHE"):
        return Path(os.environ["CCE_BENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cce-bench"

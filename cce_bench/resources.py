"""Where the Hydra configs and the paper's published tables are, in a checkout or an installed wheel."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _locate(checkout_path: str, package: str) -> Path:
    # A checkout (or `pip install -e .`) reads the top-level folders; a wheel carries them as packages.
    candidate = _ROOT / checkout_path
    if candidate.is_dir():
        return candidate
    return Path(str(resources.files(package)))


def config_dir() -> Path:
    return _locate("configs", "cce_bench.configs")


def paper_dir() -> Path:
    return _locate("results/paper", "cce_bench.paper")

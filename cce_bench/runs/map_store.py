"""`save_maps=true`: the maps a run scores, kept for other tools as `maps/NAME.npz` (image_id -> float32
[H, W], exactly as scored), which `cce-bench score maps=...` reads back.

While a run goes on, each finished batch's maps are one file, `parts/maps/rank{R}_batch{K}.npz`, written
before the batch is marked done: a stopped run loses no finished batch's maps and a redone batch replaces
its file, so nothing is kept twice. When every batch is done, the parts are merged into one file per name,
in the data set's order, and removed. Each run has its own store (`Session.maps`); a command that makes maps
calls `keep(name, ids, maps)`, which does nothing unless the run asked for the maps.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import torch

from ..safe_files import check_not_link, check_run_file, damaged, write_atomic

# key of one map inside a batch's part: NAME + SEPARATOR + image_id (method names and settings have no "|")
SEPARATOR = "|"


class MapStore:
    """One run's maps, kept batch by batch when the run saves them (`enabled`: save_maps=true)."""

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = bool(enabled)
        self.pending: dict[str, np.ndarray] = {}

    def keep(self, name: str, ids, maps: torch.Tensor, explainer=None) -> None:
        """The maps [B, H, W] of `ids` under `name` (a method, or a method at a swept setting); with the
        `explainer` that has just made them, its other named maps too (CCE: NAME_M_sup, NAME_M_pro),
        post-processed as every map is. A batch done again (after running out of memory) replaces what it kept."""
        if not self.enabled:
            return
        values = maps.detach().float().cpu().numpy()
        for image_id, value in zip(ids, values):
            self.pending[f"{name}{SEPARATOR}{image_id}"] = value
        if explainer is not None:
            from ..explainers import postprocess

            for part, raw in explainer.parts_of_last_maps().items():
                self.keep(f"{name}_{part}", ids, postprocess(raw, (int(maps.shape[-2]), int(maps.shape[-1]))))

    def write_batch(self, run_path: Path, rank: int, batch: int) -> None:
        """The batch's maps as one part file (before the batch is marked done)."""
        if not self.enabled:
            return
        folder = Path(run_path) / "parts" / "maps"
        check_not_link(folder)
        folder.mkdir(exist_ok=True)
        write_atomic(folder / f"rank{rank}_batch{batch}.npz", npz_bytes(self.pending))
        self.pending = {}

    def merge(self, run_path: Path) -> list[Path]:
        """Every part into maps/NAME.npz, batches in order, then the parts removed (one copy on disk); the
        files of maps/. A finished run run again has no parts: its merged files stand."""
        if not self.enabled:
            return []
        folder = Path(run_path) / "maps"
        check_not_link(folder)
        check_not_link(Path(run_path) / "parts" / "maps")
        parts = sorted((Path(run_path) / "parts" / "maps").glob("rank*_batch*.npz"), key=batch_number)
        if not parts:  # merged before: the files stand, if they are the run's own and whole
            kept = sorted(folder.glob("*.npz"))
            for path in kept:
                map_names(path)
            return kept
        by_name: dict[str, dict[str, np.ndarray]] = {}
        for part in parts:
            for key, value in read_map_part(part).items():
                name, image_id = key.split(SEPARATOR, 1)
                by_name.setdefault(name, {})[image_id] = value
        written = write_maps(run_path, by_name)
        for part in parts:
            part.unlink()
        return written

    def forget_parts(self, run_path: Path) -> None:
        """A run started anew (another config): earlier batches' maps, merged or not, are not this run's."""
        parts = (Path(run_path) / "parts" / "maps").glob("rank*_batch*.npz")
        for old in [*parts, *(Path(run_path) / "maps").glob("*.npz")]:
            old.unlink()


def read_map_part(path: Path) -> dict[str, np.ndarray]:
    """A batch's maps as write_batch wrote them (method and image id -> map), checked: a regular file of the
    run folder, an archive of float arrays under such keys."""
    import zipfile

    check_run_file(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            read = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise damaged(path, f"{type(exc).__name__}: not the archive of maps cce-bench writes") from None
    if any(SEPARATOR not in key or value.dtype.kind != "f" for key, value in read.items()):
        raise damaged(path, "its arrays are not maps keyed by method and image")
    return read


def map_names(path: Path) -> list[str]:
    """The members of a merged maps/NAME.npz, checked to be a regular file of the run and an archive."""
    import zipfile

    check_run_file(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return list(arrays.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise damaged(path, f"{type(exc).__name__}: not an archive of maps") from None


def batch_number(path: Path) -> int:
    return int(re.search(r"_batch(\d+)\.npz$", path.name).group(1))  # type: ignore[union-attr]  # globbed so


def file_name(name: str) -> str:
    """A map set's name as a file name: `cce`, `cce_alpha=0.7` (a path separator would leave the folder)."""
    return re.sub(r"[^\w=.,+-]", "_", name)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # the stub reads a key as its allow_pickle flag
    return buffer.getvalue()


def write_maps(run_path: Path, saved: dict[str, dict[str, np.ndarray]]) -> list[Path]:
    """maps/NAME.npz of a command that makes its maps in one go (explain, user-study): name -> id -> map."""
    folder = Path(run_path) / "maps"
    check_not_link(folder)
    folder.mkdir(exist_ok=True)
    written = []
    for name, maps in saved.items():
        path = folder / f"{file_name(name)}.npz"
        write_atomic(path, npz_bytes({key: np.asarray(value, dtype=np.float32) for key, value in maps.items()}))
        written.append(path)
    return written

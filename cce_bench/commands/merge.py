"""`cce-bench merge RUN_DIR RUN_DIR ... out=DIR`: the leaderboards of several finished compare runs on the same
images, model and scores as one, ranked and tested as compare ranks and tests its own methods (paired differences
over the images the runs share), from the records each run wrote. Nothing is computed again."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ..errors import UserError
from ..runs.leaderboard import leaderboard_of, ranking_metric
from ..runs.run_folder import RunFolder, check_output_folder, now_iso
from ..runs.scoring import RunMetrics, default_metrics
from ..tables import Table
from . import PlainCommand

# What must be the same in every merged run for its numbers to sit in one table.
SAME = ("data", "model", "metrics", "metric_knobs", "seed", "seeds", "precision")


def finished_compare(folder: Path) -> tuple[DictConfig, pd.DataFrame]:
    """A finished compare run's config and records, or one line saying why the folder is not one."""
    run_file = folder / "run.json"
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
        cfg = OmegaConf.load(folder / "config.yaml")
        records = pd.read_csv(folder / "records.csv")
        if not isinstance(cfg, DictConfig):
            raise ValueError("config.yaml holds no mapping")
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder} is not a finished cce-bench run ({type(exc).__name__}): pass folders that "
                        "cce-bench compare wrote") from None
    if not isinstance(run, dict) or run.get("status") != "complete" or run.get("command") != "compare":
        raise UserError(f"{folder} is not a finished compare run (run.json: {str(run)[:60]}): merge takes the "
                        "folders of finished `cce-bench compare` runs")
    return cfg, records


def differences(first: DictConfig, other: DictConfig) -> list[str]:
    """The settings of SAME in which two runs differ."""
    return [key for key in SAME if OmegaConf.to_container(OmegaConf.create({"v": first.get(key)}))
            != OmegaConf.to_container(OmegaConf.create({"v": other.get(key)}))]


def merged_records(folders: list[Path]) -> tuple[DictConfig, pd.DataFrame]:
    """The first run's config with every run's methods, and the runs' records, checked to be comparable."""
    cfg, records = finished_compare(folders[0])
    frames, owner = [records], {str(m): folders[0] for m in records["method"].unique()}
    for folder in folders[1:]:
        other_cfg, other = finished_compare(folder)
        changed = differences(cfg, other_cfg)
        if changed:
            raise UserError(f"{folder} differs from {folders[0]} in {', '.join(changed)}: merge takes runs on the same "
                            "data, model and scores")
        if set(other["image_id"]) != set(records["image_id"]):
            raise UserError(f"{folder} scored other images than {folders[0]} ({other['image_id'].nunique()} against "
                            f"{records['image_id'].nunique()}): merge takes runs on the same images")
        for method in other["method"].unique():
            if str(method) in owner:
                raise UserError(f"method {method} is in both {owner[str(method)]} and {folder}: merge runs of "
                                "different methods")
            owner[str(method)] = folder
        frames.append(other)
    merged = cfg.copy()
    merged.methods = list(owner)
    return merged, pd.concat(frames, ignore_index=True)


def merged_metrics(cfg: DictConfig, records: pd.DataFrame) -> RunMetrics:
    """The runs' metrics: as their config names them, else the defaults compare took on this data."""
    chosen = cfg.get("metrics")
    names = [str(n) for n in chosen] if chosen is not None else default_metrics(
        "proportion" in records, True, OmegaConf.select(cfg, "data.name") == "parts")
    return RunMetrics(names, cfg)


def run_merge(args: list[str]) -> RunFolder:
    outs = [a for a in args if a.startswith("out=")]
    folders = [Path(a).expanduser() for a in args if not a.startswith("out=")]
    if len(outs) != 1 or len(folders) < 2:
        raise UserError("merge takes two or more run folders and one out=DIR: cce-bench merge RUN_A RUN_B out=DIR")
    out = Path(outs[0][len("out="):]).expanduser()
    cfg, records = merged_records(folders)
    metrics = merged_metrics(cfg, records)
    names = list(cfg.methods)
    board = leaderboard_of(records, names, {}, cfg, metrics, ranking_metric(cfg, metrics, "proportion" in records))
    check_output_folder(out, f"out={out}")
    run = RunFolder(out)
    run.lock()
    cfg.out = str(out)
    run.stamp_config(cfg)
    run.write_config(cfg)
    run.write_csv("records.csv", records)
    caption = (f"The leaderboards of {len(folders)} compare runs ({', '.join(str(f) for f in folders)}) merged: "
               f"every method on the same {records['image_id'].nunique()} images of "
               f"{OmegaConf.select(cfg, 'data.name')}, model {OmegaConf.select(cfg, 'model.name')}. {board.verdict}")
    text = Table(board.table, caption, board.notes).write(run)
    run.write_json("run.json", {"status": "complete", "command": "merge", "sources": [str(f) for f in folders],
                                "finished": now_iso(), "images": int(records["image_id"].nunique()),
                                "caption": caption})
    print(f"{text}\n\nwritten to {run.path}")
    return run


COMMAND = PlainCommand("merge", run_merge)

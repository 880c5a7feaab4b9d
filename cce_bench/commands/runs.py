"""`cce-bench runs [FOLDER]`: the run folders under FOLDER (default results/, where runs and multiruns go), newest
first: each one's command, status, data, model, images and headline (a leaderboard's first row by the score it is
ranked by; a sweep's best value by Diff), read from the files the run wrote."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from ..errors import UserError
from ..tables import to_markdown
from . import PlainCommand

DEPTH = 4  # results/multiruns/<time>_<name>/<job>/: deep enough for a multirun's jobs


def run_folders(root: Path) -> list[Path]:
    """Every folder under `root` (down to DEPTH) that a command wrote: it holds its config and its fingerprint."""
    found: list[Path] = []
    frontier = [root]
    for _ in range(DEPTH):
        below: list[Path] = []
        for folder in frontier:
            for entry in sorted(folder.iterdir()):
                if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
                    is_run = (entry / "config.yaml").is_file() and (entry / "fingerprint.json").is_file()
                    (found if is_run else below).append(entry)
        frontier = below
    return found


def headline(table: pd.DataFrame, caption: str) -> str:
    """A leaderboard's first row by its ranking score ("CCE: Proportion (%) 61.1 ± 1.2"), or a sweep's best
    value by Diff ("alpha=1.0: Diff 74.91 ± 0.2")."""
    def shown(row, column) -> str:
        error = row.get(f"{column.removesuffix(' (%)')} SE")
        return f"{column} {row[column]}" + ("" if error is None or pd.isna(error) else f" ± {error}")

    if "method" in table and len(table):
        ranked = re.search(r"Ranked by ([^;]+);", caption)
        column = ranked.group(1) if ranked and ranked.group(1) in table else None
        top = table.iloc[0]
        return f"{top['method']}: {shown(top, column)}" if column else str(top["method"])
    if "Diff" in table and table["Diff"].notna().any():
        best = table.iloc[int(pd.to_numeric(table["Diff"], errors="coerce").to_numpy().argmax())]
        return f"{table.columns[0]}={best.iloc[0]}: {shown(best, 'Diff')}"
    return ""


def run_row(folder: Path, root: Path) -> dict:
    """One run as the listing shows it (its folder relative to `root`)."""
    cfg = OmegaConf.load(folder / "config.yaml")
    run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
    complete = run.get("status") == "complete" and (folder / "table.csv").is_file()
    top = headline(pd.read_csv(folder / "table.csv"), str(run.get("caption", ""))) if complete else ""
    command = run.get("command") or str(OmegaConf.select(cfg, "run_name", default="?"))
    return {"run": str(folder.relative_to(root)), "command": command,
            "status": "complete" if complete else "unfinished (rerun with its out= to go on)",
            "data": OmegaConf.select(cfg, "data.name", default=None),
            "model": OmegaConf.select(cfg, "model.name", default=None),
            "images": run.get("images"), "finished": run.get("finished"), "headline": top}


def run_runs(args: list[str]) -> pd.DataFrame:
    if len(args) > 1:
        raise UserError(f"runs takes one folder, got {len(args)}: cce-bench runs [FOLDER] (default results)")
    root = Path(args[0] if args else "results").expanduser()
    if not root.is_dir():
        raise UserError(f"{root} is not a folder: pass the folder your runs went to (cce-bench runs results)")
    rows = []
    for folder in run_folders(root):
        try:
            rows.append(run_row(folder, root))
        except Exception as exc:  # noqa: BLE001 - a damaged folder is listed as such, not the listing's end
            rows.append({"run": str(folder.relative_to(root)), "status": f"unreadable ({type(exc).__name__})"})
    if not rows:
        print(f"no runs under {root}")
        return pd.DataFrame()
    table = pd.DataFrame(rows).sort_values("finished", ascending=False, na_position="first", kind="stable")
    if "images" in table:
        table["images"] = table["images"].astype("Int64")
    print(to_markdown(table))
    return table


COMMAND = PlainCommand("runs", run_runs)

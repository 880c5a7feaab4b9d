"""The paper's tables: measured means per swept value beside the published numbers."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .resources import paper_dir


def read_paper_table(filename: str) -> pd.DataFrame:
    return pd.read_csv(Path(paper_dir()) / filename)


def format_duration(seconds: float) -> str:
    """'5m40s' as the paper prints times (hours too where needed)."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


def sweep_table(records: pd.DataFrame, param: str, values: list, paper: pd.DataFrame | None,
                with_time: bool = False) -> pd.DataFrame:
    """One row per swept value (in `values` order): Ins, Del, Diff (100 x mean AUC) and the paper's."""
    grouped = records.groupby("value", sort=False)
    measured = pd.DataFrame({
        "Ins": grouped["ins_auc"].mean() * 100,
        "Del": grouped["del_auc"].mean() * 100,
        "valid %": grouped["valid"].mean() * 100,
        "images": grouped["image_id"].nunique(),
        "seconds": grouped["gen_seconds"].sum(),
    })
    measured["Diff"] = measured["Ins"] - measured["Del"]
    rows = []
    for value in values:
        m = measured.loc[value] if value in measured.index else None
        row = {param: value}
        published = None
        if paper is not None and isinstance(value, (int, float)):
            match = paper[paper[param].astype(float) == float(value)]
            published = match.iloc[0] if len(match) else None
        for col, pcol in (("Ins", "ins"), ("Del", "del"), ("Diff", "diff")):
            row[col] = None if m is None else round(float(m[col]), 2)
            row[f"{col} (paper)"] = None if published is None else float(published[pcol])
        if with_time:
            row["time"] = None if m is None else format_duration(m["seconds"])
            row["s/img"] = None if m is None else round(float(m["seconds"]) / max(int(m["images"]), 1), 2)
            row["time (paper, 1000 img)"] = None if published is None else published.get("time")
        row["valid %"] = None if m is None or pd.isna(m["valid %"]) else round(float(m["valid %"]), 1)
        row["images"] = 0 if m is None else int(m["images"])
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    # object dtype keeps integers as integers (pandas would hand tabulate float rows)
    return table.astype(object).where(table.notna(), None).to_markdown(index=False, floatfmt=".2f", missingval="–")


def method_table(records: pd.DataFrame, names: list[str], labels: list[str]) -> pd.DataFrame:
    """One row per method (in `names` order, printed as `labels`): Ins, Del, Diff (100 x mean AUC), the
    pointing-game proportion (%) where the records have one, and the number of images."""
    rows = []
    for name, label in zip(names, labels):
        mine = records[records["method"] == name] if len(records) else records
        row = {"method": label}
        for column, key in (("Ins", "ins_auc"), ("Del", "del_auc")):
            row[column] = round(float(mine[key].mean() * 100), 2) if len(mine) else None
        row["Diff"] = None if row["Ins"] is None else round(row["Ins"] - row["Del"], 2)
        if "proportion" in records:
            row["Proportion (%)"] = round(float(mine["proportion"].mean() * 100), 2) if len(mine) else None
        row["images"] = int(mine["image_id"].nunique()) if len(mine) else 0
        rows.append(row)
    return pd.DataFrame(rows)

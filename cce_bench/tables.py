"""The paper's tables: measured means per swept value beside the published numbers."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .resources import paper_dir


def read_paper_table(filename: str) -> pd.DataFrame:
    return pd.read_csv(Path(paper_dir()) / filename)


def paper_applies(cfg) -> bool:
    """Whether the paper's numbers belong beside this run's: not on the suite's part scenes (data=parts, or as
    files for the model trained on them, model=parts_cnn), which the paper never saw, nor where the config's `paper`
    is null (the Python API's compare, on the caller's own model and images)."""
    from omegaconf import OmegaConf

    return (OmegaConf.select(cfg, "paper", default="absent") is not None
            and OmegaConf.select(cfg, "data.name") != "parts"
            and OmegaConf.select(cfg, "model.name") != "parts_cnn")


def format_duration(seconds: float) -> str:
    """'5m40s' as the paper prints times (hours too where needed)."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


def sweep_table(records: pd.DataFrame, param: str, values: list, paper: pd.DataFrame | None,
                with_time: bool = False, paper_columns: bool = True) -> pd.DataFrame:
    """One row per swept value (in `values` order): Ins, Del, Diff (100 x mean AUC) and, with `paper_columns`,
    the paper's (empty where it has no row for the value)."""
    grouped = records.groupby("value", sort=False)
    measured = pd.DataFrame({
        "Ins": grouped["ins_auc"].mean() * 100,
        "Del": grouped["del_auc"].mean() * 100,
        "valid %": grouped["valid"].mean() * 100,
        "images": grouped["image_id"].nunique(),
        "seconds": grouped["seconds"].sum(),
    })
    measured["Diff"] = measured["Ins"] - measured["Del"]
    scored = records.assign(diff=records["ins_auc"] - records["del_auc"])
    errors = {column: scored.groupby("value", sort=False)[key].agg(standard_error)
              for column, key in (("Ins", "ins_auc"), ("Del", "del_auc"), ("Diff", "diff"))}
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
            row[f"{col} SE"] = None if m is None else errors[col].get(value)
            if paper_columns:
                row[f"{col} (paper)"] = None if published is None else float(published[pcol])
        if with_time:
            row["time"] = None if m is None else format_duration(m["seconds"])
            row["s/img"] = None if m is None else round(float(m["seconds"]) / max(int(m["images"]), 1), 2)
            row["time (paper, 1000 img)"] = None if published is None else published.get("time")
        row["valid %"] = None if m is None or pd.isna(m["valid %"]) else round(float(m["valid %"]), 1)
        row["images"] = 0 if m is None else int(m["images"])
        rows.append(row)
    return pd.DataFrame(rows)


def best_row_caption(records: pd.DataFrame, by: str, score: str, label_of: Callable[[object], str], best: str,
                     what: str = "method", unit: str = "images") -> str:
    """Which rows (the records grouped `by`) these images cannot tell apart from the one of the highest mean
    `score`, paired over the same images; `label_of` prints a row's key, `best` says why it is the reference."""
    means = records.groupby(by, sort=False)[score].mean() if len(records) else pd.Series(dtype=float)
    if len(means) < 2:
        return ""
    top = means.idxmax()
    differences = paired_differences(records, by, score, top)
    return noise_caption(f"{label_of(top)} ({best})", {label_of(k): d for k, d in differences.items()}, what, unit)


def sweep_noise_caption(records: pd.DataFrame, param: str) -> str:
    """Which swept values these images cannot tell apart from the best one (by Ins - Del, paired)."""
    scored = records.assign(diff=records["ins_auc"] - records["del_auc"])
    return best_row_caption(scored, "value", "diff", lambda value: f"{param}={value}", "the best Diff", what="value")


def to_markdown(table: pd.DataFrame) -> str:
    # object dtype keeps integers as integers (pandas would hand tabulate float rows)
    return table.astype(object).where(table.notna(), None).to_markdown(index=False, floatfmt=".2f", missingval="–")


def standard_error(values, scale: float = 100, digits: int = 2) -> float | None:
    """`scale` x the standard error of the mean of `values` (None under two values)."""
    values = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if len(values) < 2:
        return None
    return round(float(values.std(ddof=1) / len(values) ** 0.5 * scale), digits)


def t_multiplier(n: int) -> float:
    """Standard errors in half a two-sided 95% interval of a mean over n values, by Student's t with n - 1 degrees of
    freedom: 12.71 for two values, 2.26 for ten, 1.96 for many (two standard errors overclaim on few images)."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1))


@dataclass(frozen=True)
class PairedDifference:
    """One row's score minus the reference row's, paired over the images both were scored on."""

    mean: float
    se: float | None
    images: int

    @property
    def within_noise(self) -> bool:
        """Inside the 95% Student's t interval of the paired difference (or too few images to know): these images
        cannot tell the two apart."""
        return self.se is None or self.images < 2 or abs(self.mean) < t_multiplier(self.images) * self.se


def paired_differences(records: pd.DataFrame, by: str, score: str, reference, scale: float = 100
                       ) -> dict:
    """Per value of `by` other than `reference` (a method, a swept value): `scale` x the mean over images
    of its `score` minus the reference's on the same image, with the standard error of that mean."""
    wide = records.pivot_table(index="image_id", columns=by, values=score, aggfunc="mean")
    if reference not in wide:
        return {}
    differences = {}
    for key in wide.columns:
        if key == reference:
            continue
        d = (wide[key] - wide[reference]).dropna()
        if len(d):
            differences[key] = PairedDifference(round(float(d.mean() * scale), 2), standard_error(d, scale), len(d))
    return differences


def noise_caption(reference: str, differences: dict[str, PairedDifference], what: str = "method",
                  unit: str = "images") -> str:
    """One sentence: which rows these images (or pairs: `unit`) cannot tell apart from the reference row."""
    if not differences:
        return ""
    close = [label for label, d in differences.items() if d.within_noise]
    images = max(d.images for d in differences.values())
    interval = ("the 95% interval of the paired difference" if images < 2 else
                f"the 95% interval of the paired difference (Student's t: {t_multiplier(images):.2f} standard errors "
                f"on {images} {unit})")
    if len(close) == len(differences):
        return (f"On these {images} {unit} no {what} differs from {reference} beyond {interval}: the sample is too "
                "small to tell the rows apart.")
    if not close:
        return f"Every {what} differs from {reference} beyond {interval}."
    return f"Within {interval} of {reference} (not told apart): {', '.join(map(str, close))}."


@dataclass
class Table:
    """A scoring command's result as every output shows it: the frame (table.csv), its caption, the table as
    markdown (the frame's, or the command's own layout), and notes under it (methods that could not run).
    `write` writes table.csv and table.md and returns the text the command prints at the end."""

    frame: pd.DataFrame
    caption: str
    notes: str | None = None  # lines after the table; None: no notes section at all
    markdown: str | None = None  # None: the frame as markdown

    def text(self) -> str:
        shown = self.markdown if self.markdown is not None else to_markdown(self.frame)
        return f"{self.caption}\n\n{shown}" + ("" if self.notes is None else f"\n{self.notes}")

    def write(self, run) -> str:
        run.write_csv("table.csv", self.frame)
        run.write_text("table.md", f"{self.text()}\n")
        run.write_text("table.tex", to_latex(self.frame, self.caption))
        return self.text()


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "ρ": r"$\rho$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "–": "--"}


def latex_text(value) -> str:
    """A cell or a caption as LaTeX text: its special characters escaped, a missing value as --."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "--"
    if isinstance(value, float):  # as the table rounded it (scores to 2 or 3 digits), without trailing zeros
        return f"{round(value, 4):g}"
    return "".join(LATEX_SPECIAL.get(char, char) for char in str(value))


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """The table for a paper (table.tex): booktabs rules, each column that has an `X SE` beside it shown as
    `mean $\\pm$ SE` (the SE columns folded in), the caption as its \\caption."""
    def error_of(column) -> str:  # the SE column of a mean: "Ins SE" of "Ins", "Proportion SE" of "Proportion (%)"
        return f"{str(column).removesuffix(' (%)')} SE"

    columns = [c for c in table.columns if c not in {error_of(other) for other in table.columns if other != c}]
    rows = []
    for _, row in table.astype(object).iterrows():  # object: integers stay integers
        cells = []
        for column in columns:
            error = row.get(error_of(column))
            both = not pd.isna(row[column]) and error is not None and not pd.isna(error)
            cells.append(f"{latex_text(row[column])} $\\pm$ {latex_text(error)}" if both else latex_text(row[column]))
        rows.append(" & ".join(cells) + r" \\")
    head = " & ".join(latex_text(column) for column in columns) + r" \\"
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\small", f"\\begin{{tabular}}{{{'l' * len(columns)}}}",
                      r"\toprule", head, r"\midrule", *rows, r"\bottomrule", r"\end{tabular}",
                      f"\\caption{{{latex_text(caption)}}}", r"\end{table}", ""])


def column_position(table: pd.DataFrame, column: str) -> int:
    """Where `column` is among the table's columns (which are unique)."""
    return list(table.columns).index(column)


def beside_paper(table: pd.DataFrame) -> pd.DataFrame:
    """The table with, beside each published column `X (paper)`, `X - paper`: measured - paper with the
    measured SE (`X SE`), as every scoring command's page shows it (for `report`)."""
    for paper in [c for c in table.columns if str(c).endswith(" (paper)")]:
        column = paper[: -len(" (paper)")]
        measured = column if column in table else f"{column} (%)"
        table = with_paper_difference(table, measured, paper, f"{column} SE", f"{column} - paper")
    return table


def with_paper_difference(table: pd.DataFrame, measured: str, paper: str, se: str, name: str) -> pd.DataFrame:
    """`name` beside the `paper` column: measured - paper with the measured standard error, as text
    ("+0.46 (SE 1.20)"); none where the SE is unknown, since a difference without it reads as a verdict."""
    difference = pd.to_numeric(table[measured], errors="coerce") - pd.to_numeric(table[paper], errors="coerce")
    errors = pd.to_numeric(table[se], errors="coerce") if se in table else pd.Series([None] * len(table))
    text = [None if pd.isna(d) or pd.isna(e) else f"{d:+.2f} (SE {e:.2f}{', within 2 SE' if abs(d) < 2 * e else ''})"
            for d, e in zip(difference, errors)]
    table = table.copy()
    table.insert(column_position(table, paper) + 1, name, text)
    return table

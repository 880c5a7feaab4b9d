"""Pictures: saliency overlays for `explain` and the report, and the plots every run folder gets."""
from __future__ import annotations

import functools
import io
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import cm  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from .safe_files import write_atomic  # noqa: E402

CMAP = "jet"
MAX_ALPHA = 0.6
# The colour scale of a panel saturates at this percentile of its map, as captum's visualize_image_attr
# does (outlier_perc=2): gradient maps (GBP, IG) put their peak on a handful of pixels, and scaled to
# that peak the rest (on chelsea the 99th percentile is 0.28 of the peak) drew almost transparent.
DISPLAY_PERCENTILE = 98.0


def names_as_text(draw):
    """Draws with mathtext off: labels carry file names, image ids and class names, which are data
    (a name like `cat_$x^$.JPEG` would otherwise be parsed as a formula, or fail to parse)."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with plt.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


def display_scale(saliency: np.ndarray, percentile: float = DISPLAY_PERCENTILE) -> np.ndarray:
    """The map divided by its `percentile`-th percentile and clipped to [0, 1] (display only; scores use
    the map itself). A map whose percentile is 0 falls back to its peak; an all-zero map stays zero."""
    top = float(np.percentile(saliency, percentile))
    top = top if top > 0 else float(saliency.max())
    return np.clip(saliency / top, 0, 1) if top > 0 else np.zeros_like(saliency)


def overlay_rgb(image: np.ndarray, saliency: np.ndarray, max_alpha: float = MAX_ALPHA) -> np.ndarray:
    """The image [H, W, 3] in [0, 1] with the map [H, W] in [0, 1] laid over it in colour: the colour's
    opacity grows with the map, so where the map is 0 the image shows unchanged."""
    saliency = np.clip(saliency, 0, 1)
    colour = plt.get_cmap(CMAP)(saliency)[..., :3]
    alpha = (max_alpha * saliency)[..., None]
    return np.clip(image * (1 - alpha) + colour * alpha, 0, 1)


@names_as_text
def explanation_figure(rows: list[dict], path: str | Path) -> Path:
    """A grid: one row per question; the first panel the image, then one overlay per map.

    Each row: {"label": str, "image": [H, W, 3], "panels": [(title, map [H, W] or None), ...]}.
    """
    columns = 1 + max(len(r["panels"]) for r in rows)
    labels = ["\n".join(textwrap.fill(line, 40) for line in row["label"].splitlines()) for row in rows]
    titles = [[textwrap.fill(title, 40) for title, _ in row["panels"]] for row in rows]  # wrapped once
    # each row 3.4 inches, taller where its longest title needs it (a line of 8-point text is about 0.14 inch)
    heights = [max(3.4, 2.9 + 0.15 * max(text.count("\n") + 1 for text in [label, *row_titles]))
               for label, row_titles in zip(labels, titles)]
    fig, axes = plt.subplots(len(rows), columns, figsize=(3.2 * columns, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax_row, row, label, row_titles in zip(axes, rows, labels, titles):
        ax_row[0].imshow(row["image"])
        ax_row[0].set_title(label, fontsize=8)
        for ax, title, (_, saliency) in zip(ax_row[1:], row_titles, row["panels"]):
            if saliency is not None:
                saliency = display_scale(saliency)  # each panel on its own scale
            ax.imshow(overlay_rgb(row["image"], saliency) if saliency is not None else row["image"])
            ax.set_title(title, fontsize=8)
            fig.colorbar(cm.ScalarMappable(Normalize(0, 1), CMAP), ax=ax, fraction=0.046, pad=0.04)
        for ax in ax_row:
            ax.axis("off")
        for ax in ax_row[1 + len(row["panels"]):]:
            ax.set_visible(False)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return Path(path)


@names_as_text
def method_grid(image: np.ndarray, title: str, cells: list[list[tuple[str, np.ndarray]]], path: str | Path) -> Path:
    """Several methods on one image, compactly: the image once at the left (titled with the question), then
    the maps as overlays, `cells[row][column]` = (title, map [H, W]), one colour bar for all (each map on its
    own display scale, as in `explanation_figure`)."""
    columns = max(len(row) for row in cells)
    title = "\n".join(textwrap.fill(line, 30) for line in title.splitlines())
    # a line of 8-point text is about 0.14 inch: the longest title adds to the height it needs
    lines = max([title.count("\n") + 1] + [textwrap.fill(t, 26).count("\n") + 1 for row in cells for t, _ in row])
    fig = plt.figure(figsize=(2.2 * (columns + 1) + 0.5, 2.3 * len(cells) + 0.15 * lines))
    grid = fig.add_gridspec(len(cells), columns + 2, width_ratios=[1.0] * (columns + 1) + [0.05])
    left = fig.add_subplot(grid[:, 0])
    left.imshow(image)
    left.set_title(title, fontsize=8)
    for r, row in enumerate(cells):
        for c, (cell_title, saliency) in enumerate(row):
            ax = fig.add_subplot(grid[r, c + 1])
            ax.imshow(overlay_rgb(image, display_scale(saliency)))
            ax.set_title(textwrap.fill(cell_title, 26), fontsize=8)
            ax.axis("off")
    left.axis("off")
    fig.colorbar(cm.ScalarMappable(Normalize(0, 1), CMAP), cax=fig.add_subplot(grid[:, -1]))
    save_png(fig, path, bbox_inches="tight")  # the box of what is drawn: the image's long title included
    plt.close(fig)
    return Path(path)


def grid_rows(panels: list, per_row: int = 6) -> list[list]:
    """`panels` in rows of at most `per_row`, as even as they go (11 panels: 6 and 5)."""
    rows = -(-len(panels) // per_row)
    width = -(-len(panels) // rows)
    return [panels[i:i + width] for i in range(0, len(panels), width)]


def save_png(fig, path: str | Path, **savefig) -> None:
    """The figure as a PNG at 100 dpi, written whole and never through a link (safe_files)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, **savefig)
    write_atomic(Path(path), buffer.getvalue())


def saved(fig, path: Path) -> Path:
    """Lays out, writes (100 dpi) and closes a figure."""
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return path


@names_as_text
def plot_sweep(folder: str | Path) -> list[Path]:
    """curves.png: the mean insertion and deletion curves per swept value or method (the curves the AUCs sum
    up); for a sweep, metrics.png: Ins, Del and Diff against the swept value, the paper's as a second series."""
    folder = Path(folder)
    table = pd.read_csv(folder / "table.csv")
    curves = json.loads((folder / "curves.json").read_text())
    if "method" in table:  # a leaderboard: a curve per method, named by its label
        return [plot_curves(folder / "curves.png", curves, str)]
    param = table.columns[0]
    written = [plot_curves(folder / "curves.png", curves, lambda value: f"{param}={value}")]
    values = pd.to_numeric(table[param], errors="coerce")
    if values.notna().all():  # a swept number (not a method without the knob, "n/a")
        written.append(plot_against_value(folder / "metrics.png", table, param, values))
    return written


def plot_curves(path: Path, curves: dict, label_of: Callable[[str], str]) -> Path:
    """The mean insertion and deletion curve of each key of `curves`, side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    # Ten qualitative colours, then the line style changes: every curve is told apart.
    colours = plt.get_cmap("tab10")(np.arange(10))
    for k, (key, curve) in enumerate(curves.items()):
        style = {"color": colours[k % 10], "linestyle": ("-", "--", ":", "-.")[(k // 10) % 4]}
        for ax, kind in zip(axes, ("insertion", "deletion")):
            y = np.asarray(curve[kind])
            ax.plot(np.linspace(0, 1, len(y)), y, **style, label=label_of(key))
    for ax, kind in zip(axes, ("insertion", "deletion")):
        ax.set(
            title=f"mean {kind} curve",
            xlabel=f"fraction of pixels {'inserted' if kind == 'insertion' else 'deleted'}",
            ylabel="probability of the explained class",
            ylim=(0, 1),
        )
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return path


def plot_against_value(path: Path, table: pd.DataFrame, param: str, values: pd.Series) -> Path:
    """Ins, Del and Diff against the swept value, with the paper's numbers as a second series."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for column, colour in (("Ins", "tab:green"), ("Del", "tab:red"), ("Diff", "tab:blue")):
        ax.plot(values, table[column], "o-", color=colour, label=f"{column} (measured)")
        if f"{column} (paper)" in table and table[f"{column} (paper)"].notna().any():
            ax.plot(values, table[f"{column} (paper)"], "s--", color=colour, alpha=0.5,
                    label=f"{column} (paper: VGG-19, 1000 ImageNet images)")
    ax.set(xlabel=param, ylabel="100 x AUC",
           title=f"insertion / deletion against {param} (this run's model and images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return path


def standard_error_row(name: str) -> str | None:
    """The row holding a measured row's standard error ('Proportion (%)' -> 'Proportion SE'); a published
    number ('Proportion (paper)') has none: the paper gives no standard errors."""
    return None if name.endswith("(paper)") else f"{name.split(' (')[0]} SE"


@names_as_text
def plot_pointing_game(folder: str | Path) -> Path:
    """table5.png: per method, the measured proportion with its standard error beside the paper's; in the
    contrastive game, the contrastive share too (50%: no preference between P and Q)."""
    folder = Path(folder)
    table = pd.read_csv(folder / "table.csv", index_col=0)  # the row names are the first column
    methods = list(table.columns)

    def row(name):
        return (
            pd.to_numeric(table.loc[name], errors="coerce") if name in table.index else pd.Series(np.nan, index=methods)
        )

    bars = [("Contrastive (%)", "contrastive share", "tab:orange")] if "Contrastive (%)" in table.index else []
    bars += [("Proportion (%)", "proportion", "tab:blue")]
    paper = row("Proportion (paper)")
    if paper.notna().any():
        bars.append(("Proportion (paper)", "paper (VGG-19, COCO)", "tab:gray"))
    x = np.arange(len(methods))
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(methods)), 4))
    for k, (name, label, colour) in enumerate(bars):
        se_name = standard_error_row(name)
        se = row(se_name) if se_name in table.index else None
        ax.bar(x + (k - (len(bars) - 1) / 2) * width, row(name).fillna(0), width, label=label, color=colour,
               yerr=None if se is None else se.fillna(0), capsize=3, alpha=0.6 if name.endswith("(paper)") else 1)
    measured = row("Proportion (%)")
    for i, name in enumerate(methods):
        if pd.isna(measured[name]):
            ax.text(i, 1, str(table.loc["Proportion (%)", name]), ha="center", va="bottom", fontsize=6, rotation=90)
    if "Contrastive (%)" in table.index:
        ax.axhline(50, color="tab:orange", linestyle=":", linewidth=1)
    ax.set_xticks(x, methods)
    title = (
        "contrastive pointing game: why P rather than Q?"
        if "Contrastive (%)" in table.index
        else "energy-based pointing game"
    )
    ax.set(ylabel="% (bars: standard error)", title=title, ylim=(0, 100))
    ax.legend(fontsize=7)
    return saved(fig, folder / "table5.png")


@names_as_text
def plot_sanity(folder: str | Path, fail_above: float | None = None) -> Path:
    """sanity.png, as Adebayo et al. draw it: similarity to the trained model's maps against the blocks
    randomised from the logits down, one line per method; a row per mode, a column per measure."""
    folder = Path(folder)
    table = pd.read_csv(folder / "table.csv")
    from .metrics.sanity import MEASURES as measures

    modes = [m for m in ("cascading", "independent") if m in set(table["mode"])]
    measures = dict(measures)
    if np.allclose(table["spearman"], table["spearman_abs"], equal_nan=True):
        # Magnitude maps (all >= 0): the signed panel would repeat the absolute one.
        del measures["spearman"]
        measures["spearman_abs"] = "Spearman (maps >= 0: signed = abs)"
    fig, axes = plt.subplots(len(modes), len(measures), figsize=(5 * len(measures), 4.2 * len(modes)), squeeze=False)
    for row, mode in zip(axes, modes):
        part = table[table["mode"] == mode]
        for ax, (key, title) in zip(row, measures.items()):
            for method, lines in part.groupby("method", sort=False):
                ax.plot(lines["step"], lines[key], "o-", label=method, markersize=3)
            steps = part.drop_duplicates("step").sort_values("step")
            ax.set_xticks(steps["step"], steps["block"], rotation=60, ha="right", fontsize=6)
            ax.axhline(0, color="gray", lw=0.5)
            if key == "spearman_abs" and fail_above is not None:
                ax.axhline(fail_above, color="tab:red", ls="--", lw=1, label=f"fails above {fail_above:g}")
            ax.set(title=f"{title}, {mode}", ylim=(-0.3, 1.05), ylabel="similarity to the trained model's map",
                   xlabel="randomised down to" if mode == "cascading" else "block randomised alone")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    return saved(fig, folder / "sanity.png")


def leaderboard_panels(table: pd.DataFrame, panels: list) -> list[tuple[str, str, str | None, str]]:
    """(title, column, its SE column or None, colour) of each panel (metrics.Panel) whose score `table` has a
    value of."""
    shown = []
    for panel in panels:
        column = panel.column
        if column in table and pd.to_numeric(table[column], errors="coerce").notna().any():
            se_column = standard_error_row(column)
            shown.append((panel.title, column, se_column if se_column in table else None, panel.colour))
    return shown


@names_as_text
def plot_leaderboard(folder: str | Path, panels: list) -> Path | None:
    """leaderboard.png: one panel per score of this run (`panels`, each metric's, metrics.Panel), each method's
    value with its SE bar, in rank order; a panel's threshold (the sanity check's failure line) drawn from the
    run's config; the paper's Table 5 (other model, other data) in a panel of its own, without bars (the paper
    gives no standard errors)."""
    folder = Path(folder)
    table = pd.read_csv(folder / "table.csv")
    config = folder / "config.yaml"
    settings = OmegaConf.load(config) if config.is_file() else None
    thresholds = {panel.column: OmegaConf.select(settings, panel.threshold_key)
                  for panel in panels if panel.threshold_key and settings is not None}
    methods = table["method"].tolist()
    x = np.arange(len(methods))
    shown = leaderboard_panels(table, panels)
    if not shown:  # no score has a value to draw
        return None
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * max(3.2, 0.55 * len(methods)), 3.6 * rows),
                             squeeze=False)
    for ax, (title, column, se_column, colour) in zip(axes.flat, shown):
        values = pd.to_numeric(table[column], errors="coerce").fillna(0)
        errors = pd.to_numeric(table[se_column], errors="coerce").fillna(0) if se_column else None
        ax.bar(x, values, 0.7, color=colour, yerr=errors, capsize=2)
        if thresholds.get(column) is not None:
            ax.axhline(float(thresholds[column]), color="black", linestyle="--", linewidth=1,
                       label=f"fails above {thresholds[column]}")
            ax.legend(fontsize=7)
        ax.set_xticks(x, methods, rotation=45, ha="right", fontsize=8)
        ax.set_title(textwrap.fill(title, 36), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    return saved(fig, folder / "leaderboard.png")


@names_as_text
def plot_user_study(folder: str | Path) -> Path:
    """Mean score per method with its interval, and how often each was ranked 1st, 2nd, 3rd."""
    folder = Path(folder)
    table = pd.read_csv(folder / "methods.csv")
    low = next(c for c in table.columns if c.endswith(" low"))
    high = next(c for c in table.columns if c.endswith(" high"))
    fig, (ax_score, ax_rank) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(table))
    errors = np.vstack([table["mean score"] - table[low], table[high] - table["mean score"]])
    ax_score.bar(x, table["mean score"], yerr=errors, capsize=4, color="#4c72b0")
    ax_score.set(xticks=x, xticklabels=table["method"], ylim=(0, 5), ylabel="mean score (1-5)",
                 title=f"score ({low.split()[1]} interval)")
    bottom = np.zeros(len(table))
    for rank, colour in zip((1, 2, 3), ("#2ca02c", "#bcbd22", "#d62728")):
        share = table[f"ranked {rank} (%)"].to_numpy()
        ax_rank.bar(x, share, bottom=bottom, color=colour, label=f"ranked {rank}")
        bottom += share
    ax_rank.set(xticks=x, xticklabels=table["method"], ylim=(0, 100), ylabel="% of answers", title="rank")
    ax_rank.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return saved(fig, folder / "user_study.png")

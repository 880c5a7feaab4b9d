"""`cce-bench report RUN_DIR`: one page for a finished run, as self-contained HTML and as markdown.

A scoring run (sweep, pointing-game, score, sanity, compare): its table beside the paper with the
difference, its plots, a grid of example images with their maps (best, median and worst by the score its
command declares) and its provenance. A user study: its sets as the participants see them, and a link to
the page. The study's results: their tables and plots.
"""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import torch
from omegaconf import OmegaConf

from ..errors import UserError
from ..figures import explanation_figure
from ..safe_files import write_atomic
from ..tables import to_markdown
from . import COMMANDS, PlainCommand


def pick_examples(records: pd.DataFrame, command, cfg) -> tuple[pd.DataFrame, str, dict]:
    """Best, median and worst records by the command's own score (its declared `examples`)."""
    chosen = command.examples(records, cfg)
    ordered = chosen.records.sort_values("score", ascending=False).reset_index(drop=True)
    picks = ordered.iloc[[0, len(ordered) // 2, len(ordered) - 1]].assign(rank=["best", "median", "worst"])
    return picks.drop_duplicates("image_id"), chosen.label, dict(chosen.setting)


def example_grid(folder: Path, cfg, command, records: pd.DataFrame) -> Path:
    """Recomputes the maps of the picked examples with the run's own config (model, data, method)."""
    from ..explainers import Contrast
    from ..runs.runtime import build_dataset, build_explainer, build_model

    cfg = OmegaConf.merge(cfg, {"device": "cuda" if torch.cuda.is_available() and "cuda" in cfg.device else "cpu"})
    picks, label, setting = pick_examples(records, command, cfg)
    model = build_model(cfg)
    contrastive = "contrast" in picks  # the contrastive pointing game: questions (image, P, Q)
    dataset = build_dataset(cfg, model, **({"contrastive": True} if contrastive else {}))
    picked = setting.pop("method", None)
    # a leaderboard's examples show every method of the run on the same images (picked by one method's score)
    scored = records[records["error"].isna()] if "error" in records else records
    methods = list(dict.fromkeys(scored["method"])) if picked is not None and "method" in scored else \
        [picked or cfg.method]
    explainers = [build_explainer(cfg, model, method).with_knobs(**setting) for method in methods]
    ids = picks["image_id"].tolist()
    index = {s.id: i for i, s in enumerate(dataset.samples)}
    items = [dataset[index[i]] for i in ids if i in index]
    images = torch.stack([it["image"] for it in items]).to(cfg.device)
    targets = torch.tensor(picks["target"].tolist()[: len(items)], device=images.device)
    asked = Contrast(targets, torch.tensor(picks["contrast"].tolist()[: len(items)], device=images.device)) \
        if contrastive else targets
    maps = [explainer.attribute(images, asked).cpu().numpy() for explainer in explainers]
    pictures = model.to_pixels(images).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    rows = []
    for i, (it, (_, rec)) in enumerate(zip(items, picks.iterrows())):
        panels = [(f"{explainer.label} map for {rec['target_name']}", made[i])
                  for explainer, made in zip(explainers, maps)]
        if "mask" in it:
            panels.append(("box mask", it["mask"].float().numpy()))
        if "contrast_mask" in it:
            panels.append((f"box mask of Q ({it['contrast_category']})", it["contrast_mask"].float().numpy()))
        rows.append({"label": f"{rec['rank']}: {it['image_id']}\n{label} = {rec['score']:.2f}", "image": pictures[i],
                     "panels": panels})
    return explanation_figure(rows, folder / "examples.png")


def _image_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    name = html.escape(path.name, quote=True)  # a file name is data: never markup
    return f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>'


def read_run(folder: Path) -> dict:
    status = folder / "run.json"
    reportable = [name for name, entry in COMMANDS.items() if entry.reported]
    if (folder / "explain.json").is_file() and not status.is_file():
        raise UserError(f"{str(folder)!r} holds the figures of `cce-bench explain` (explain.png, explain.json), "
                        f"which are its whole result: report makes pages of runs of {', '.join(reportable)}")
    if not status.is_file():
        raise UserError(f"{str(folder)!r} is not a finished run (no run.json): pass a folder written by "
                        f"{', '.join(reportable)}, or finish it by rerunning with out=DIR")
    try:
        run = json.loads(status.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        run = None
    if not isinstance(run, dict) or run.get("command") not in reportable:
        raise UserError(f"{str(folder)!r} is not a finished cce-bench run that has a report (its run.json is not "
                        f"one of ours): pass a folder written by {', '.join(reportable)}")
    return run


def run_report(args: list[str]) -> tuple[Path, Path]:
    """`cce-bench report RUN_DIR`."""
    if len(args) != 1 or args[0].startswith("-"):
        raise UserError(
            "usage: cce-bench report RUN_DIR (a folder written by a command: sweep, compare, user-study, ...)"
        )
    return write_report(args[0])


def write_report(run_dir: str) -> tuple[Path, Path]:
    folder = Path(run_dir).expanduser()
    run = read_run(folder)
    command = run["command"]
    if COMMANDS[command].scoring:
        page = scoring_page(folder, run, COMMANDS[command].load())
    elif command == "user-study":
        page = study_page(folder)
    else:
        page = results_page(folder, run)
    page.title = f"cce-bench {command}: {folder.name}"
    page.provenance = {"command": command, "seed": run.get("seed"), "started": run.get("started"),
                       "finished": run.get("finished"), "wall time (s)": run.get("wall_seconds"),
                       "processes": run.get("processes", 1), **page.provenance}
    machine_file = folder / "machine.json"
    if machine_file.is_file():
        machine = json.loads(machine_file.read_text())
        page.provenance["device"] = f"{machine['device']} ({machine['device_name']})"
        page.provenance["versions"] = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
        source = machine.get("source")
        if source:
            page.provenance["checkout"] = (f"{source['commit'][:12]}"
                                           + (" with uncommitted changes" if source["uncommitted_changes"] else ""))
        for code in machine.get("user_code") or []:
            page.provenance[code["key"]] = f"{code['target']} ({code['file']}, sha256 {str(code['sha256'])[:16]})"
    page.config_text = OmegaConf.to_yaml(OmegaConf.load(folder / "config.yaml"))
    markdown_path, html_path = folder / "report.md", folder / "report.html"
    write_atomic(markdown_path, page.markdown())
    write_atomic(html_path, page.html())
    print(f"report written to {html_path} and {markdown_path}")
    return html_path, markdown_path


@dataclass
class Page:
    """What a report shows, whatever the command: written as markdown and as self-contained HTML."""

    caption: str = ""
    tables: list = field(default_factory=list)       # (title, DataFrame)
    plots: list = field(default_factory=list)        # PNG paths
    note: str = ""
    pictures: list = field(default_factory=list)     # (caption, [(label, data URI)]): a user study's sets
    links: list = field(default_factory=list)        # (text, file name in the folder)
    samples: pd.DataFrame | None = None
    provenance: dict = field(default_factory=dict)
    title: str = ""
    config_text: str = ""

    def markdown(self) -> str:
        md = [f"# {self.title}", "", self.caption, ""]
        for title, table in self.tables:
            md += ([f"## {title}", ""] if title else []) + [to_markdown(table), ""]
        md += [f"- [{html.escape(text)}]({quote(name)})" for text, name in self.links]
        if self.pictures:
            md += ["", f"{len(self.pictures)} sets: see report.html for the pictures.", ""]
        if self.plots:
            md += ["## Plots", ""] + [f"![{html.escape(p.name)}]({quote(p.name)})" for p in self.plots]
        md += ["", self.note, "", "## Provenance", ""] + [f"- **{k}**: {v}" for k, v in self.provenance.items()]
        if self.samples is not None:
            md += ["", f"Samples: {len(self.samples)} (samples.csv)"]
        return "\n".join(md + ["", "```yaml", self.config_text, "```", ""])

    def html(self) -> str:
        tables = "".join((f"<h2>{html.escape(title)}</h2>" if title else "")
                         + table.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.2f}")
                         for title, table in self.tables)
        links = "".join(f'<p><a href="{html.escape(quote(name), quote=True)}">{html.escape(text)}</a></p>'
                        for text, name in self.links)
        pictures = "".join(
            f"<figure><figcaption>{html.escape(caption)}</figcaption>"
            + "".join(
                f'<img alt="{html.escape(label, quote=True)}" title="{html.escape(label, quote=True)}" '
                f'src="{html.escape(uri, quote=True)}" style="width:180px;margin:2px">'
                for label, uri in images
            )
            + "</figure>"
            for caption, images in self.pictures
        )
        samples = "" if self.samples is None else \
            f"<details><summary>Samples ({len(self.samples)})</summary>{self.samples.to_html(index=False)}</details>"
        plots = f"<h2>Plots</h2>{''.join(_image_tag(p) for p in self.plots)}" if self.plots else ""
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
img{{max-width:100%}}figure{{margin:1em 0}}pre{{background:#f5f5f5;padding:1em;overflow:auto}}</style></head>
<body><h1>{html.escape(self.title)}</h1>
<p>{html.escape(self.caption)}</p>
{tables}{links}{pictures}
{plots}
<p>{html.escape(self.note)}</p>
<h2>Provenance</h2>
<ul>{''.join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in self.provenance.items())}</ul>
{samples}
<details><summary>Config</summary><pre>{html.escape(self.config_text)}</pre></details>
</body></html>
"""


def scoring_page(folder: Path, run: dict, command) -> Page:
    if not (folder / "table.csv").is_file():
        raise UserError(
            f"{str(folder)!r} has no table.csv: pass a finished run's folder (a rerun with its out= finishes it)"
        )
    cfg = OmegaConf.load(folder / "config.yaml")
    table = command.beside_paper(pd.read_csv(folder / "table.csv"))
    records = pd.read_csv(folder / "records.csv")
    samples = pd.read_csv(folder / "samples.csv")
    plots = sorted(p for p in folder.glob("*.png") if p.name != "examples.png")
    if command.examples is None:
        note = f"No example maps: `{command.name}` has no one score to rank its images by."
    else:
        try:
            plots.append(example_grid(folder, cfg, command, records))
            note = "Maps recomputed from the run's config for the best, median and worst examples."
        except UserError as exc:  # e.g. the model's weights are not on this machine
            note = f"Examples not drawn: {exc}"
    return Page(caption=run.get("caption", ""), tables=[("", table)], plots=plots, note=note, samples=samples,
                provenance={"images/pairs": len(samples)})


def study_page(folder: Path) -> Page:
    """A user study: each set's picture and its maps under the methods' labels (the page hides them)."""
    study = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    labels = study.get("labels", {})
    pictures = []
    for number, item in enumerate(study["sets"], start=1):
        images = [("the image", item["image"])]
        for method, uris in item["maps"].items():
            images += [(f"{labels.get(method, method)} {k + 1}" if len(uris) > 1 else labels.get(method, method), uri)
                       for k, uri in enumerate(uris)]
        pictures.append((f"set {number}: {item['image_id']} (the model's answer: {item['answer']}; choices: "
                         f"{', '.join(item['choices'])})", images))
    caption = (f"User study {study['study_id']} on {study['model']}: {len(study['sets'])} sets, methods "
               f"{', '.join(labels.get(m, m) for m in study['methods'])}. Below, each set with its maps named; "
               "participants see them as A, B, C in an order that changes per set.")
    return Page(caption=caption, pictures=pictures, links=[("Open the study page", "study.html")],
                provenance={"study": study["study_id"], "sets": len(study["sets"])})


def results_page(folder: Path, run: dict) -> Page:
    """The user study's results: its tables (participants, methods, guesses) and plots."""
    tables = [(title, pd.read_csv(folder / name)) for title, name in
              (("Participants", "background.csv"), ("Methods", "methods.csv"), ("Guesses", "guesses.csv"))
              if (folder / name).is_file()]
    return Page(caption=run.get("caption", ""), tables=tables, plots=sorted(folder.glob("*.png")),
                provenance={"participants": run.get("participants"), "files skipped": run.get("skipped")})


COMMAND = PlainCommand("report", run_report)

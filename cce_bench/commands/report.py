"""`cce-bench report RUN_DIR`: one page for a finished run, as self-contained HTML and as markdown.

The tables measured against the paper with the difference, the run's plots, a grid of example images
with their maps (best, median and worst by the run's score), and the run's provenance.
"""
from __future__ import annotations

import base64
import html
import json
from urllib.parse import quote
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from ..errors import UserError
from ..figures import explanation_figure
from ..tables import to_markdown


def command_module(command: str):
    """The module of the command that wrote a run: it knows its own table and how to pick examples."""
    import importlib

    return importlib.import_module(f"cce_bench.commands.{command.replace('-', '_')}")


def pick_examples(records: pd.DataFrame, command: str, cfg) -> tuple[pd.DataFrame, str, dict]:
    """Best, median and worst records by the command's own score (`scored_records`)."""
    chosen, label, setting, key = command_module(command).scored_records(records, cfg)
    ordered = chosen.sort_values("score", ascending=False).reset_index(drop=True)
    picks = ordered.iloc[[0, len(ordered) // 2, len(ordered) - 1]].assign(rank=["best", "median", "worst"])
    return picks.drop_duplicates(key), label, setting


def example_grid(folder: Path, cfg, command: str, records: pd.DataFrame) -> Path:
    """Recomputes the maps of the picked examples with the run's own config (model, data, method)."""
    from ..runs.runtime import build_dataset, build_explainer, build_model

    cfg = OmegaConf.merge(cfg, {"device": "cuda" if torch.cuda.is_available() and "cuda" in cfg.device else "cpu"})
    picks, label, setting = pick_examples(records, command, cfg)
    model = build_model(cfg)
    dataset = build_dataset(cfg, model)
    method = setting.pop("method", None) or cfg.method
    explainer = build_explainer(cfg, model, method).with_knobs(**setting)
    ids = picks["image_id" if "image_id" in picks else "pair_id"].tolist()
    index = {s.id: i for i, s in enumerate(dataset.samples)}
    items = [dataset[index[i]] for i in ids if i in index]
    images = torch.stack([it["image"] for it in items]).to(cfg.device)
    targets = torch.tensor(picks["target"].tolist()[: len(items)], device=images.device)
    maps = explainer.attribute(images, targets).cpu().numpy()
    pictures = model.to_pixels(images).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    rows = []
    for i, (it, (_, rec)) in enumerate(zip(items, picks.iterrows())):
        panels = [(f"{explainer.label} map for {rec['target_name']}", maps[i])]
        if "mask" in it:
            panels.append(("box mask", it["mask"].float().numpy()))
        rows.append({"label": f"{rec['rank']}: {it['id']}\n{label} = {rec['score']:.2f}", "image": pictures[i],
                     "panels": panels})
    return explanation_figure(rows, folder / "examples.png")


def _image_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    name = html.escape(path.name, quote=True)  # a file name is data: never markup
    return f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>'


def write_report(run_dir: str) -> tuple[Path, Path]:
    folder = Path(run_dir).expanduser()
    status = folder / "run.json"
    if not status.is_file():
        raise UserError(f"{str(folder)!r} is not a finished run (no run.json): pass a folder written by "
                        "a scoring command (sweep, pointing-game, score, sanity, compare), or finish it by rerunning with out=DIR")
    try:
        run = json.loads(status.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        run = None
    scoring = ("sweep", "pointing-game", "score", "sanity", "compare")
    if not isinstance(run, dict) or run.get("command") not in scoring or not (folder / "table.csv").is_file():
        raise UserError(f"{str(folder)!r} is not a finished cce-bench run (its run.json is not one of ours, or "
                        f"table.csv is missing): pass a folder written by {', '.join(scoring)}")
    command = run["command"]
    cfg = OmegaConf.load(folder / "config.yaml")
    machine = json.loads((folder / "machine.json").read_text())
    table = command_module(command).table_with_differences(pd.read_csv(folder / "table.csv"))
    table_md = run.get("caption", "")
    records = pd.read_csv(folder / "records.csv")
    samples = pd.read_csv(folder / "samples.csv")

    plots = sorted(p for p in folder.glob("*.png") if p.name != "examples.png")
    if not hasattr(command_module(command), "scored_records"):
        examples_note = f"No example maps: `{command}` has no one score to rank its images by."
    else:
        try:
            plots.append(example_grid(folder, cfg, command, records))
            examples_note = "Maps recomputed from the run's config for the best, median and worst examples."
        except UserError as exc:  # e.g. the model's weights are not on this machine
            examples_note = f"Examples not drawn: {exc}"

    title = f"cce-bench {command}: {folder.name}"
    provenance = {"command": command, "seed": run.get("seed"), "started": run.get("started"),
                  "finished": run.get("finished"), "wall time (s)": run.get("wall_seconds"),
                  "processes": run.get("processes", 1), "device": f"{machine['device']} ({machine['device_name']})",
                  "versions": ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v),
                  "images/pairs": len(samples)}
    config_text = OmegaConf.to_yaml(cfg)

    md = [f"# {title}", "", table_md, "", to_markdown(table), "", "## Plots", ""]
    md += [f"![{html.escape(p.name)}]({quote(p.name)})" for p in plots]
    md += ["", examples_note, "", "## Provenance", ""] + [f"- **{k}**: {v}" for k, v in provenance.items()]
    md += ["", f"Samples: {len(samples)} (samples.csv)", "", "```yaml", config_text, "```", ""]
    markdown_path = folder / "report.md"
    markdown_path.write_text("\n".join(md), encoding="utf-8", errors="backslashreplace")

    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
img{{max-width:100%}}figure{{margin:1em 0}}pre{{background:#f5f5f5;padding:1em;overflow:auto}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{html.escape(table_md)}</p>
{table.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.2f}")}
<h2>Plots</h2>
{''.join(_image_tag(p) for p in plots)}
<p>{html.escape(examples_note)}</p>
<h2>Provenance</h2>
<ul>{''.join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in provenance.items())}</ul>
<details><summary>Samples ({len(samples)})</summary>{samples.to_html(index=False)}</details>
<details><summary>Config</summary><pre>{html.escape(config_text)}</pre></details>
</body></html>
"""
    html_path = folder / "report.html"
    html_path.write_text(page, encoding="utf-8", errors="backslashreplace")
    print(f"report written to {html_path} and {markdown_path}")
    return html_path, markdown_path

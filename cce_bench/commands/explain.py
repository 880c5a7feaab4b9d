"""`cce-bench explain IMAGE [IMAGE] [target=..] [contrast=..] [targets=[..]] [methods=[..]]`: figures.

The three questions of the CCE paper, each answered by a positive map ("why P": where the model looks
when it says P, M_sup) and a negative map ("why not Q": where evidence for Q had to be made, M_pro):
- one image:                 why P? (P the top-1 class or `target`; Q the next M classes)
- `target=P contrast=Q`:     why P rather than Q?
- two images a and b:        why is a P while b is Q? (a is perturbed toward Q, b toward P)
`targets=[P1,P2]` explains several objects of one image, one map each; `methods=[...]` with several methods
draws one grid: the image once, a column per method (a row per class with `targets=`).
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from ..api import load_images
from ..errors import UserError, memory_asked_by
from ..explainers import EXPLAINERS, postprocess
from ..explainers.base import other_top_classes
from ..figures import explanation_figure, grid_rows, method_grid
from ..models import class_index
from ..runs.map_store import write_maps
from ..runs.run_folder import RunFolder
from ..runs.runtime import build_explainer, build_model, method_names, resolve, seed_everything
from ..runs.scoring import check_finite
from . import PlainCommand


def images_and_pictures(names: list[str], model, data_cfg) -> tuple[torch.Tensor, list]:
    """The images as the model takes them (the run's data settings), and as pictures [H, W, 3] in [0, 1]."""
    resize = data_cfg.resize
    resize = int(resize) if isinstance(resize, (int, float)) else tuple(int(side) for side in resize)
    settings = replace(model.inputs, resize=resize, size=int(data_cfg.crop),
                       interpolation=str(data_cfg.interpolation))
    images = load_images(names, model, settings)
    pixels = model.to_pixels(images).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return images, list(pixels)


def describe(categories, probs, index) -> str:
    return f"{categories[index]} ({probs[index]:.2f})"


def asked(categories, probs, index) -> str:
    """The explained class with its probability, and the model's own answer beside it when they differ."""
    top = int(probs.argmax())
    said = describe(categories, probs, index)
    return said if index == top else f"{said}, not the model's answer {describe(categories, probs, top)}"


def default_contrast(probs: torch.Tensor, p: int, count: int, floor: float) -> list[int]:
    """The `count` most probable classes other than p and the model's answer (which needs no change: CCE's
    contrast classes) whose probability reaches `floor` (at least the most probable one): 'why not Q?'
    is asked of classes the model considers, not of its 1000th guess."""
    m = max(1, min(count, probs.numel() - len({p, int(probs.argmax())})))  # as many as there are
    order = [int(c) for c in other_top_classes(probs[None], torch.tensor([p], device=probs.device), m)[0]]
    kept = [c for c in order if float(probs[c]) >= floor]
    return kept or order[:1]


def two_map_row(explainer, asked_of: str, question: str, picture, maps, b, categories) -> dict:
    """The figure's row of one question answered by a method with two maps (its `panels`); `asked_of` names
    the method or the image the question is asked of, `found` is what the counterfactual turned out to be."""
    found, panels = explainer.panels(maps, b, categories)
    return {"label": f"{asked_of}: {question}\n{found}", "method": explainer.label, "question": question,
            "found": found, "panels": panels, "image": picture}


def contrast_class(cfg, categories, probs, p: int) -> int:
    """`contrast=Q` checked: another class than P, and one the model does not already say."""
    q = class_index(cfg.contrast, categories)
    if q == p:
        raise UserError(f"contrast={cfg.contrast} is the explained class itself: pass another class for 'why P "
                        "rather than Q?'")
    if q == int(probs.argmax()):
        raise UserError(f"the model already says {categories[q]} for {cfg.inputs[0]}: a contrast class must need a "
                        f"change; ask why {categories[q]} rather than {categories[p]} (target={q} contrast={p}), or "
                        "pass another contrast")
    return q


def run_explain(cfg: DictConfig) -> Path:
    cfg = resolve(cfg)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    if not cfg.inputs:
        raise UserError("no image given: cce-bench explain photo.jpg (or a bundled photo: chelsea, coffee, ...)")
    if len(cfg.inputs) > 2:
        raise UserError(
            f"{len(cfg.inputs)} images given: explain takes one image, or two for 'why is a P while b is Q?'"
        )
    methods = method_names(cfg)
    if len(cfg.inputs) == 2 and (len(methods) != 1 or not EXPLAINERS.get(methods[0]).two_maps):
        raise UserError(
            "'why is a P while b is Q?' (two images) is asked of one method with two maps of its own (methods=["
            f"{','.join(n for n in EXPLAINERS.names() if EXPLAINERS.get(n).two_maps)}]): leave methods= out, or "
            "explain each image alone with methods=[...]"
        )
    model = build_model(cfg)
    cats = model.categories
    images, pictures = images_and_pictures(list(cfg.inputs), model, cfg.data)
    with torch.no_grad():
        probs = check_finite(model(images).float(), model, list(cfg.inputs)).softmax(1).cpu()
    rows, facts = [], {"inputs": list(cfg.inputs), "questions": []}
    saved: dict[str, dict[str, np.ndarray]] = {}  # save_maps=true: method (or method_M_sup, ...) -> key -> map

    if len(images) == 2:  # why is a P while b is Q?
        p, q = int(probs[0].argmax()), int(probs[1].argmax())
        if p == q:
            raise UserError(f"both images are {cats[p]} to the model: 'why is a P while b is Q?' needs two images "
                            "of different classes")
        explainer = build_explainer(cfg, model, methods[0])
        for b, (mine, other) in enumerate(((p, q), (q, p))):
            maps = explainer.contrastive_maps(images[b:b + 1], torch.tensor([mine], device=images.device),
                                              contrast=torch.tensor([[other]], device=images.device))
            question = f"why {describe(cats, probs[b], mine)} rather than {cats[other]}?"
            rows.append(two_map_row(explainer, str(cfg.inputs[b]), question, pictures[b], maps, 0, cats))
            keep_two_maps(saved, methods[0], str(cfg.inputs[b]), maps, explainer.alpha)
            facts["questions"].append(
                {
                    "image": cfg.inputs[b],
                    "P": cats[mine],
                    "Q": cats[other],
                    "valid": bool(maps.valid[0, 0]),
                    "counterfactual": cats[int(maps.predicted[0, 0])],
                }
            )
    elif cfg.targets:  # several objects of one image
        targets = [class_index(t, cats) for t in cfg.targets]
        batch = images.expand(len(targets), -1, -1, -1)
        for name in methods:
            explainer = build_explainer(cfg, model, name)
            maps = explainer.attribute(batch, torch.tensor(targets, device=images.device)).cpu().numpy()
            for i, t in enumerate(targets):
                saved.setdefault(name, {})[f"{cfg.inputs[0]}:{cats[t]}"] = maps[i]
            rows.append({"label": f"{explainer.label}: {cfg.inputs[0]}", "method": explainer.label,
                         "question": str(cfg.inputs[0]), "image": pictures[0],
                         "panels": [(f"why {describe(cats, probs[0], t)}", maps[i]) for i, t in enumerate(targets)]})
        facts["questions"].append({"targets": [cats[t] for t in targets]})
    else:  # why P? or why P rather than Q?
        p = class_index(cfg.target, cats) if cfg.target is not None else int(probs[0].argmax())
        target = torch.tensor([p], device=images.device)
        for name in methods:
            with memory_asked_by(EXPLAINERS.get(name).memory_hint()):
                explainer = build_explainer(cfg, model, name)
                if explainer.two_maps:
                    if cfg.contrast is not None:
                        contrast = [contrast_class(cfg, cats, probs[0], p)]
                        question = (f"why {asked(cats, probs[0], p)} rather than "
                                    f"{describe(cats, probs[0], contrast[0])}?")
                    else:
                        contrast = default_contrast(probs[0], p, explainer.contrast_count, float(cfg.contrast_floor))
                        question = f"why {asked(cats, probs[0], p)}?"
                    asked_of = torch.tensor([contrast], device=images.device)
                    maps = explainer.contrastive_maps(images, target, contrast=asked_of)
                    rows.append(two_map_row(explainer, explainer.label, question, pictures[0], maps, 0, cats))
                    keep_two_maps(saved, name, str(cfg.inputs[0]), maps, explainer.alpha)
                    facts["questions"].append({"method": name, "P": cats[p],
                                               "Q": [cats[int(c)] for c in maps.contrast[0]],
                                               "valid": maps.valid[0].tolist(),
                                               "counterfactual": [cats[int(c)] for c in maps.predicted[0]]})
                else:
                    saliency = explainer.attribute(images, target)
                    saved.setdefault(name, {})[str(cfg.inputs[0])] = saliency[0].cpu().numpy()
                    question = f"why {asked(cats, probs[0], p)}?"
                    rows.append({"label": f"{explainer.label}: {question}", "method": explainer.label,
                                 "question": question, "image": pictures[0],
                                 "panels": [(explainer.label, saliency[0].cpu().numpy())]})
                    facts["questions"].append({"method": name, "P": cats[p]})

    for row in rows:
        for title, saliency in row["panels"]:
            if saliency is not None and (not np.isfinite(saliency).all() or not np.abs(saliency).max() > 0):
                print(f"warning: the map \"{title}\" of {row['label'].splitlines()[0]} is "
                      f"{'not finite' if not np.isfinite(saliency).all() else 'all zero'}: it shows nothing; check "
                      "the method's knobs", file=sys.stderr)
    run = RunFolder(cfg.out)
    if len(methods) > 1:  # one image under several methods: the image once, a column per method
        figure = several_methods_figure(rows, cfg.targets, run.path / "explain.png")
    else:
        figure = explanation_figure(rows, run.path / "explain.png")
    run.write_json("explain.json", facts)
    if cfg.get("save_maps"):
        write_maps(run.path, saved)
    run.write_config(cfg)
    print(f"figure written to {figure}")
    return figure


def several_methods_figure(rows: list[dict], targets, path: Path) -> Path:
    """The rows of one image under several methods as one grid: for `targets=[...]` a row per asked class and
    a column per method; for one question the methods' maps side by side (a two-map method's M_sup, M_pro
    and unified map each), wrapped into rows."""
    picture = rows[0]["image"]
    if targets:
        cells = [[(f"{row['method']}: {row['panels'][t][0]}", row["panels"][t][1]) for row in rows]
                 for t in range(len(rows[0]["panels"]))]
        return method_grid(picture, rows[0]["question"], cells, path)
    # the question once, with what each two-map method's counterfactual turned out to be under it
    title = rows[0]["question"] + "".join(f"\n{row['method']}: {row['found']}" for row in rows if "found" in row)
    panels = [(name if name.startswith(row["method"]) else f"{row['method']} {name}", saliency)
              for row in rows for name, saliency in row["panels"]]
    return method_grid(picture, title, grid_rows(panels), path)


def keep_two_maps(saved: dict, name: str, key: str, maps, alpha: float) -> None:
    """A two-map method's maps of one question (the first image of `maps`), as the figure draws them: the
    unified map under the method's name, M_sup and M_pro under NAME_M_sup, NAME_M_pro."""
    size = tuple(maps.sup.shape[-2:])
    for suffix, values in (("", maps.unified(alpha)), ("_M_sup", maps.sup), ("_M_pro", maps.pro)):
        saved.setdefault(f"{name}{suffix}", {})[key] = postprocess(values[:1].float(), size)[0].cpu().numpy()


COMMAND = PlainCommand("explain", run_explain)

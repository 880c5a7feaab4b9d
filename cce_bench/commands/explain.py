"""`cce-bench explain IMAGE [IMAGE] [target=..] [contrast=..] [targets=[..]] [methods=[..]]`: figures.

The three questions of the CCE paper, each answered by a positive map ("why P": where the model looks
when it says P, M_sup) and a negative map ("why not Q": where evidence for Q had to be made, M_pro):
- one image:                 why P? (P the top-1 class or `target`; Q the next M classes)
- `target=P contrast=Q`:     why P rather than Q?
- two images a and b:        why is a P while b is Q? (a is perturbed toward Q, b toward P)
`targets=[P1,P2]` explains several objects of one image, one map each; `methods=[...]` adds a row per method.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from ..data import image_file, preprocessing, read_or_skip
from ..errors import UserError, memory_asked_by
from ..explainers import CCE, EXPLAINERS
from ..explainers.base import other_top_classes
from ..figures import explanation_figure
from ..models import class_index
from ..runs.run_folder import RunFolder
from ..runs.scoring import check_finite
from ..runs.runtime import build_explainer, build_model, method_knobs, method_names, resolve, seed_everything
from ..runs.engine import PlainCommand


def load_images(names: list[str], model, data_cfg) -> tuple[torch.Tensor, list]:
    transform = preprocessing(*model.channel_stats(), data_cfg.resize, data_cfg.crop, data_cfg.interpolation)
    images = []
    for name in names:
        picture, problem = read_or_skip(name, image_file(name))
        if problem is not None:  # the input's problem (corrupt, not an image, a decompression bomb, a FIFO)
            raise UserError(f"{problem['error'].rstrip('.')}: pass an image file that Pillow can open")
        images.append(transform(picture))
    images = torch.stack(images).to(next(model.parameters()).device)
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


def contrastive_row(label, picture, maps, b, categories, alpha) -> dict:
    """Panels of one CCE question: why P (M_sup), why not Q (M_pro), and the unified map."""
    valid = maps.valid[b]
    shown = [categories[int(c)] for c in maps.contrast[b][:3]]
    made = categories[int(maps.predicted[b][0])]
    not_q = "why not " + ", ".join(shown) + ("..." if maps.contrast.shape[1] > 3 else "")
    return {"label": label + f"\ncounterfactual -> {made} ({'valid' if valid[0] else 'not valid'}); "
                             f"valid {int(valid.sum())}/{len(valid)}",
            "panels": [("why P: M_sup", maps.sup[b].cpu().numpy()), (not_q + ": M_pro", maps.pro[b].cpu().numpy()),
                       (f"unified, alpha={alpha}", maps.unified(alpha)[b].cpu().numpy())],
            "image": picture}


def run_explain(cfg: DictConfig) -> Path:
    cfg = resolve(cfg)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    if not cfg.inputs:
        raise UserError("no image given: cce-bench explain photo.jpg (or a bundled photo: chelsea, coffee, ...)")
    if len(cfg.inputs) > 2:
        raise UserError(
            f"{len(cfg.inputs)} images given: explain takes one image, or two for 'why is a P while b is Q?'"
        )
    if len(cfg.inputs) == 2 and [str(m) for m in cfg.methods] != ["cce"]:
        raise UserError(
            "'why is a P while b is Q?' (two images) is CCE's question only: leave methods= out, or explain "
            "each image alone with methods=[...]"
        )
    model = build_model(cfg)
    cats = model.categories
    images, pictures = load_images(list(cfg.inputs), model, cfg.data)
    with torch.no_grad():
        probs = check_finite(model(images).float(), model, list(cfg.inputs)).softmax(1).cpu()
    cce_knobs = method_knobs(cfg, "cce")
    alpha = float(cce_knobs.get("alpha", 0.7))
    methods = method_names(cfg)
    rows, facts = [], {"inputs": list(cfg.inputs), "questions": []}

    if len(images) == 2:  # why is a P while b is Q?
        p, q = int(probs[0].argmax()), int(probs[1].argmax())
        if p == q:
            raise UserError(f"both images are {cats[p]} to the model: 'why is a P while b is Q?' needs two images "
                            "of different classes")
        cce = CCE(model, **{**cce_knobs, "M": 1})
        for b, (mine, other) in enumerate(((p, q), (q, p))):
            maps = cce.contrastive_maps(images[b:b + 1], torch.tensor([mine], device=images.device),
                                        contrast=torch.tensor([[other]], device=images.device))
            label = f"{cfg.inputs[b]}: why {describe(cats, probs[b], mine)} rather than {cats[other]}?"
            rows.append(contrastive_row(label, pictures[b], maps, 0, cats, alpha))
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
            rows.append({"label": f"{explainer.label}: {cfg.inputs[0]}", "image": pictures[0],
                         "panels": [(f"why {describe(cats, probs[0], t)}", maps[i]) for i, t in enumerate(targets)]})
        facts["questions"].append({"targets": [cats[t] for t in targets]})
    else:  # why P? or why P rather than Q?
        p = class_index(cfg.target, cats) if cfg.target is not None else int(probs[0].argmax())
        target = torch.tensor([p], device=images.device)
        for name in methods:
            with memory_asked_by(EXPLAINERS.get(name).memory_hint()):
                if name == CCE.name:
                    if cfg.contrast is not None:
                        q = class_index(cfg.contrast, cats)
                        if q == p:
                            raise UserError(
                                f"contrast={cfg.contrast} is the explained class itself: pass another class "
                                "for 'why P rather than Q?'"
                            )
                        if q == int(probs[0].argmax()):
                            raise UserError(
                                f"the model already says {cats[q]} for {cfg.inputs[0]}: a contrast class must "
                                f"need a change; ask why {cats[q]} rather than {cats[p]} (target={q} "
                                f"contrast={p}), or pass another contrast"
                            )
                        maps = CCE(model, **{**cce_knobs, "M": 1}).contrastive_maps(
                            images, target, contrast=torch.tensor([[q]], device=images.device))
                        label = f"CCE: why {asked(cats, probs[0], p)} rather than {describe(cats, probs[0], q)}?"
                    else:
                        contrast = default_contrast(probs[0], p, int(cce_knobs.get("M", 5)), float(cfg.contrast_floor))
                        maps = CCE(model, **cce_knobs).contrastive_maps(
                            images, target, contrast=torch.tensor([contrast], device=images.device))
                        label = f"CCE: why {asked(cats, probs[0], p)}?"
                    rows.append(contrastive_row(label, pictures[0], maps, 0, cats, alpha))
                    facts["questions"].append({"method": name, "P": cats[p],
                                               "Q": [cats[int(c)] for c in maps.contrast[0]],
                                               "valid": maps.valid[0].tolist(),
                                               "counterfactual": [cats[int(c)] for c in maps.predicted[0]]})
                else:
                    explainer = build_explainer(cfg, model, name)
                    saliency = explainer.attribute(images, target)
                    rows.append({"label": f"{explainer.label}: why {asked(cats, probs[0], p)}?", "image": pictures[0],
                                 "panels": [(explainer.label, saliency[0].cpu().numpy())]})
                    facts["questions"].append({"method": name, "P": cats[p]})

    for row in rows:
        for title, saliency in row["panels"]:
            if saliency is not None and (not np.isfinite(saliency).all() or not np.abs(saliency).max() > 0):
                print(f"warning: the map \"{title}\" of {row['label'].splitlines()[0]} is "
                      f"{'not finite' if not np.isfinite(saliency).all() else 'all zero'}: it shows nothing; check "
                      "the method's knobs", file=sys.stderr)
    run = RunFolder(cfg.out)
    figure = explanation_figure(rows, run.path / "explain.png")
    run.write_json("explain.json", facts)
    run.write_config(cfg)
    print(f"figure written to {figure}")
    return figure


COMMAND = PlainCommand("explain", run_explain)

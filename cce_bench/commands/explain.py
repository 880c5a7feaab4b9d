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
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from ..api import load_images
from ..errors import UserError, memory_asked_by
from ..explainers import EXPLAINERS, Contrast, Explanation
from ..explainers.base import other_top_classes
from ..figures import explanation_figure, grid_rows, method_grid
from ..models import class_index
from ..models.inputs import resolve_input_settings
from ..parts.explain import is_scene
from ..runs.map_store import write_maps
from ..runs.run_folder import RunFolder
from ..runs.runtime import build_explainer, build_model, chosen_methods, resolve, seed_everything
from ..runs.scoring import check_finite
from . import PlainCommand


def images_and_pictures(names: list[str], model, data_cfg) -> tuple[torch.Tensor, list]:
    """The images as the model takes them (the run's data settings), and as pictures [H, W, 3] in [0, 1]."""
    images = load_images(names, model, resolve_input_settings(model.inputs, data_cfg))
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


def explanation_row(label: str, asked_of: str, question: str, picture, explanation: Explanation, b: int,
                    categories) -> dict:
    """The figure's row of one question: a panel per named map of the method's answer (a method with one map:
    its label over it), and what the method found, where it says (`found`)."""
    if len(explanation.maps) > 1:
        panels = [(title, maps.cpu().numpy()) for title, maps in explanation.titles(b, categories)]
    else:
        panels = [(label, explanation.answer[b].cpu().numpy())]
    found = explanation.found[b] if explanation.found else ""
    row = {"label": f"{asked_of}: {question}" + (f"\n{found}" if found else ""), "method": label,
           "question": question, "image": picture, "panels": panels}
    return {**row, "found": found} if found else row


def question_facts(name: str, explanation: Explanation, b: int, categories) -> dict:
    """explain.json's record of one answer: the method, P, and where it asked about them Q, and what its
    counterfactuals were (valid or not, and the class the model gave them)."""
    assert explanation.classes is not None  # explain() always resolves the classes asked about
    facts: dict = {"method": name, "P": categories[int(explanation.classes[b])]}
    if explanation.contrast is not None:
        facts["Q"] = [categories[int(c)] for c in explanation.contrast[b]]
    if "valid" in explanation.details:
        facts["valid"] = explanation.details["valid"][b].tolist()
    if "predicted" in explanation.details:
        facts["counterfactual"] = [categories[int(c)] for c in explanation.details["predicted"][b]]
    return facts


def keep_explanation(saved: dict, name: str, key: str, explanation: Explanation, b: int) -> None:
    """The maps of image b as the figure draws them: the answer under the method's name, its other named maps
    under NAME_MAP (CCE: cce, cce_M_sup, cce_M_pro)."""
    for map_name, maps in explanation.maps.items():
        file = name if map_name == explanation.main else f"{name}_{map_name}"
        saved.setdefault(file, {})[key] = maps[b].cpu().numpy()


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
    methods = chosen_methods(cfg)
    check_inputs(cfg, methods)
    model = build_model(cfg)
    if any(is_scene(name) for name in cfg.inputs):
        return part_scene_figure(cfg, model, methods)
    images, pictures = images_and_pictures(list(cfg.inputs), model, cfg.data)
    with torch.no_grad():
        logits = check_finite(model(images).float(), model, list(cfg.inputs))
    if len(images) == 2:
        asking = two_images if cfg.pair else each_image
    else:
        asking = several_classes if cfg.targets else one_question
    rows, questions, saved = asking(cfg, model, methods, images, pictures, logits)
    warn_blank(rows)
    run = RunFolder(cfg.out)
    if len(methods) > 1 and len(images) == 1:  # one image under several methods: the image once, a column each
        figure = several_methods_figure(rows, cfg.targets, run.path / "explain.png")
    else:
        figure = explanation_figure(rows, run.path / "explain.png")
    run.write_json("explain.json", {"inputs": list(cfg.inputs), "questions": questions})
    if cfg.get("save_maps"):
        write_maps(run.path, saved)
    run.write_config(cfg)
    print(f"figure written to {figure}")
    return figure


def part_scene_figure(cfg: DictConfig, model, methods: list[str]) -> Path:
    """One part scene (parts:SPLIT_INDEX): its parts, each method's map of P and its answer to "why P rather than Q"
    (cce_bench/parts/explain.py), as one grid."""
    from ..parts.explain import explain_scene

    if len(cfg.inputs) != 1:
        raise UserError(f"{len(cfg.inputs)} inputs given with a part scene: explain takes one scene "
                        "(parts:test_000005)")
    scene = explain_scene(cfg, model, methods)
    run = RunFolder(cfg.out)
    figure = method_grid(scene.picture, scene.title, scene.cells, run.path / "explain.png")
    run.write_json("explain.json", {"inputs": list(cfg.inputs), "questions": scene.questions})
    if cfg.get("save_maps"):
        write_maps(run.path, scene.saved)
    run.write_config(cfg)
    print(f"figure written to {figure}")
    return figure


def check_inputs(cfg: DictConfig, methods: list[str]) -> None:
    """One image, or two for 'why is a P while b is Q?', asked of one method that answers contrast itself."""
    if not cfg.inputs:
        raise UserError("no image given: cce-bench explain photo.jpg (or a bundled photo: chelsea, coffee, ...)")
    if len(cfg.inputs) > 2:
        raise UserError(
            f"{len(cfg.inputs)} images given: explain takes one image, or two for 'why is a P while b is Q?'"
        )
    if len(cfg.inputs) == 2 and not cfg.pair:
        if cfg.targets or cfg.contrast is not None:
            raise UserError("pair=false explains each of the two images for its own class (or target=): "
                            f"{'targets=' if cfg.targets else 'contrast='} asks about one image, so give it one")
        return
    if len(cfg.inputs) == 2 and (len(methods) != 1 or not EXPLAINERS.get(methods[0]).answers_contrast()):
        answering = ",".join(n for n in EXPLAINERS.names() if EXPLAINERS.get(n).answers_contrast())
        raise UserError(
            "'why is a P while b is Q?' (two images) is asked of one method that answers 'P rather than Q' itself "
            f"(methods=[{answering}]): leave methods= out, or pass pair=false to explain each image alone with "
            "methods=[...] (a row per image)"
        )


def two_images(cfg, model, methods, images, pictures, logits) -> tuple[list, list, dict]:
    """Why is a P while b is Q? Each image's answer of the one method, a asked against b's class and b
    against a's."""
    cats, probs = model.categories, logits.softmax(1).cpu()
    p, q = int(probs[0].argmax()), int(probs[1].argmax())
    if p == q:
        raise UserError(f"both images are {cats[p]} to the model: 'why is a P while b is Q?' needs two images "
                        "of different classes")
    explainer = build_explainer(cfg, model, methods[0])
    rows, questions = [], []
    saved: dict[str, dict[str, np.ndarray]] = {}
    for b, (mine, other) in enumerate(((p, q), (q, p))):
        asked_of = Contrast(torch.tensor([mine], device=images.device), torch.tensor([[other]], device=images.device))
        explanation = explainer.explain(images[b:b + 1], asked_of)
        question = f"why {describe(cats, probs[b], mine)} rather than {cats[other]}?"
        rows.append(explanation_row(explainer.label, str(cfg.inputs[b]), question, pictures[b], explanation, 0, cats))
        keep_explanation(saved, methods[0], str(cfg.inputs[b]), explanation, 0)
        facts = question_facts(methods[0], explanation, 0, cats)
        questions.append({"image": cfg.inputs[b], **facts, "Q": cats[other], "valid": facts.get("valid", [None])[0],
                          "counterfactual": facts.get("counterfactual", [None])[0]})
    return rows, questions, saved


def several_classes(cfg, model, methods, images, pictures, logits) -> tuple[list, list, dict]:
    """Several objects of one image (`targets=[...]`): each method's map of each class."""
    cats, probs = model.categories, logits.softmax(1).cpu()
    targets = [class_index(t, cats) for t in cfg.targets]
    batch = images.expand(len(targets), -1, -1, -1)
    rows = []
    saved: dict[str, dict[str, np.ndarray]] = {}
    for name in methods:
        explainer = build_explainer(cfg, model, name)
        maps = explainer.attribute(batch, torch.tensor(targets, device=images.device)).cpu().numpy()
        for i, t in enumerate(targets):
            saved.setdefault(name, {})[f"{cfg.inputs[0]}:{cats[t]}"] = maps[i]
        rows.append({"label": f"{explainer.label}: {cfg.inputs[0]}", "method": explainer.label,
                     "question": str(cfg.inputs[0]), "image": pictures[0],
                     "panels": [(f"why {describe(cats, probs[0], t)}", maps[i]) for i, t in enumerate(targets)]})
    return rows, [{"targets": [cats[t] for t in targets]}], saved


def one_question(cfg, model, methods, images, pictures, logits) -> tuple[list, list, dict]:
    """Why P? (P the model's answer or `target`), or why P rather than Q (`contrast`), asked of each method: a
    method that answers contrast itself is asked against Q (its own contrast classes, the improbable ones left
    out, where no Q is given); any other answers with its map for P."""
    cats, probs = model.categories, logits.softmax(1).cpu()
    p = class_index(cfg.target, cats) if cfg.target is not None else int(probs[0].argmax())
    target = torch.tensor([p], device=images.device)
    rows, questions = [], []
    saved: dict[str, dict[str, np.ndarray]] = {}
    for name in methods:
        with memory_asked_by(EXPLAINERS.get(name).memory_hint()):
            explainer = build_explainer(cfg, model, name)
            question = f"why {asked(cats, probs[0], p)}?"
            asked_of: torch.Tensor | Contrast = target
            if explainer.answers_contrast():
                if cfg.contrast is not None:
                    contrast = [contrast_class(cfg, cats, probs[0], p)]
                    question = f"why {asked(cats, probs[0], p)} rather than {describe(cats, probs[0], contrast[0])}?"
                else:
                    count = explainer.contrast_classes(logits, target).shape[1]
                    contrast = default_contrast(probs[0], p, count, float(cfg.contrast_floor))
                asked_of = Contrast(target, torch.tensor([contrast], device=images.device))
            explanation = explainer.explain(images, asked_of)
        rows.append(explanation_row(explainer.label, explainer.label, question, pictures[0], explanation, 0, cats))
        keep_explanation(saved, name, str(cfg.inputs[0]), explanation, 0)
        questions.append(question_facts(name, explanation, 0, cats))
    return rows, questions, saved


def each_image(cfg, model, methods, images, pictures, logits) -> tuple[list, list, dict]:
    """Each image asked alone (`pair=false`), as one_question asks it: a row per image, every method's maps
    side by side in it (a two-map method's M_sup, M_pro and unified map each)."""
    rows, questions = [], []
    saved: dict[str, dict[str, np.ndarray]] = {}
    for b, name in enumerate(cfg.inputs):
        alone = cfg.copy()
        alone.inputs = [name]
        answers, asked_here, kept = one_question(alone, model, methods, images[b:b + 1], pictures[b:b + 1],
                                                 logits[b:b + 1])
        panels = [(title if title.startswith(row["method"]) else f"{row['method']} {title}", saliency)
                  for row in answers for title, saliency in row["panels"]]
        found = "".join(f"\n{row['method']}: {row['found']}" for row in answers if "found" in row)
        rows.append({"label": f"{name}: {answers[0]['question']}{found}", "method": "", "image": pictures[b],
                     "question": answers[0]["question"], "panels": panels})
        questions += [{"image": str(name), **facts} for facts in asked_here]
        for method, maps in kept.items():
            saved.setdefault(method, {}).update(maps)
    return rows, questions, saved


def warn_blank(rows: list[dict]) -> None:
    """One line per drawn map that is all zero or not finite: it shows nothing."""
    for row in rows:
        for title, saliency in row["panels"]:
            if saliency is not None and (not np.isfinite(saliency).all() or not np.abs(saliency).max() > 0):
                print(f"warning: the map \"{title}\" of {row['label'].splitlines()[0]} is "
                      f"{'not finite' if not np.isfinite(saliency).all() else 'all zero'}: it shows nothing; check "
                      "the method's knobs", file=sys.stderr)


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


COMMAND = PlainCommand("explain", run_explain)

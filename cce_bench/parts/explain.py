"""`cce-bench explain parts:SCENE model=parts_cnn methods=[...]`: one part scene (its id SPLIT_INDEX after
`parts:`, e.g. parts:test_000005, in the world of the model: model.world), its parts, and each method's "why P"
map and its answer to "why P rather than Q", Q the class one slot away (contrast part's question: the slot in turn
over the scenes) unless `contrast=` names another. A method with no answer of its own to "rather than Q" answers
with its map of P, so it has no second-row panel."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from ..explainers import Contrast
from ..tensors import device_of
from .scenes import SHAPES, SLOTS, SPLITS, PartsWorld, Scene

SCENE_PREFIX = "parts:"


def is_scene(name: str) -> bool:
    """Whether an input of explain names a part scene (parts:SPLIT_INDEX) rather than an image."""
    return str(name).startswith(SCENE_PREFIX)


def scene_by_id(world: PartsWorld, name: str) -> Scene:
    """The scene `parts:SPLIT_INDEX` names (SPLIT_INDEX: its image_id in records.csv), or one line on what a
    scene id is."""
    split, _, index = name.removeprefix(SCENE_PREFIX).rpartition("_")
    if split not in SPLITS or not index.isdigit():
        raise UserError(f"{name!r} is not a part scene: explain takes {SCENE_PREFIX}SPLIT_INDEX (e.g. "
                        f"{SCENE_PREFIX}test_000005; splits: {', '.join(SPLITS)}), the ids of records.csv")
    return world.scene(split, int(index))


@dataclass
class SceneFigure:
    """What explain draws and records for one scene: the picture, its title, the grid's cells, the questions
    asked (explain.json) and the maps by method (save_maps)."""

    picture: np.ndarray
    title: str
    cells: list
    questions: list
    saved: dict


def scene_question(world: PartsWorld, scene: Scene, categories, target, contrast) -> tuple[int, int, int | None]:
    """(P, Q, the slot where Q differs from P or None): P the scene's class or `target`, Q contrast part's
    neighbour of P (the slot in turn over the scenes) or `contrast`."""
    from ..metrics.contrast_part import contrast_slot
    from ..models import class_index

    p = scene.label if target is None else class_index(target, categories)
    if contrast is not None:
        q = class_index(contrast, categories)
        if q == p:
            raise UserError(f"contrast={contrast} is the explained class itself: pass another class")
        differ = [s for s, (a, b) in enumerate(zip(world.classes[p], world.classes[q])) if a != b]
        return p, q, differ[0] if len(differ) == 1 else None
    slot = contrast_slot(scene)
    return p, world.neighbour(p, slot), slot


def model_input(model, picture: np.ndarray) -> torch.Tensor:
    """A drawn scene [H, W, 3] uint8 as `model` takes it: [1, 3, H, W], its own input settings."""
    from ..data import preprocessing

    inputs = model.inputs
    transform = preprocessing(inputs.mean, inputs.std, inputs.resize, inputs.size, inputs.interpolation)
    return transform(Image.fromarray(picture))[None]


def explain_scene(cfg, model, methods: list[str]) -> SceneFigure:
    """The scene's grid: row one its parts and each method's map of P; row two the slot that makes Q and each
    contrastive method's named maps for "why P rather than Q"."""
    from omegaconf import OmegaConf

    from ..models.parts_cnn import parts_world
    from ..runs.runtime import build_explainer

    world = parts_world(OmegaConf.select(cfg, "model.world"))
    if list(model.categories) != [world.class_name(label) for label in range(len(world.classes))]:
        raise UserError(f"{cfg.inputs[0]} is a part scene and model {model.name} was not trained on them: pass "
                        "model=parts_cnn")
    scene = scene_by_id(world, str(cfg.inputs[0]))
    drawn = world.render(scene)
    device = device_of(model)
    images = model_input(model, drawn.image).to(device)
    cats = model.categories
    with torch.no_grad():
        probs = model(images).float().softmax(1)[0].cpu()
    p, q, slot = scene_question(world, scene, cats, cfg.target, cfg.contrast)
    parts = np.logical_or.reduce(list(drawn.part_masks.values())).astype(np.float32)
    differs = drawn.part_masks[slot].astype(np.float32) if slot is not None else parts
    why_p: list = [("the parts", parts)]
    rather: list = [(f"the slot that makes Q: {SLOTS[slot]}" if slot is not None else "Q differs in several slots",
                     differs)]
    questions: list[dict] = []
    saved: dict[str, dict[str, np.ndarray]] = {}
    target = torch.tensor([p], device=device)
    for name in methods:
        explainer = build_explainer(cfg, model, name)
        mine = explainer.attribute(images, target)[0].cpu().numpy()
        why_p.append((f"{explainer.label}: why P", mine))
        saved.setdefault(name, {})[scene.image_id] = mine
        if explainer.answers_contrast():
            answer = explainer.explain(images, Contrast(target, torch.tensor([[q]], device=device)))
            for map_name, maps in answer.maps.items():
                title = explainer.label if map_name == answer.main else f"{explainer.label} {map_name}"
                rather.append((f"{title}: why P rather than Q", maps[0].cpu().numpy()))
                saved.setdefault(f"{name}_contrast" + ("" if map_name == answer.main else f"_{map_name}"),
                                 {})[scene.image_id] = maps[0].cpu().numpy()
        questions.append({"method": name, "P": cats[p], "Q": cats[q],
                          "slot": SLOTS[slot] if slot is not None else None,
                          "contrast_answered": explainer.answers_contrast()})
    change = (f"{SLOTS[slot]}: {SHAPES[world.classes[p][slot]]} -> {SHAPES[world.classes[q][slot]]}"
              if slot is not None else "several slots")
    title = (f"{scene.image_id}\nP = {cats[p]} ({float(probs[p]):.2f})\nQ = {cats[q]} ({float(probs[q]):.2f})\n"
             f"Q differs in {change}")
    picture = drawn.image.astype(np.float32) / 255
    return SceneFigure(picture, title, [why_p, rather], questions, saved)

"""`cce-bench user-study`: the survey page of the paper's user study, built from the suite's maps.

For each of `sets` images: the model's answer (its top-1 class) and the next `choices - 1` classes of its
ranking as the distractors of the guess; one map of each method A and B for the answer; CCE's two maps, where
the model looks when the class is the answer (M_sup) and when it is not (M_pro, toward the next classes).
The page (study.html) draws the order of the choices and of A/B/C per set and participant from the seed;
study.json is what `user-study-results` checks the answers against.
"""
from __future__ import annotations

import sys
from typing import Any

from omegaconf import DictConfig

from ..data.images import BUNDLED_PHOTOS
from ..errors import UserError
from ..explainers import CCE, EXPLAINERS, Contrast
from ..models import batched_logits
from ..runs.engine import begin, finish_run
from ..runs.map_store import write_maps
from ..runs.run_folder import RunFolder
from ..runs.runtime import build_dataset, build_explainer, build_model, chosen_methods
from ..runs.scoring import check_finite
from ..study.page import jpeg_data_uri, overlay_uri, render_page, study_definition
from . import PlainCommand


def check_methods(names: list[str], choices: int, n_classes: int) -> None:
    if len(names) != 2 or CCE.name in names:
        raise UserError(f"methods={names} must name two methods other than cce for A and B (C is CCE), "
                        "e.g. methods=[gradcam_pp,ig]")
    if not 2 <= choices <= n_classes:
        raise UserError(f"choices={choices} must be at least 2 (the model's answer and a distractor)")


def run_user_study(cfg: DictConfig) -> RunFolder:
    session = begin(cfg)
    cfg = session.cfg
    model = build_model(cfg)
    names = chosen_methods(cfg)
    check_methods(names, int(cfg.choices), len(model.categories))
    explainers = {name: build_explainer(cfg, model, name) for name in names}
    cce = build_explainer(cfg, model, CCE.name)
    batch = study_images(cfg, model)
    images = batch["image"].to(session.device)
    ranking = check_finite(batched_logits(model, images, int(cfg.batch_size)), model).argsort(1, descending=True)[
        :, : int(cfg.choices)
    ]
    targets = ranking[:, 0]
    maps: dict[str, Any] = {name: explainer.attribute(images, targets).cpu().numpy()
                            for name, explainer in explainers.items()}
    answer = cce.explain(images, Contrast(targets))  # why P (M_sup) and why not Q (M_pro), Q its own
    maps[CCE.name] = list(zip(answer.maps["M_sup"].cpu().numpy(), answer.maps["M_pro"].cpu().numpy()))
    pictures = model.to_pixels(images).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    categories = model.categories
    sets = []
    for b, image_id in enumerate(batch["image_id"]):
        sets.append({
            "image_id": image_id, "image": jpeg_data_uri(pictures[b]),
            "answer": categories[int(targets[b])], "choices": [categories[int(c)] for c in ranking[b]],
            "maps": {**{name: [overlay_uri(pictures[b], maps[name][b])] for name in names},
                     CCE.name: [overlay_uri(pictures[b], m) for m in maps[CCE.name][b]]},
        })
    methods = [*names, CCE.name]
    definition = study_definition(str(cfg.title), int(cfg.seed), cfg.model.name, methods,
                                  {m: EXPLAINERS.get(m).label for m in methods}, sets, len(categories))
    run = RunFolder(cfg.out)
    run.write_config(cfg)
    if cfg.get("save_maps"):  # the maps the page shows: each method's, and CCE's two
        write_maps(run.path, {
            **{name: {i: maps[name][b] for b, i in enumerate(batch["image_id"])} for name in names},
            f"{CCE.name}_M_sup": {i: maps[CCE.name][b][0] for b, i in enumerate(batch["image_id"])},
            f"{CCE.name}_M_pro": {i: maps[CCE.name][b][1] for b, i in enumerate(batch["image_id"])},
        })
    run.write_json("study.json", definition)
    page = run.write_text("study.html", render_page(definition))
    finish_run(run, "user-study", session, {"study_id": definition["study_id"], "sets": len(sets),
                                            "methods": methods})
    print(f"study {definition['study_id']}: {len(sets)} sets; open {page} in a browser (offline is fine), or send "
          f"it to participants (a participant number can be fixed with ?participant=N)\n\nwritten to {run.path}")
    return run


def study_images(cfg: DictConfig, model) -> dict:
    """One image per set (data.n_images caps them, with a line), read as one batch; the unreadable said."""
    cap = cfg.data.get("n_images")
    if cfg.data.name == "photos" and int(cfg.sets) > len(BUNDLED_PHOTOS):
        raise UserError(f"sets={cfg.sets} is more than the {len(BUNDLED_PHOTOS)} bundled photos: pass "
                        f"sets={len(BUNDLED_PHOTOS)} or fewer, or data=imagenet data.root=PATH for more images")
    if cap is not None and int(cap) < int(cfg.sets):
        print(f"warning: data.n_images={cap} makes {cap} of the sets={cfg.sets} sets: pass "
              f"data.n_images={cfg.sets} for all", file=sys.stderr)
    cfg.data.n_images = int(cfg.sets) if cap is None else min(int(cfg.sets), int(cap))
    dataset = build_dataset(cfg, model)
    batch = dataset.collate([dataset[i] for i in range(len(dataset))])
    for row in batch["skipped"]:
        print(f"warning: skipped {row['image_id']}: {row['reason']}", file=sys.stderr)
    if not batch["image_id"]:
        raise UserError(f"no image of {dataset.name} could be read: the study needs at least one")
    return batch


COMMAND = PlainCommand("user-study", run_user_study)

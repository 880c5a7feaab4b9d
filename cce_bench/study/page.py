"""The survey page: one self-contained HTML file (images embedded as data URIs, no server, works offline)."""
from __future__ import annotations

import base64
import hashlib
import io
import json
from importlib import resources

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from ..figures import CMAP, display_scale, overlay_rgb
from .order import PAGE_JS

STUDY_FORMAT = "cce-bench-user-study/1"
ANSWERS_FORMAT = "cce-bench-user-study-answers/1"


def jpeg_data_uri(rgb: np.ndarray, quality: int = 90) -> str:
    """An image [H, W, 3] in [0, 1] as a data: URI (JPEG keeps a 10-set page near 1 MB)."""
    buffer = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def overlay_uri(picture: np.ndarray, saliency: np.ndarray) -> str:
    """The heat map over the photo, in the colours the introduction explains (red important, blue not)."""
    return jpeg_data_uri(overlay_rgb(picture, display_scale(saliency), max_alpha=0.6))


def colorbar_uri() -> str:
    ramp = plt.get_cmap(CMAP)(np.linspace(0, 1, 256))[None, :, :3].repeat(12, axis=0)
    return jpeg_data_uri(ramp)


def study_id(definition: dict) -> str:
    """A digest of everything the page shows (images, classes, maps, seed): answers of another page or seed
    carry another id."""
    text = json.dumps({k: v for k, v in definition.items() if k != "study_id"}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def study_definition(title: str, seed: int, model: str, methods: list[str], labels: dict, sets: list[dict],
                     n_classes: int) -> dict:
    """What the page shows and what `user-study-results` checks the answers against.

    Each set: {"image_id", "image" (data URI), "answer" (the model's class), "choices" (answer + distractors),
    "maps": {method: [data URI] (A and B) or [is, is not] (CCE)}}."""
    definition = {"format": STUDY_FORMAT, "title": title, "seed": int(seed), "model": model, "methods": methods,
                  "labels": labels, "n_classes": n_classes, "colorbar": colorbar_uri(), "sets": sets}
    definition["study_id"] = study_id(definition)
    return definition


def render_page(definition: dict) -> str:
    template = resources.files("cce_bench.study").joinpath("page.html").read_text(encoding="utf-8")
    # "</" inside the JSON would end the <script> element early.
    data = json.dumps(definition).replace("</", "<\\/")
    html_title = definition["title"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return template.replace("__TITLE__", html_title).replace("__ORDER_JS__", PAGE_JS).replace("__STUDY__", data)

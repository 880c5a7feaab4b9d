"""The survey page: one self-contained HTML file (images embedded as data URIs, no server, works offline)."""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
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


def script_json(value) -> str:
    """JSON that stays data inside an HTML <script> element: no "<", ">" or "&" can start a tag, a comment
    or an entity there (e.g. "<!--<script>" would swallow the rest of the page), and U+2028/U+2029 are
    escaped for JavaScript parsers older than ES2019."""
    text = json.dumps(value, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def render_page(definition: dict) -> str:
    template = resources.files("cce_bench.study").joinpath("page.html").read_text(encoding="utf-8")
    fills = {"__TITLE__": html.escape(str(definition["title"])), "__ORDER_JS__": PAGE_JS,
             "__STUDY__": script_json(definition)}
    # One pass: a title that spells a placeholder stays text.
    return re.sub("|".join(fills), lambda match: fills[match.group(0)], template)

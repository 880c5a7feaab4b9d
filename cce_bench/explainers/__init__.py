"""Saliency methods by name, all with the call `attribute(images, target)` -> maps [B, H, W].

Importing this package registers every method: CCE and the nine comparison methods of Table 5.
"""
from . import appb, calm, contrastive_gradcam, fullgrad, gbp, gradcam_pp, ig, rise, scorecam  # noqa: F401 (registration)
from .base import EXPLAINERS, Explainer, SettingMaps, create_explainer, postprocess, resolve_targets
from .cce import CCE, ContrastiveMaps

TABLE5_METHODS = ["GBP", "IG", "RISE", "GCAM+", "SCAM", "FullIG", "CE", "APPB", "CALM", "CCE"]

__all__ = ["CCE", "ContrastiveMaps", "EXPLAINERS", "Explainer", "SettingMaps", "TABLE5_METHODS",
           "create_explainer", "postprocess", "resolve_targets"]

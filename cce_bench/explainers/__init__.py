"""Saliency methods by name, all with the call `attribute(images, target)` -> maps [B, H, W]."""
from .base import EXPLAINERS, Explainer, SettingMaps, create_explainer, postprocess, resolve_targets
from .cce import CCE, ContrastiveMaps

__all__ = ["CCE", "ContrastiveMaps", "EXPLAINERS", "Explainer", "SettingMaps", "create_explainer",
           "postprocess", "resolve_targets"]

"""Metrics by name, all with the call `metric.score(maps)` -> per-image scores (base.py).

Every module of this package is imported here, so a metric of the suite is registered by existing: a new
metric is one file (a class under `@register_metric`, named by its module). Quantus's metric classes are a
family of the registry (`quantus_NAME`, quantus_metrics.py).
"""
import importlib
import pkgutil

from .base import METRICS, MapsToScore, Metric, Panel, Ranking, Scored, create_metric, register_metric

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from .class_sensitivity import class_deviation, other_classes  # noqa: E402
from .insertion_deletion import InsertionDeletion, auc, blur, insertion_deletion, saliency_ranks  # noqa: E402
from .pointing_game import contrastive_share, energy_pointing_game  # noqa: E402

__all__ = ["InsertionDeletion", "METRICS", "MapsToScore", "Metric", "Panel", "Ranking", "Scored", "auc", "blur",
           "class_deviation", "contrastive_share", "create_metric", "energy_pointing_game", "insertion_deletion",
           "other_classes", "register_metric", "saliency_ranks"]

"""The contrastive pointing game (the suite's, metrics/pointing_game.py): on an image with two annotated
categories P and Q, the share of the answer to "why P rather than Q?" that lies in P's boxes among its share
in P's and Q's (50%: no preference)."""
from __future__ import annotations

import pandas as pd

from .base import (
    BOXES,
    CONTRAST_BOXES,
    PROTOCOL,
    MapsToScore,
    Metric,
    Panel,
    Ranking,
    Scored,
    mean_column,
    register_metric,
)
from .pointing_game import contrastive_share


@register_metric
class ContrastivePointingGame(Metric):
    """E_P / (E_P + E_Q) of each map, P's boxes the data's, Q's the contrast's."""

    label = "contrastive pointing game"
    family = "localisation"
    what = ("the share of the answer to 'why P rather than Q?' in P's boxes among P's and Q's "
            "(pointing-game game=contrastive)")
    higher_is_better = True
    units = "%"
    needs = frozenset({BOXES, CONTRAST_BOXES})
    section = PROTOCOL

    def score(self, maps: MapsToScore) -> Scored:
        assert maps.masks is not None and maps.contrast_masks is not None  # check() refuses data without them
        device = maps.maps.device
        share = contrastive_share(maps.maps, maps.masks.to(device), maps.contrast_masks.to(device))
        return Scored({"contrastive": share.tolist()})

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        means, errors = mean_column(records, names, "contrastive", 100, 2)
        return {"Contrastive (%)": means, "Contrastive SE": errors}

    def ranking(self) -> Ranking:
        return Ranking("Contrastive (%)", "Contrastive SE", 100)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return records["contrastive"] if "contrastive" in records else None

    def panels(self) -> list[Panel]:
        return [Panel("contrastive pointing game (%) ↑", "Contrastive (%)", "tab:cyan")]

    def caption(self) -> str:
        return "Contrastive = 100 x mean share of the map's energy in P's boxes among P's and Q's (50: no preference)"

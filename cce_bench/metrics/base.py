"""Metrics by name, all with one call: `metric.score(maps)` -> per-image scores, `maps` a `MapsToScore` (the
model, the images, the maps, the explained classes, the boxes where the data has them, the explainer for
metrics that explain again).

A metric declares itself once, as class attributes: its label, which way is better, its units, what it
needs (`BOXES`, `REEXPLAINS`), what a map of it costs in model passes, the table columns it makes from the
records (`columns`), the column a leaderboard can be ranked by (`ranking`) and its leaderboard panels
(`panels`). Every scoring command scores, tabulates, plots and plans from `metrics=[...]` through these;
nothing else lists a metric. The suite's own metrics are registered by existing (a class under
`@register_metric` in a module of this package); Quantus's are a family of the registry (`quantus_NAME`).
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from ..errors import UserError
from ..metric_knobs import metric_knobs_of
from ..registry import Registry

if TYPE_CHECKING:  # annotations only: the registry is read (names, needs) before torch is loaded
    import torch

METRICS: Registry[type[Metric]] = Registry("metric")

# What a metric can need beyond the model, the images and the maps.
BOXES = "boxes"            # the data's boxes (data=coco, data=photos_coco)
REEXPLAINS = "re-explains"  # the method itself, to explain again (another class, a perturbed input, a randomised model)
CONTRAST_BOXES = "contrast boxes"  # the boxes of a second category Q (pointing-game game=contrastive)
SCENES = "scenes"          # scenes whose parts are known, drawn again with parts removed (data=parts)
NEEDS = {BOXES: "the COCO boxes of data=photos_coco or data=coco",
         SCENES: "scenes whose parts are known (data=parts), drawn again with parts removed or swapped",
         REEXPLAINS: "the method, to ask again: scored in compare, not on maps from elsewhere (score)",
         CONTRAST_BOXES: "a second category's boxes: the questions of pointing-game game=contrastive"}

# Where a metric's columns stand in a table: the paper's protocols first (then the number of images), the
# suite's further scores (then the explained probability and the seconds per map), library metrics, and the
# pass/fail checks last.
PROTOCOL, FURTHER, LIBRARY, CHECK = 0, 1, 2, 3
SECTIONS = (PROTOCOL, FURTHER, LIBRARY, CHECK)


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Registers a metric of the suite under its `name` (the module's name: `metrics/pointing_game.py` ->
    `pointing_game`, the name `metrics=[...]` takes and `cce-bench metrics` lists)."""
    cls.name = cls.name or cls.__module__.rsplit(".", 1)[-1]
    METRICS.register(cls.name)(cls)
    return cls


@dataclass
class MapsToScore:
    """What a metric is given for one method (or one set of saved maps) on one batch."""

    model: Any                      # the run's model: the scores are of its answers
    images: torch.Tensor            # [B, 3, H, W], normalised as the model takes them
    maps: torch.Tensor              # [B, H, W] in [0, 1] (relu, the input's size, min-max)
    targets: torch.Tensor           # [B] the explained classes
    cfg: Any                        # the run's config: each metric reads its own knobs from it
    seed: int                       # seeds a stochastic metric: the run's seed and the batch's first image
    _: KW_ONLY                      # the rest by name: several are optional tensors, easily passed in a wrong place
    ids: list[str] = field(default_factory=list)
    masks: torch.Tensor | None = None     # [B, H, W] the boxes, where the data has them
    contrast_masks: torch.Tensor | None = None  # [B, H, W] the contrast class Q's boxes, where the question has one
    explainer: Any = None                 # the method (None: maps from elsewhere)
    network: Any = None                   # the network the method explains (its own for CALM; else the model)
    raw: torch.Tensor | None = None       # the method's maps before post-processing (the sanity check's Spearman)
    logits: Any = None                    # network -> its logits of the batch, each computed once (other classes)
    method: str = ""                      # the name the records give the maps (a method, a setting, a file)

    @property
    def size(self) -> tuple[int, int]:
        """The images' (H, W): the size every map of them is post-processed to."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    @property
    def explained_network(self):
        return self.network if self.network is not None else self.model


@dataclass
class Scored:
    """A metric's scores of one batch: record columns (one value per image each) and, where it has them,
    sums over the batch that the run aggregates over batches (insertion/deletion's curves)."""

    per_image: dict[str, list]
    sums: dict | None = None


@dataclass(frozen=True)
class Panel:
    """One bar chart of the leaderboard: a table column by method, with its SE column where it has one."""

    title: str
    column: str
    colour: str
    threshold_key: str | None = None   # a config key whose value is drawn as a line (sanity's fail_above)


@dataclass(frozen=True)
class Ranking:
    """The score a leaderboard can be ranked by: a table column, its SE column, the per-record value it
    is the mean of (times `scale`) and which way is better."""

    column: str
    se_column: str | None   # None: the table has no SE column of it (a paired difference stands after the column)
    scale: float
    higher_is_better: bool = True


class Metric:
    """A metric of saliency maps. Subclass it, set the declarations below and implement `score`."""

    name: ClassVar[str] = ""       # set by @register_metric from the module's name
    label: ClassVar[str] = ""      # how tables print it
    family: ClassVar[str] = ""     # faithfulness, localisation, randomisation, complexity, robustness, axiomatic
    what: ClassVar[str] = ""       # one line for `cce-bench metrics`
    higher_is_better: ClassVar[bool] = True
    units: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    # the method's maps per image beyond the scored one (another class, a randomised model)
    extra_maps: ClassVar[int] = 0
    section: ClassVar[int] = FURTHER
    source: ClassVar[str] = "cce-bench"
    # True: the metric runs model passes that forward_passes cannot count (a library's own loop)
    uncounted_passes: ClassVar[bool] = False

    if TYPE_CHECKING:  # each knob is an attribute, set from its knobs class by __init__: the checker cannot list them
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, cfg=None):
        """The metric for a run's config (None: its knobs at their defaults); each knob of its declaration
        (cce_bench/metric_knobs/NAME.py), checked against its range, becomes an attribute of the same name."""
        self.cfg = cfg
        if self.source == "cce-bench":
            settings = metric_knobs_of(self.name).checked(self.given_knobs(), self.name, self.label)
            for knob in settings.names():
                setattr(self, knob, getattr(settings, knob))

    def given_knobs(self) -> dict:
        """The knobs the run's config sets for this metric (metric_knobs.NAME), as plain values."""
        from omegaconf import DictConfig, OmegaConf

        node = OmegaConf.select(self.cfg, f"metric_knobs.{self.name}") if isinstance(self.cfg, DictConfig) else None
        return dict(OmegaConf.to_container(node)) if isinstance(node, DictConfig) else {}  # type: ignore[arg-type]

    # -- what it computes ------------------------------------------------------------------------------
    def score(self, maps: MapsToScore) -> Scored:
        """Per image, the record columns this metric adds (one value per image each), and any sums over the
        batch the run aggregates."""
        raise NotImplementedError

    def forward_passes(self, side: int) -> float:
        """Forward passes of the model per scored map at this image side, beyond the method's own maps
        (`extra_maps`): the run's plan counts them."""
        return 0

    def maps_asked(self, explainer) -> int:
        """The maps of `explainer` this metric asks for per image beyond the scored one: the run's plan counts
        them (`extra_maps` unless the answer depends on the method)."""
        return self.extra_maps

    # -- what a table shows ----------------------------------------------------------------------------
    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        """Table columns (name -> one value per method in `names`) from the records."""
        raise NotImplementedError

    def ranking(self) -> Ranking | None:
        return None

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        """The per-record value the ranking column is the mean of (None where the records lack it)."""
        return None

    def panels(self) -> list[Panel]:
        return []

    def caption(self) -> str:
        """What its columns mean, for a table's caption ('' where the column names say it)."""
        return ""

    # -- checks before any work ------------------------------------------------------------------------
    def check(self, has_boxes: bool, has_method: bool, command: str, has_contrast_boxes: bool = False) -> None:
        """One line when this run cannot give the metric what it needs."""
        from omegaconf import OmegaConf

        if CONTRAST_BOXES in self.needs and not has_contrast_boxes:
            raise UserError(f"metric {self.name} needs a second category's boxes: it scores the questions of "
                            "`cce-bench pointing-game game=contrastive`")
        if BOXES in self.needs and not has_boxes:
            raise UserError(f"metric {self.name} needs boxes, and this data has none: run it on data=photos_coco or "
                            f"data=coco, or leave it out of metrics=[...]")
        if SCENES in self.needs and (self.cfg is None or OmegaConf.select(self.cfg, "data.name") != "parts"):
            raise UserError(f"metric {self.name} scores maps against the parts of scenes whose answer is known: run "
                            "it on data=parts model=parts_cnn, or leave it out of metrics=[...]")
        if REEXPLAINS in self.needs and not has_method:
            raise UserError(f"metric {self.name} explains again, and maps from elsewhere have no method to ask: score "
                            f"it with the method in `cce-bench compare methods=[...] metrics=[{self.name}]`, or leave "
                            f"it out of {command}'s metrics=[...]")


class MeanMetric(Metric):
    """A metric whose table shows the mean of one record column per method with its SE, ranks by it and draws
    one panel of it: declare `record` (the per-image key its score writes), `column`, `scale` and `digits`."""

    record: ClassVar[str] = ""
    column: ClassVar[str] = ""
    scale: ClassVar[float] = 1
    digits: ClassVar[int] = 3
    colour: ClassVar[str] = "tab:gray"

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        means, errors = mean_column(records, names, self.record, self.scale, self.digits)
        return {self.column: means, f"{self.column} SE": errors}

    def ranking(self) -> Ranking:
        return Ranking(self.column, f"{self.column} SE", self.scale, higher_is_better=self.higher_is_better)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return records[self.record] if self.record in records else None

    def panels(self) -> list[Panel]:
        return [Panel(f"{self.label} {'↑' if self.higher_is_better else '↓'}", self.column, self.colour)]


def create_metric(name: str, cfg=None) -> Metric:
    """The metric registered (or provided by a family) under `name`, for this run's config."""
    return METRICS.get(str(name))(cfg)


def mean_column(records: pd.DataFrame, names: list[str], record: str, scale: float = 1, digits: int = 3
                ) -> tuple[list, list]:
    """(mean, SE) per method of one record column, `scale` x, rounded (None where a method has no value)."""
    from ..tables import standard_error

    values = pd.to_numeric(records[record], errors="coerce") if record in records else pd.Series(dtype=float)
    means, errors = [], []
    for name in names:
        mine = values[records["method"] == name] if len(records) else values
        present = mine.dropna()
        means.append(round(float(present.mean() * scale), digits) if len(present) else None)
        errors.append(standard_error(mine, scale, digits) if len(present) else None)
    return means, errors

"""Each command's own keys, over the run's (RunSettings): the root of the command's config. configs/COMMAND.yaml
names its class first in its defaults list and chooses the config groups (model, data, ...) after it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from ..choices import MAP_FRAMES, POINTING_GAMES
from ..knobs import Knobs, knob
from ..rules import Rule
from .data import Preprocessing
from .run import RunSettings

METHODS = Rule("list", choices=("all",), all_or_list=True)
METHODS_DOC = ("every method the suite has (Table 5's in the paper's column order), or a list by name: "
               "[gradcam_pp,cce] (`cce-bench methods` lists them)")
METRICS = Rule("list", nullable=True)


@dataclass
class ModelRun(RunSettings):
    """A run of a model on a data source: the config groups `model` and `data` (their keys declared by the
    classes of settings/model.py and settings/data.py), the methods' and metrics' knobs."""

    model: Any = knob(None, doc="the model (configs/model/, or FAMILY_NAME, or custom)")
    data: Any = knob(None, doc="the data source (configs/data/)")
    method_knobs: Any = knob(None, doc="every method's knobs, method_knobs.NAME.KNOB (cce_bench/method_knobs)")
    metric_knobs: Any = knob(None, doc="every metric's knobs, metric_knobs.NAME.KNOB (cce_bench/metric_knobs)")


@dataclass
class CompareChoices(Knobs):
    """compare's choices of reference and ranking."""

    group = "compare"
    reference: str = knob("best", Rule("text"), "each method's paired difference is taken to this one: best (the "
                                                "top-ranked) or a method's name (cce)")
    rank_by: str = knob("auto", Rule("text"), "the metric the table is ranked by: auto (pointing_game where scored, "
                                              "else insertion_deletion) or a name in metrics")


@dataclass
class PublishedRow(Knobs):
    """The published Ins/Del of one method: its row at its knob's value in this run."""

    table: str = knob("table1_alpha.csv", Rule("text"), "the paper's table (cce_bench/paper/)")
    name: str = knob("Table 1", Rule("text"), "its name in the table's caption")
    method: str = knob("cce", Rule("text"), "the method whose row it is")
    knob: str = knob("alpha", Rule("text"), "the knob whose value in this run picks the row")


@dataclass
class ComparePaper(Knobs):
    """The paper's tables compare sets its rows beside."""

    pointing_game: str = knob("table5_pointing_game.csv", Rule("text"), "the paper's Table 5 (cce_bench/paper/)")
    insertion_deletion: PublishedRow = knob(PublishedRow, doc="the published Ins/Del row set beside each method's")


@dataclass
class CompareSettings(ModelRun):
    """`cce-bench compare`: every method on the same images, scored by the metrics, one row per method."""

    methods: Any = knob("all", METHODS, METHODS_DOC)
    metrics: list[str] | None = knob(None, METRICS,
                                     "null: the suite's own that the run can score (insertion_deletion, "
                                     "pointing_game where the data has boxes, class_sensitivity, sanity); or a list "
                                     "by name, a column group each (`cce-bench metrics`): [insertion_deletion,"
                                     "quantus_Sparseness]")
    compare: CompareChoices = knob(CompareChoices, doc="compare's reference and ranking")
    paper: ComparePaper = knob(ComparePaper, doc="the paper's numbers set beside the table's")
    seeds: list[int] | None = knob(None, Rule("list", nullable=True, each=Rule("whole", 0, 2**32 - 1)),
                                   "[s1, s2, ...]: every method and score repeated on each image once per seed "
                                   "(the methods' and metrics' random draws: RISE's masks, Quantus's perturbations, "
                                   "captum's noise); the table's SE is over the images of each image's mean over the "
                                   "seeds, and `seed SD` the spread of the method's mean over the seeds. null: once, "
                                   "with seed")
    run_name: str = knob("compare_${model.name}", Rule("text"), "the run folder's name")


@dataclass
class SweptKnob(Knobs):
    """One of Tables 1-4: the knob swept and its values (configs/param/NAME.yaml)."""

    group = "param"
    name: str = knob(MISSING, Rule("text"), "the method knob swept")
    values: list[Any] = knob([], Rule("list"), "its values, one row each")
    paper: str | None = knob(None, Rule("text", nullable=True), "the paper's table of it (cce_bench/paper/)")
    with_time: bool = knob(False, Rule("bool"), "true: the table gives each value's seconds per image (Table 2)")


@dataclass
class SweepSettings(ModelRun):
    """`cce-bench sweep param=NAME`: one of Tables 1-4, a method knob swept over its values."""

    param: SweptKnob = knob(SweptKnob, doc="the knob swept (configs/param/NAME.yaml: param=alpha, M, gamma, epsilon)")
    method: str = knob("cce", Rule("text"), "the method whose knob is swept (one without the knob gives one row)")
    run_name: str = knob("sweep-${param.name}_${model.name}", Rule("text"), "the run folder's name")


@dataclass
class PointingGameSettings(ModelRun):
    """`cce-bench pointing-game`: Table 5, every method's maps scored by the energy-based pointing game."""

    methods: Any = knob("all", METHODS, METHODS_DOC)
    game: str = knob("energy", Rule("choice", choices=tuple(POINTING_GAMES)),
                     "energy: Table 5's game | contrastive: 'why P rather than Q?' on images with two categories")
    paper: str = knob("table5_pointing_game.csv", Rule("text"), "the paper's Table 5 (cce_bench/paper/)")
    run_name: str = knob("pointing-game_${model.name}", Rule("text"), "the run folder's name")


@dataclass
class SanitySettings(ModelRun):
    """`cce-bench sanity`: the model-parameter randomisation test (Adebayo et al., NeurIPS 2018) for each method."""

    methods: Any = knob("all", METHODS, METHODS_DOC)
    run_name: str = knob("sanity_${model.name}", Rule("text"), "the run folder's name")


@dataclass
class ScoreSettings(ModelRun):
    """`cce-bench score maps=PATH`: maps made by any tool, scored on the images of a data config."""

    maps: str = knob(MISSING, Rule("text"), "a folder of ID.npy, one .npz keyed by image id, or a .pt "
                                            "{'ids': [...], 'maps': [N, h, w]}")
    maps_ids: str | None = knob(None, Rule("text", nullable=True),
                                "for a .pt holding only a tensor: a text file, one image id per line in its order")
    maps_frame: str = knob("auto", Rule("choice", choices=tuple(MAP_FRAMES)),
                           "auto: a map of the image's own size is resized and cropped as the image, a square one "
                           "resized; input: every map is on the model's input; image: on the original image")
    name: str | None = knob(None, Rule("text", nullable=True), "the maps' name in the table; null: the file or "
                                                               "folder name")
    metrics: list[str] | None = knob(None, METRICS,
                                     "null: insertion_deletion, and pointing_game where the data has boxes; or a "
                                     "list by name (`cce-bench metrics`; those that explain again need compare)")
    run_name: str = knob("score_${model.name}", Rule("text"), "the run folder's name")


@dataclass
class ExplainInputs(Preprocessing):
    """How explain's images become the model's input (null: the model's own settings)."""

    n_images: int | None = knob(None, Rule("whole", 1, nullable=True),
                                "not read: explain's images come from the command line (declared so that a preset "
                                "such as experiment=smoke applies to every command)")


@dataclass
class ExplainSettings(ModelRun):
    """`cce-bench explain IMAGE [IMAGE]`: figures of the explanations of one or two images."""

    data: ExplainInputs = knob(ExplainInputs, doc="how the images become the model's input")
    inputs: list[str] = knob([], Rule("list"), "the images, from the command line: cce-bench explain a.jpg [b.jpg]")
    target: Any = knob(None, Rule("class", nullable=True), "P: a class name (tabby, tiger_cat) or index; null: the "
                                                          "top-1 class")
    contrast: Any = knob(None, Rule("class", nullable=True), "Q for 'why P rather than Q?'")
    contrast_floor: float = knob(0.01, Rule("number", 0, 1),
                                 "without contrast=: CCE asks 'why not Q?' of the next M classes with probability >= "
                                 "this (REC)")
    targets: Any = knob(None, Rule("list", nullable=True, each=Rule("class")),
                        "[P1, P2, ...]: several objects of one image, one map each")
    methods: list[str] = knob(["cce"], Rule("list"), "by name; several: one grid, the image once and a column each")
    pair: bool = knob(True, Rule("bool"), "two images: true asks one method 'why is a P while b is Q?'; false "
                                          "explains each image alone, a row per image and the methods side by side")
    run_name: str = knob("explain", Rule("text"), "the run folder's name")


@dataclass
class UserStudySettings(ModelRun):
    """`cce-bench user-study`: the paper's user study (appendix, section 4) as one self-contained HTML page."""

    methods: list[str] = knob(["gradcam_pp", "ig"], Rule("list"),
                              "A and B: one map each for the model's class; C is always CCE (M_sup and M_pro)")
    sets: int = knob(6, Rule("whole", 1, 10_000), "sets of five questions, one image each: the data's first `sets` "
                                                  "images of its seeded sample (the paper asked 10)")
    choices: int = knob(4, Rule("whole", 2, 1000), "classes offered for the guess: the model's answer and its next "
                                                   "top classes")
    title: str = knob("How does an image classifier decide?", Rule("text"), "the page's title")
    run_name: str = knob("user-study_${model.name}", Rule("text"), "the run folder's name")


@dataclass
class UserStudyResultsSettings(RunSettings):
    """`cce-bench user-study-results FILES... study=DIR`: the tables of the user study's answer files."""

    answers: list[str] = knob([], Rule("list"), "the answer files the page downloaded, from the command line")
    study: str = knob(MISSING, Rule("text"), "the user-study run folder (its study.json), or study.json itself")
    bootstrap: int = knob(10_000, Rule("whole", 1, 1_000_000), "resamples of the participants for the confidence "
                                                               "intervals")
    confidence: float = knob(0.95, Rule("number", 0, 1, low_open=True, high_open=True), "the intervals' level")
    run_name: str = knob("user-study-results", Rule("text"), "the run folder's name")


@dataclass
class TrainCalmSettings(RunSettings):
    """`cce-bench train-calm data.root=/path/to/imagenet`: fine-tune CALM (CALM-EM) on ImageNet train images."""

    data: Any = knob(None, doc="the ImageNet training images (configs/data/imagenet.yaml with data.split=train)")
    epochs: int = knob(1, Rule("whole", 1, 10_000), "passes over the training images")
    lr_head: float = knob(0.01, Rule("number", 0, 10, low_open=True), "SGD's step on the new 1x1 convolutions")
    lr_backbone: float = knob(0.001, Rule("number", 0, 10), "SGD's step on the ResNet-50 backbone (0: frozen)")
    momentum: float = knob(0.9, Rule("number", 0, 1, high_open=True), "SGD's momentum")
    weight_decay: float = knob(0.0001, Rule("number", 0, 1), "SGD's weight decay")
    backbone_checkpoint: str | None = knob(None, Rule("text", nullable=True),
                                           "the torchvision ResNet-50 ImageNet state dict; null: torchvision's cache")
    download: bool = knob(False, Rule("bool"), "true: let torchvision download the backbone's weights")
    checkpoint: str = knob("${out}/calm_resnet50.pth", Rule("text"), "where the trained CALM is written")
    run_name: str = knob("train-calm", Rule("text"), "the run folder's name")


@dataclass
class TrainPartsSettings(RunSettings):
    """`cce-bench train-parts`: train the parts CNN on the part scenes and keep it in the cache."""

    model: Any = knob(None, doc="model=parts_cnn: its training knobs (model.train_scenes, model.epochs)")
    data: Any = knob(None, doc="data=parts: the world trained on (data.scene_seed, data.parts, data.types, ...)")
    run_name: str = knob("train-parts", Rule("text"), "the run folder's name")


@dataclass
class ExportPartsSettings(RunSettings):
    """`cce-bench export-parts`: write the part scenes as an image folder and a COCO-format annotation file."""

    data: Any = knob(None, doc="data=parts: the world and the scenes written (data.split, data.n_images, "
                               "data.scene_seed, ...)")
    run_name: str = knob("export-parts", Rule("text"), "the run folder's name")


# The root of each command's config (configs/COMMAND.yaml: `- /settings/command@_here_: NAME` first).
COMMAND_SETTINGS = {"compare": CompareSettings, "sweep": SweepSettings, "pointing_game": PointingGameSettings,
                    "sanity": SanitySettings, "score": ScoreSettings, "explain": ExplainSettings,
                    "user_study": UserStudySettings, "user_study_results": UserStudyResultsSettings,
                    "train_calm": TrainCalmSettings, "train_parts": TrainPartsSettings,
                    "export_parts": ExportPartsSettings}

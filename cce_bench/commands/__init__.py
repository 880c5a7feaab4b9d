"""The commands, one module each under cce_bench/commands/, declared in one registry that the command line
and `report` read: `cce-bench COMMAND` runs `COMMAND` of cce_bench/commands/COMMAND.py (a ScoringCommand
cce_bench/runs/engine.py, or a PlainCommand, below) over configs/COMMAND.yaml.

This module imports nothing heavy: the command line reads the entries (help, positional files, which
commands score) without torch, and imports a command's module only to run it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlainCommand:
    """A command with a run of its own (explain, user-study, train-calm, ...); a scoring command is a
    ScoringCommand (runs/engine.py), which runs through the shared skeleton."""

    name: str
    run: Callable[..., object]  # (cfg) for a Hydra command; (arguments) for one that takes its own


@dataclass(frozen=True)
class CommandEntry:
    """A command as the command line shows it: one-line summary, `--help` page, what its files become."""

    name: str
    summary: str               # the line in `cce-bench --help`
    description: str           # `cce-bench NAME --help`: what it does
    keys: tuple = ()           # its main keys
    examples: tuple = ()       # command lines that run as shown
    positional: str | None = None  # files before the overrides become this key (explain IMAGE ...)
    scoring: bool = False      # writes table.csv and records.csv through the shared skeleton
    reported: bool = True      # `report` makes a page of its run folder
    hydra: bool = True         # a Hydra app over configs/NAME.yaml; False: takes its arguments as they are

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name.replace('-', '_')}"

    def load(self):
        """The command object of its module (`COMMAND`): `.run(cfg)`; a scoring one also `.examples`,
        `.beside_paper`."""
        return importlib.import_module(self.module).COMMAND


# Keys every command takes, shown under each command's --help.
COMMON_KEYS = ("model=efficientnet_lite0|vgg19|torchvision_NAME|timm_NAME|custom (cce-bench models)\n"
               "  device=auto|cpu|cuda   seed=0   out=DIR (a rerun resumes)\n"
               "  threads=null (CPU threads; null: the cores this process may use)   --cfg job prints every key")

COMMANDS: dict[str, CommandEntry] = {
    entry.name: entry
    for entry in [
        CommandEntry(
            "sweep",
            "Tables 1-4: sweep a knob (param=alpha|M|gamma|epsilon), score by insertion/deletion",
            "Tables 1-4 of the paper: sweeps one knob of a method (CCE's alpha, M, gamma or epsilon) and scores each "
            "value by insertion/deletion (100 x AUC, Diff = Ins - Del).",
            keys=(
                "param=alpha|M|gamma|epsilon   param.values=[...]   method=cce (any method)",
                "data=photos|imagenet   data.root=DIR   data.n_images=N   metric_knobs.insertion_deletion.step=224",
                "experiment=table1_alpha|table2_M|table3_gamma|table4_epsilon|smoke",
            ),
            examples=(
                "cce-bench sweep param=alpha",
                "cce-bench sweep experiment=table1_alpha data.root=/data/imagenet device=cuda",
            ),
            scoring=True,
        ),
        CommandEntry(
            "pointing-game",
            "Table 5: the energy-based pointing game on COCO, CCE against nine methods",
            "Table 5: the energy-based pointing game on COCO pairs (image, mapped class, box), CCE against nine "
            "methods.",
            keys=(
                "methods=[cce,gbp,...]   method_knobs.NAME.KNOB=VALUE",
                "data=photos_coco|coco   data.root=DIR   data.n_images=N   experiment=table5_pointing_game|smoke",
            ),
            examples=(
                "cce-bench pointing-game methods=[cce,gradcam_pp]",
                "cce-bench pointing-game experiment=table5_pointing_game data.root=/data/coco device=cuda",
            ),
            scoring=True,
        ),
        CommandEntry(
            "explain",
            "figures: why P? why P rather than Q? why is a P while b is Q? (IMAGE [IMAGE] ...)",
            "Figures: why P? why P rather than Q? why is a P while b is Q? for image files or bundled photos.",
            keys=("IMAGE [IMAGE]   target=CLASS   contrast=CLASS   targets=[A,B]   methods=[cce,...]",),
            examples=(
                "cce-bench explain chelsea",
                "cce-bench explain photo.jpg target=tabby contrast=tiger_cat",
            ),
            positional="inputs",
            reported=False,  # its figure and explain.json are the result: nothing to tabulate
        ),
        CommandEntry(
            "score",
            "score saliency maps made by any tool (maps=FOLDER|FILE.npz|FILE.pt) on the suite's protocols",
            "Scores saliency maps made by any tool on the suite's protocols (insertion/deletion; the pointing game "
            "when the data has boxes).",
            keys=(
                "maps=FOLDER|FILE.npz|FILE.pt   maps_ids=FILE   maps_frame=auto|input|image   name=LABEL",
                "data=photos|imagenet|coco   data.root=DIR   data.n_images=N",
            ),
            examples=("cce-bench score maps=my_maps data.n_images=1",),
            scoring=True,
        ),
        CommandEntry(
            "sanity",
            "model-parameter randomisation test (Adebayo et al. 2018) for any of the methods",
            "Model-parameter randomisation test (Adebayo et al. 2018): how much each method's maps change when the "
            "model's layers are re-initialised.",
            keys=("methods=[...]   metric_knobs.sanity.modes=[cascading,independent]   metric_knobs.sanity.layers=N",
                  "metric_knobs.sanity.fail_above=0.5"),
            examples=("cce-bench sanity methods=[gradcam_pp,gbp] data.n_images=1",),
            scoring=True,
        ),
        CommandEntry(
            "compare",
            "one leaderboard: every method on the same images, all scores, time and sanity",
            "One leaderboard: every method on the same images, insertion/deletion, the pointing game where the data "
            "has boxes, time per image and the sanity check.",
            keys=("methods=[...]   metrics=[insertion_deletion,pointing_game,...]   compare.rank_by=NAME",
                  "data=photos_coco|photos|imagenet|coco   data.root=DIR"),
            examples=("cce-bench compare methods=[gradcam_pp,gbp,ig,cce] data=photos experiment=smoke",),
            scoring=True,
        ),
        CommandEntry(
            "user-study",
            "the paper's user study as one offline HTML survey page built from the suite's maps",
            "The paper's user study as one offline HTML survey page built from the suite's maps.",
            keys=("methods=[A,B] (C is CCE)   sets=N   choices=4   title=TEXT   data=photos|imagenet",),
            examples=(
                "cce-bench user-study",
                "cce-bench user-study sets=3 title='Which map explains best?'",
            ),
        ),
        CommandEntry(
            "user-study-results",
            "the study's tables from the answer files: cce-bench user-study-results FILES... study=DIR",
            "The user study's tables (scores, ranks, guesses, participants) from the downloaded answer files.",
            keys=("FILES...|FOLDER   study=DIR (the user-study run)   bootstrap=10000   confidence=0.95",),
            examples=(
                "cce-bench user-study-results answers/ "
                "study=results/runs/2026-11-26_16-40-00_user-study_efficientnet_lite0",
            ),
            positional="answers",
        ),
        CommandEntry(
            "methods",
            "every method by name: the suite's ten and those of captum and pytorch-grad-cam, with their cost",
            "Lists every method the commands take by name: the suite's ten, and each method of captum (captum_NAME) "
            "and pytorch-grad-cam (pytorch_grad_cam_NAME), with what a map costs and whether it runs on the model "
            "with its default knobs.",
            keys=("[model=NAME] (any name cce-bench models lists)",),
            examples=("cce-bench methods", "cce-bench methods model=vgg19"),
            reported=False,
            hydra=False,
        ),
        CommandEntry(
            "metrics",
            "every metric by name: the suite's protocols and each Quantus metric (quantus_NAME), with its family",
            "Lists the metrics compare takes by name (metrics=[...]): the suite's own protocols and each metric class "
            "of Quantus (quantus_NAME), with its family, what it needs (boxes, explaining again) and which way is "
            "better.",
            keys=("(no arguments)",),
            examples=("cce-bench metrics",),
            reported=False,
            hydra=False,
        ),
        CommandEntry(
            "models",
            "every model by name: the registered ones, any torchvision_NAME or timm_NAME, your own (custom)",
            "Lists the models the commands take by name (model=NAME): the registered ones, every torchvision and timm "
            "classifier (torchvision_NAME, timm_NAME) and model=custom, with whether each one's weights are on this "
            "machine. A filter lists every name that holds it.",
            keys=("[FILTER]   (e.g. resnet, timm_vit, torchvision)",),
            examples=("cce-bench models", "cce-bench models resnet"),
            reported=False,
            hydra=False,
        ),
        CommandEntry(
            "runs",
            "list the runs under a folder: command, status, data, model, headline numbers",
            "Lists the run folders under FOLDER (default results/), newest first: each one's command, whether it is "
            "complete, its data, model and images, and its headline (a leaderboard's first row by the score it is "
            "ranked by, a sweep's best value by Diff).",
            keys=("[FOLDER]   (default results)",),
            examples=("cce-bench runs", "cce-bench runs results/runs"),
            reported=False,
            hydra=False,
        ),
        CommandEntry(
            "merge",
            "one leaderboard from several finished compare runs on the same images, model and scores",
            "Merges the leaderboards of two or more finished compare runs on the same images, model and scores (each "
            "with methods of its own) into one, ranked with paired differences over the shared images, from the "
            "records the runs wrote: nothing is computed again. Writes table.csv, table.md, table.tex, records.csv "
            "and run.json to out=DIR.",
            keys=("RUN_DIR RUN_DIR ...", "out=DIR"),
            examples=("cce-bench merge results/runs/cams results/runs/gradients out=results/merged",),
            reported=False,
            hydra=False,
        ),
        CommandEntry(
            "report",
            "one page (HTML and markdown) for a finished run: cce-bench report RUN_DIR",
            "One page for a finished run, as self-contained HTML and markdown: its table beside the paper, plots, "
            "example maps, provenance (a user study: its sets and a link to the page).",
            keys=("RUN_DIR (a folder written by a command)",),
            examples=("cce-bench report results/runs/2026-11-26_16-40-00_sweep_efficientnet_lite0",),
            reported=False,
            hydra=False,
        ),
        CommandEntry(
            "train-calm",
            "fine-tune CALM (CALM-EM) on a local ImageNet train folder, for the CALM column",
            "Fine-tunes CALM (CALM-EM) on a local ImageNet train folder, for CALM's column.",
            keys=("data.root=DIR   epochs=1   lr_head=0.01   lr_backbone=0.001   batch_size=32   checkpoint=PATH",),
            examples=("cce-bench train-calm data.root=/data/imagenet device=cuda",),
            reported=False,
        ),
        CommandEntry(
            "train-parts",
            "train the small CNN on the part scenes (data=parts) and keep it for model=parts_cnn",
            "Trains the small CNN on the part scenes of a world (data=parts), checks its held-out accuracy and its "
            "reliance on the parts, and keeps its weights in the cache where model=parts_cnn finds them.",
            keys=("data.scene_seed=0   data.parts=5   data.types=2   data.side=96   data.distractors=3",
                  "model.train_scenes=8000   model.epochs=4"),
            examples=("cce-bench train-parts data.parts=2 data.side=48 model.train_scenes=640",),
            reported=False,
        ),
        CommandEntry(
            "export-parts",
            "write the part scenes (data=parts) as a class-per-folder image tree and COCO-format masks",
            "Writes the part scenes of a world (data=parts) as files: images/CLASS/ID.png (a folder per class, in the "
            "model's class order) and annotations.json (COCO format, read by pycocotools: each scene's object, parts "
            "and distractors as RLE masks), which compare data=coco and other tools read.",
            keys=("data.split=test   data.n_images=500   data.scene_seed=0   data.parts=5   data.side=96",),
            examples=("cce-bench export-parts out=parts_scenes data.n_images=500",),
            reported=False,
        ),
    ]
}


# -- what `cce-bench --help` and `cce-bench COMMAND --help` print ---------------------------------------
def usage() -> str:
    width = max(len(name) for name in COMMANDS) + 2
    lines = [f"  {name:<{width}}{entry.summary}" for name, entry in COMMANDS.items()]
    return "\n".join(["usage: cce-bench COMMAND [KEY=VALUE ...] [-m]", "", "commands:", *lines, "", USAGE_NOTES])


USAGE_NOTES = """Overrides are Hydra's: e.g. `cce-bench sweep param=M model=vgg19 data=imagenet data.root=/data/imagenet
device=cuda`, or a preset: `cce-bench sweep experiment=table1_alpha data.root=/data/imagenet`. Methods go
by one name (cce, gbp, ig, rise, gradcam_pp, scorecam, fullgrad, contrastive_gradcam, appb, calm, and any
method of captum or pytorch-grad-cam as captum_NAME, pytorch_grad_cam_NAME: `cce-bench methods`), their knobs as
method_knobs.NAME.KNOB=VALUE. `cce-bench sweep --cfg job` prints the composed config; `--help`
after a command lists its config groups.
"""


def command_help(command: str) -> str:
    entry = COMMANDS[command]
    if not entry.hydra:
        return "\n".join(
            [
                f"usage: cce-bench {command} {' '.join(k.split()[0] for k in entry.keys)}",
                "",
                entry.description,
                "",
                "examples:",
                *(f"  {e}" for e in entry.examples),
            ]
        )
    return "\n".join([f"usage: cce-bench {command} [KEY=VALUE ...] [-m]", "", entry.description, "", "main keys:",
                      *(f"  {k}" for k in entry.keys), f"  {COMMON_KEYS}", "", "examples:",
                      *(f"  {e}" for e in entry.examples),
                      "", "Every key with its range: docs/knobs.md in the project; Hydra's own help: --hydra-help"])

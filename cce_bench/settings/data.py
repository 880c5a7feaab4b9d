"""The data sources' settings: one class per kind of source, its keys' types, ranges and docs; each choice
of configs/data/ names its class (`defaults: [/settings/data@_here_: KIND]`) and sets its values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from ..knobs import Knobs, knob
from ..models.inputs import INTERPOLATIONS
from ..rules import Rule

# Below 32 pixels the models' last feature maps are 1 x 1 and every map is one value; above 4096 one image
# is 50 M values a channel.
SIDE = (32, 4096)


@dataclass
class Preprocessing(Knobs):
    """How an image becomes the model's input; null: the model's own input settings (docs/models.md)."""

    group = "data"
    resize: Any = knob(None, Rule("size", *SIDE, nullable=True),
                          "the shorter side before the centre crop, or [height, width]; null: the model's (e.g. 256; "
                          "[224,224] for RISE's)")
    crop: int | None = knob(None, Rule("whole", *SIDE, nullable=True),
                            "the side of the centre crop; null: the model's input size (224 for VGG-19, 260 for "
                            "EfficientNet-Lite2)")
    interpolation: str | None = knob(None, Rule("choice", choices=INTERPOLATIONS, nullable=True),
                                     "the resize's interpolation; null: the model's (bilinear for torchvision's "
                                     "weights, bicubic for timm's)")


@dataclass
class DataSource(Knobs):
    """A data source: its name (the module of cce_bench/data that reads it) and how many images it gives."""

    group = "data"
    name: str = knob(MISSING, Rule("text"), "the source (a module of cce_bench/data)")
    n_images: int | None = knob(None, Rule("whole", 1, nullable=True),
                                "images (or image-category pairs) to take: a seeded sample, listed in samples.csv; "
                                "null: all")


@dataclass
class DataSettings(Preprocessing, DataSource):
    """A data source and how its images become the model's input (the source's keys first)."""


@dataclass
class ImageFolderData(DataSettings):
    """Images from a local folder: torchvision's ImageNet layout (root/SPLIT/<wnid>/*.JPEG), a class-per-folder
    tree, or a flat folder."""

    root: str = knob(MISSING, Rule("text"), "the folder (pass data.root=/path/to/imagenet)")
    split: str = knob("val", Rule("text"), "the split's subfolder under root, where it has one")


@dataclass
class CocoData(DataSettings):
    """COCO-format images and annotations from a local folder, read through pycocotools."""

    root: str = knob(MISSING, Rule("text"), "the folder (pass data.root=/path/to/coco)")
    images: str = knob("val2017", Rule("text"), "the images' folder under root")
    annotations: str = knob("annotations/instances_val2017.json", Rule("text"), "the annotation file under root")
    max_box_fraction: float = knob(0.5, Rule("number", 0, 1, low_open=True),
                                   "Score-CAM's filter: a pair with a box over this share of the image is left out")


@dataclass
class BundledPhotos(DataSettings):
    """Real photos bundled with scikit-image, offline."""


@dataclass
class BundledCocoPhotos(DataSettings):
    """The bundled photos with boxes in a COCO-format annotation file shipped with the suite."""

    max_box_fraction: float = knob(0.5, Rule("number", 0, 1, low_open=True),
                                   "Score-CAM's filter: a pair with a box over this share of the image is left out")


@dataclass
class PartScenesData(DataSettings):
    """Scenes whose answer is known (cce_bench/parts): objects of part slots, each filled with one of a few part
    types, jittered on a textured background with distractors; a class is a combination of part types."""

    scene_seed: int = knob(0, Rule("whole", 0, 2**32 - 1), "the world's seed: the same seed gives the same scenes, "
                                                            "byte for byte (and the same trained parts_cnn)")
    split: str = knob("test", Rule("choice", choices=("train", "test", "check")),
                      "the scenes drawn: test (held out from training), train, or check (the reliance check's)")
    parts: int = knob(5, Rule("whole", 2, 5), "part slots of each object (2..5)")
    types: int = knob(2, Rule("whole", 2, 3), "part types per slot the classes combine: types ** parts classes")
    side: int = knob(96, Rule("whole", 32, 1024), "the scenes' side in pixels")
    distractors: int = knob(3, Rule("whole", 0, 8), "distractor shapes per scene (of the parts' colours and "
                                                    "shapes, away from the object: no class information)")


# configs/data/NAME.yaml names its kind: `- /settings/data@_here_: KIND`.
DATA_KINDS = {"image_folder": ImageFolderData, "coco": CocoData, "photos": BundledPhotos,
              "photos_coco": BundledCocoPhotos, "parts": PartScenesData}

"""A local ImageNet (or any class-per-folder tree, or a flat folder of images) as a data set."""
from __future__ import annotations

import os
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS

from ..errors import UserError
from .images import ImageSet, Sample, printable, seeded_sample, utf8_or_none
from .registry import DATASETS


def imagenet_wnids() -> list[str]:
    import timm.data

    info = timm.data.ImageNetInfo()
    return [info.index_to_label_name(i) for i in range(1000)]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


@DATASETS.register("imagenet")
def imagenet_folder(name: str, transform, root: str | None = None, split: str = "val", n_images: int | None = 1000,
                    seed: int = 0, **_) -> ImageSet:
    """ILSVRC2012 images from a local folder: torchvision's layout (root/val/<wnid>/*.JPEG), a plain
    class-per-folder tree (root/<class>/*), or a flat folder of images (labels unknown)."""
    if not root or str(root) == "???":
        raise UserError("data.root is not set: pass data.root=/path/to/imagenet (the folder holding val/)")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(f"data root {str(base)!r} {'is a file, not a folder' if base.exists() else 'does not exist'}: "
                        "pass data.root=/path/to/imagenet")
    if (base / split).is_dir():
        base = base / split
    samples: list[Sample] = []
    skipped: list[dict] = []
    classes: list[str] = []
    for entry in os.scandir(base):
        try:
            if entry.is_dir():
                classes.append(entry.name)
        except OSError as exc:  # a symlink loop or an unreadable link: that entry is skipped, not the run
            skipped.append({"image_id": printable(entry.name), "reason": f"cannot follow {entry.path}: {exc.strerror}"})
    classes.sort()
    wnid_index = {w: i for i, w in enumerate(imagenet_wnids())}
    by_wnid = bool(classes) and all(c in wnid_index for c in classes)

    def add(relative: str, label: int) -> None:
        if utf8_or_none(relative) is None:  # it could not be written to samples.csv or records
            skipped.append({"image_id": printable(relative),
                            "reason": "the file name is not valid UTF-8: rename the file"})
        else:
            samples.append(Sample(relative, str(base / relative), label))

    for ci, cls in enumerate(classes):
        label = wnid_index[cls] if by_wnid else ci
        for dirpath, _subfolders, files in os.walk(base / cls):
            for f in files:
                if _is_image(f):
                    add(os.path.relpath(os.path.join(dirpath, f), base), label)
    # Images beside the class folders (or in a flat folder, which may hold other folders too): label unknown.
    for f in sorted(os.listdir(base)):
        if _is_image(f) and not (base / f).is_dir():
            add(f, -1)
    if not samples:
        raise UserError(f"no images ({', '.join(IMG_EXTENSIONS[:4])}, ...) under {str(base)!r}: "
                        "pass data.root=PATH to a folder of class folders of images")
    return ImageSet(name, seeded_sample(samples, n_images, seed, f"{str(base)!r}", skipped), transform, skipped)

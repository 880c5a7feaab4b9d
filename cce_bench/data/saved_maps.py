"""Saliency maps made by any tool, read from disk by image id, for `cce-bench score`.

Three layouts: a folder of `ID.npy` files (an id with folders in it, as ImageNet's `wnid/file.JPEG`,
is a path under the folder; the image's extension may be left out), one `.npz` whose arrays are keyed
by id, or one `.pt` holding `{"ids": [...], "maps": tensor [N, h, w]}` (or just the tensor, with the ids
one per line in `maps_ids=FILE`). A map is one 2-D array (a leading or trailing axis of 1 is allowed)
made either on the model's input (square, any size: resized bilinearly as every method's map is) or
on the original image (its exact size: put through the same resize and centre crop as the image).

A problem with the whole input (no such file, a format this does not read, ids that are not images of
the run) is a UserError; a problem with one map (wrong shape, NaN/inf, not a number, missing) skips
that image with the reason, listed in skipped.csv.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from ..choices import MAP_FRAMES
from ..errors import UserError

FRAMES = tuple(MAP_FRAMES)


class MapSkipped(Exception):
    """One map that cannot be scored; the message is the reason listed in skipped.csv."""


def _id_stem(sample_id: str) -> str:
    path = Path(sample_id)
    return (
        str(path.with_suffix(""))
        if path.suffix.lower() in (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff")
        else sample_id
    )


class SavedMaps:
    """The maps at `path`, looked up by image id."""

    def __init__(self, path: str, ids_file: str | None = None):
        self.path = Path(str(path)).expanduser()
        if not self.path.exists():
            raise UserError(f"maps={path} does not exist: pass a folder of ID.npy files, a .npz or a .pt")
        self._arrays: Any = None  # an .npz archive (np.lib.npyio.NpzFile) or a .pt file's dict of tensors
        if self.path.is_dir():
            self.kind = "folder"
            self.ids = {str(p.relative_to(self.path).with_suffix("")) for p in self.path.rglob("*.npy") if p.is_file()}
            if not self.ids:
                raise UserError(f"maps={path} holds no .npy file: save one map per image as ID.npy (np.save)")
        elif not self.path.is_file():  # a FIFO or a device would block or never end
            raise UserError(f"maps={path} is not a regular file: pass a folder of ID.npy files, a .npz or a .pt")
        elif self.path.suffix == ".npz":
            self.kind = "npz"
            try:
                self._arrays = np.load(self.path, allow_pickle=False)
                self.ids = set(self._arrays.files)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise UserError(
                    f"maps={path} cannot be read as a .npz ({exc or type(exc).__name__}): save it with "
                    "np.savez(PATH, **{id: map})"
                ) from None
        elif self.path.suffix in (".pt", ".pth"):
            self.kind = "pt"
            self._arrays = self._load_pt(ids_file)
            self.ids = set(self._arrays)
        else:
            raise UserError(f"maps={path} is neither a folder, a .npz nor a .pt: pass one of those")
        if ids_file is not None and self.kind != "pt":
            raise UserError(
                "maps_ids=FILE is for a .pt that holds only a tensor; a folder or .npz names its maps itself"
            )

    def _load_pt(self, ids_file: str | None) -> dict:
        try:
            content = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch reports a refused pickle, a truncated file, ... with many types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"maps={self.path} cannot be read as a .pt of tensors ({reason}): save "
                            "torch.save({'ids': [...], 'maps': tensor}, PATH)") from None
        if isinstance(content, dict) and {"ids", "maps"} <= set(content):
            ids, maps = content["ids"], content["maps"]
        elif isinstance(content, torch.Tensor):
            if ids_file is None:
                raise UserError(f"maps={self.path} holds a tensor without ids: pass maps_ids=FILE (one image id per "
                                "line, in the tensor's order) or save {'ids': [...], 'maps': tensor}")
            try:
                ids = [
                    line.strip()
                    for line in Path(ids_file).expanduser().read_text(encoding="utf-8").splitlines()
                    if line.strip()
                ]
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(
                    f"maps_ids={ids_file} cannot be read ({exc}): pass a text file with one id per line"
                ) from None
            maps = content
        else:
            raise UserError(f"maps={self.path} holds a {type(content).__name__}: save {{'ids': [...], 'maps': tensor "
                            "[N, h, w]}} with torch.save")
        if not isinstance(maps, torch.Tensor) or len(ids) != len(maps):
            size = len(maps) if hasattr(maps, "__len__") else "no"
            raise UserError(f"maps={self.path}: {len(ids)} ids but {size} maps: give one id per map, in order")
        if len(set(map(str, ids))) != len(ids):
            raise UserError(f"maps={self.path}: an id appears twice; give each map its own image id")
        return {str(i): m for i, m in zip(ids, maps)}

    def source(self, sample_id: str) -> str:
        return str(self.path / f"{sample_id}.npy") if self.kind == "folder" else f"{self.path}[{sample_id}]"

    def key(self, sample_id: str) -> str | None:
        """The maps' name for an image id (with or without the image's extension), or None."""
        for key in (sample_id, _id_stem(sample_id)):
            if key in self.ids:
                return key
        return None

    def load(self, sample_id: str) -> np.ndarray:
        key = self.key(sample_id)
        if key is None:
            raise MapSkipped(f"no map for this image in {self.path}")
        try:
            if self.kind == "folder":
                path = self.path / f"{key}.npy"
                if not path.is_file():
                    raise MapSkipped(f"{path} is not a regular file")
                with open(path, "rb") as handle:
                    check_stored_size(handle, self.source(key))
                value = np.load(path, allow_pickle=False)
            elif self.kind == "npz":
                with self._arrays.zip.open(f"{key}.npy") as handle:
                    check_stored_size(handle, self.source(key))
                value = self._arrays[key]
            else:
                tensor = self._arrays[key]
                if tensor.is_complex():  # .float() would drop the imaginary part
                    raise MapSkipped(f"{self.source(key)} holds {str(tensor.dtype).removeprefix('torch.')} values, "
                                     "not real numbers")
                value = tensor.float().numpy()
        except (OSError, ValueError) as exc:
            raise MapSkipped(f"{self.source(key)} cannot be read: {str(exc).splitlines()[0]}") from None
        return check_map(value, self.source(key))

    def digest(self) -> str:
        """Changes when the maps change (names, sizes, modification times), for resuming a run safely."""
        h = hashlib.sha256()
        files = sorted(self.path.rglob("*.npy")) if self.kind == "folder" else [self.path]
        for f in files:
            stat = f.stat()
            name = f.relative_to(self.path) if self.kind == "folder" else f.name
            h.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return h.hexdigest()[:16]


# A map larger than this is no saliency map of an image (8192 x 8192 values); it is skipped before it is
# read, so that one oversized or zip-bomb member cannot take the machine's memory.
MAX_MAP_VALUES = 8192 * 8192


def check_stored_size(handle, source: str) -> None:
    """The shape in a .npy header, read without the data: one map too large to be a map is skipped."""
    try:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = read_header(handle, max_header_size=100_000)
    except ValueError:
        return  # not a .npy header: np.load says why
    values = int(np.prod(shape, dtype=np.float64))
    if values > MAX_MAP_VALUES:
        raise MapSkipped(f"{source} has shape {tuple(shape)} ({values:,} values): larger than any map "
                         f"({MAX_MAP_VALUES:,} values at most)")


def check_map(value, source: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise MapSkipped(f"{source} holds {array.dtype} values, not numbers")
    while array.ndim > 2 and 1 in (array.shape[0], array.shape[-1]):
        array = array[0] if array.shape[0] == 1 else array[..., 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise MapSkipped(f"{source} has shape {tuple(np.asarray(value).shape)}: a map is one 2-D array [h, w]")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise MapSkipped(f"{source} holds NaN or infinite values")
    return array


class MapsOnImages(Dataset):
    """A data set's items, each with its saved map in the model input's frame ([crop, crop])."""

    def __init__(self, dataset, maps: SavedMaps, data_cfg: dict, frame: str = "auto", all_ids: list[str] | None = None):
        """`all_ids`: every image id of the data set before sampling (default: the run's), so that maps
        for images outside the run's sample are left aside rather than taken for a mistake."""
        if frame not in FRAMES:
            raise UserError(f"maps_frame={frame} is not one of {', '.join(FRAMES)}")
        self.dataset, self.maps, self.frame = dataset, maps, frame
        self.name, self.samples, self.has_boxes = dataset.name, dataset.samples, dataset.has_boxes
        self.crop = int(data_cfg.get("crop", 224))
        resize = data_cfg.get("resize", 256)
        size = int(resize) if isinstance(resize, (int, float)) else [int(s) for s in resize]
        self.geometry = T.Compose(
            [
                T.Resize(
                    size, interpolation=InterpolationMode(data_cfg.get("interpolation", "bilinear")), antialias=True
                ),
                T.CenterCrop(self.crop),
            ]
        )
        self.unused = self.check_ids(all_ids)

    @property
    def skipped(self) -> list:
        return self.dataset.skipped

    def check_ids(self, all_ids: list[str] | None) -> int:
        """Refuses maps that fit no image of the run, or that name images the data set does not have;
        returns the number of maps left aside (images of the data set outside the run's sample)."""
        ids = [s.id for s in self.samples]
        matched = {self.maps.key(i) for i in ids} - {None}
        if not matched:
            raise UserError(
                f"none of the {len(ids)} images of {self.name} has a map in {self.maps.path} (image ids look "
                f"like {ids[0]!r}, the maps' like {sorted(self.maps.ids)[0]!r}): name each map by its image id"
            )
        known = {self.maps.key(i) for i in (all_ids if all_ids is not None else ids)} - {None}
        foreign = sorted(self.maps.ids - known)
        if foreign:
            raise UserError(
                f"{self.maps.path} holds {len(foreign)} map(s) for no image of {self.name} (e.g. {foreign[0]!r}): "
                "pass the data the maps were made for (data=..., data.root=...), or leave those maps out"
            )
        return len(self.maps.ids - matched)

    def samples_table(self):
        return self.dataset.samples_table()

    def __len__(self) -> int:
        return len(self.dataset)

    def original_size(self, index: int) -> tuple[int, int]:
        sample = self.samples[index]
        if hasattr(sample, "height"):
            return int(sample.height), int(sample.width)
        from PIL import Image

        with Image.open(sample.path) as img:  # the header only
            return img.size[1], img.size[0]

    def to_input_frame(self, array: np.ndarray, index: int, source: str) -> torch.Tensor:
        height, width = array.shape
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        on_image = (height, width) == self.original_size(index)
        if self.frame == "image" or (self.frame == "auto" and on_image and (height, width) != (self.crop, self.crop)):
            if not on_image:
                raise MapSkipped(
                    f"{source} is {height}x{width} but the image is {'x'.join(map(str, self.original_size(index)))}"
                    " (maps_frame=image)"
                )
            return self.geometry(tensor[None])[0]
        if height != width:
            h0, w0 = self.original_size(index)
            raise MapSkipped(
                f"{source} is {height}x{width}: neither square (the model's input) nor the image's {h0}x{w0}"
            )
        if height == self.crop:
            return tensor
        return F.interpolate(tensor[None, None], size=(self.crop, self.crop), mode="bilinear", align_corners=False)[
            0, 0
        ]

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        if "error" in item:
            return item
        try:
            array = self.maps.load(item["image_id"])
            source = self.maps.source(self.maps.key(item["image_id"]) or item["image_id"])
            item["map"] = self.to_input_frame(array, index, source)
        except MapSkipped as exc:
            return {"image_id": item["image_id"], "path": item["path"], "error": str(exc)}
        return item

    def collate(self, items: list[dict]) -> dict:
        batch = self.dataset.collate(items)
        good = [it for it in items if "error" not in it]
        batch["map"] = torch.stack([it["map"] for it in good]) if good else torch.empty(0, self.crop, self.crop)
        return batch


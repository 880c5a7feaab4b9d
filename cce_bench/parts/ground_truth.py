"""What the part scenes know, in the frame the model sees: each scene of a `data=parts` run drawn again (whole,
with parts removed or swapped) and transformed exactly as the data set transforms it, with its part, distractor
and object masks. The part metrics (metrics/part_deletion.py, distractibility.py) read the answer from here."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from .scenes import SPLITS, Rendered, Scene


def scene_truth(metric, maps) -> SceneTruth:
    """The metric's SceneTruth for its run (made once, on the first batch), holding this batch's scenes."""
    truth = getattr(metric, "_scene_truth", None)
    if truth is None:
        truth = metric._scene_truth = SceneTruth(metric.cfg.data, maps.model.inputs)
    truth.keep_only(maps.ids)
    return truth


class SceneTruth:
    """The scenes of a run on `data=parts` (its config's data node), for a model's input settings."""

    def __init__(self, data_cfg, inputs):
        from ..data.images import preprocessing
        from ..data.parts import world_of
        from ..models.inputs import resolve_input_settings

        if data_cfg is None or data_cfg.get("name") != "parts":
            raise UserError("this metric scores maps against the parts of scenes whose answer is known: run it on "
                            "data=parts (with model=parts_cnn, trained on them)")
        self.world = world_of(data_cfg)
        settings = resolve_input_settings(inputs, data_cfg)
        self.transform = preprocessing(settings.mean, settings.std, settings.resize, settings.size,
                                       settings.interpolation)
        # this batch's scenes: drawn, their masks, and per network the logits without each part, made once for
        # every method scored on the batch
        self._drawn: dict[str, Rendered] = {}
        self._masks: dict[str, dict[str, torch.Tensor]] = {}
        self._removal_logits: dict[tuple[int, str], torch.Tensor] = {}

    def keep_only(self, image_ids) -> None:
        """Forget the scenes of earlier batches."""
        kept = set(map(str, image_ids))
        self._drawn = {k: v for k, v in self._drawn.items() if k in kept}
        self._masks = {k: v for k, v in self._masks.items() if k in kept}
        self._removal_logits = {k: v for k, v in self._removal_logits.items() if k[1] in kept}

    def drawn(self, image_id: str) -> Rendered:
        """The scene whole, drawn once per batch."""
        if image_id not in self._drawn:
            self._drawn[image_id] = self.world.render(self.scene(image_id))
        return self._drawn[image_id]

    def scene_masks(self, image_id: str) -> dict[str, torch.Tensor]:
        """`masks` of the scene whole, made once per batch."""
        if image_id not in self._masks:
            self._masks[image_id] = self.masks(self.drawn(image_id))
        return self._masks[image_id]

    @torch.no_grad()
    def removal_logits(self, network, image_id: str, device) -> torch.Tensor:
        """`network`'s logits [1 + parts, classes] of the scene whole and without each of its parts in slot
        order, computed once per batch and network whichever method or metric asks."""
        key = (id(network), image_id)
        if key not in self._removal_logits:
            scene = self.scene(image_id)
            without = [self.world.render(scene, removed=(part.slot,)) for part in scene.parts]
            inputs = self.inputs([self.drawn(image_id), *without]).to(device)
            self._removal_logits[key] = network(inputs).double().cpu()
        return self._removal_logits[key]

    def scene(self, image_id: str) -> Scene:
        split, _, index = str(image_id).rpartition("_")
        if split not in SPLITS or not index.isdigit():
            raise UserError(f"image {image_id!r} is not a part scene (SPLIT_INDEX): score part metrics on data=parts")
        return self.world.scene(split, int(index))

    def inputs(self, drawn: list[Rendered]) -> torch.Tensor:
        """Drawn scenes as the model takes them [N, 3, H, W]."""
        return torch.stack([self.transform(Image.fromarray(d.image)) for d in drawn])

    def masks(self, drawn: Rendered) -> dict[str, torch.Tensor]:
        """The scene's masks in the model's frame: `parts` [slots, H, W] in slot order, `distractors` [n, H, W],
        `object` [H, W] (body and parts)."""
        from torchvision import tv_tensors

        assert drawn.body_mask is not None  # every drawn scene has its body
        stacked = [*drawn.part_masks.values(), *drawn.distractor_masks.values(), drawn.body_mask]
        framed = self.transform(tv_tensors.Mask(torch.from_numpy(np.stack(stacked)).to(torch.uint8))).bool()
        parts, distractors = len(drawn.part_masks), len(drawn.distractor_masks)
        return {"parts": framed[:parts], "distractors": framed[parts:parts + distractors],
                "object": framed[:parts].any(0) | framed[-1]}

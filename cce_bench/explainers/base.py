"""The one call every saliency method shares: `attribute(images, target)` -> one map per image [B, H, W].

The base class owns the mechanics common to all methods: default targets (the top-1 class), splitting
a batch into chunks, and the post-processing that makes maps comparable across methods (relu, resize
to the input, min-max to [0, 1]). A method implements `_attribute_batch` on one chunk.
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..method_knobs import BatchOnlyKnobs, MethodKnobs, args_section, knobs_of
from ..models import batched_logits, facts_of
from ..registry import Registry
from ..tensors import min_max
from .targets import Contrast, Explanation

EXPLAINERS: Registry[type[Explainer]] = Registry("method")


class MethodUnavailable(UserError):
    """A method that cannot run in this set-up (CALM without a checkpoint): a table shows `short` in its
    column and the message below the table, instead of failing the whole run."""

    def __init__(self, message: str, short: str):
        super().__init__(message)
        self.short = short


def register(cls: type[Explainer]) -> type[Explainer]:
    """Registers a method under its module's name (`explainers/score_cam.py` -> `score_cam`), the one
    name its knobs (cce_bench/method_knobs/NAME.py, set as method_knobs.NAME.KNOB) and its records use.
    The class name spells the same words (ScoreCAM); `label` is only how tables and figures print it. The
    class's signature and the `Args:` of its docstring are made from its knobs, for help()."""
    name = cls.__module__.rsplit(".", 1)[-1]
    if cls.__name__.lower() != name.replace("_", ""):
        raise TypeError(f"method class {cls.__name__} in {name}.py: name it after its module "
                        f"({''.join(w.capitalize() for w in name.split('_'))} or with the same letters in any case)")
    cls.name = name
    cls.label = cls.label or name
    cls.knobs_class = knobs_of(name)
    cls.__signature__ = knobs_signature(cls.knobs_class)  # type: ignore[attr-defined]  # what inspect reads
    cls.__doc__ = f"{inspect.cleandoc(cls.__doc__ or '')}\n\n{args_section(cls.knobs_class)}"
    EXPLAINERS.register(name)(cls)
    return cls


def knobs_signature(knobs: type[MethodKnobs]) -> inspect.Signature:
    """(model, *, knob=default, ...): how a method's class is called, shown by help() and IDEs."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    return inspect.Signature(
        [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, keyword, default=default) for name, default in knobs.defaults().items()]
    )


def resolve_targets(model, images: torch.Tensor, target=None, batch_size: int = 32) -> torch.Tensor:
    """Class per image [B]: given (an int or one per image), else the model's top-1 prediction."""
    if target is None:
        return batched_logits(model, images, batch_size).argmax(1)
    target = torch.as_tensor(target, device=images.device).long()
    if target.dim() == 0:
        target = target.expand(images.shape[0])
    if target.shape != (images.shape[0],):
        raise UserError(
            f"targets must be one class index per image ({images.shape[0]}), got shape {tuple(target.shape)}"
        )
    return target


def other_top_classes(logits: torch.Tensor, targets: torch.Tensor, m: int) -> torch.Tensor:
    """The m highest-scoring classes other than the target and other than the model's own prediction,
    per image [B, m]: the contrast classes of CCE and CE.

    Where the explained class is not the top-1 (the pointing game explains the best *mapped* class), the
    top-1 class would need no change at all: CCE's counterfactual toward it is delta = 0, valid at step 0,
    with an empty map, and CE's cross-entropy toward it points away from the evidence. A contrast class
    must need a change, so the top-1 is left out too.
    """
    logits = logits.detach()
    masked = logits.scatter(1, targets.view(-1, 1), float("-inf"))
    masked = masked.scatter(1, logits.argmax(1, keepdim=True), float("-inf"))
    return masked.topk(m, dim=1).indices


def postprocess(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """relu, bilinear resize to the input size, then min-max per map (a constant map becomes zeros)."""
    maps = maps.float().clamp_min(0)
    if maps.shape[-2:] != tuple(size):
        maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return min_max(maps, constant=0.0)


@dataclass
class SettingMaps:
    """The maps of one setting of a method's knobs, with what it cost and (CCE) how valid it was."""

    setting: dict
    maps: torch.Tensor
    seconds: float
    valid: torch.Tensor | None = None  # CCE: per image, the share of its counterfactuals that are valid
    parts: dict | None = None  # a two-map method's own maps behind `maps` (CCE: {"M_sup": ..., "M_pro": ...})


# What a map costs in passes of the model: each method's `cost` is one of these.
COST_CLASSES = {
    "forward": "one forward pass per image",
    "gradient": "one forward and backward pass per image",
    "path": "n_steps forward and backward passes per image",
    "samples": "one forward and backward pass per sample or baseline",
    "perturbation": "one forward pass per perturbed input (windows, cells or samples)",
    "optimisation": "an optimisation: many forward and backward passes per image",
    "masks": "one forward pass per random or activation mask",
}


class Explainer:
    name = ""   # set by @register from the module's name
    label = ""  # the paper's abbreviation, for tables and figures
    cost = ""   # what a map costs in passes of the model (a key of COST_CLASSES)
    # A method that explains a classifier of its own (CALM) sets this to that classifier, on the
    # benchmark's input; protocols that let the model choose the class then ask it instead.
    own_classifier: Any = None
    # The method's knobs (type, default, range, doc): cce_bench/method_knobs/NAME.py, set by @register.
    knobs_class: type[MethodKnobs] = BatchOnlyKnobs
    # batch_size where it is null, by the model's device: small batches are fastest on a CPU (cache),
    # large ones fill a GPU. A method whose batch means more work per input declares smaller ones.
    batch_sizes = {"cpu": 16, "cuda": 64}
    # The model's facts the method reads when its knobs leave them null (models/facts.py: "target_layer",
    # "perceptual_layers"): a model without them cannot run it with the defaults.
    needs: tuple[str, ...] = ()
    # The knobs that set how much memory the method holds at once, named by an out-of-memory line.
    memory_knobs: tuple[str, ...] = ("batch_size",)
    # The knobs a sweep's records carry beside the swept one (the columns of the paper's tables of this
    # method), and whether `report` draws its examples from this method first, when the run has it.
    recorded_knobs: tuple = ()
    featured = False

    if TYPE_CHECKING:  # each knob is an attribute, set from knobs_class by __init__: the checker cannot list them
        def __getattr__(self, name: str) -> Any: ...

    @classmethod
    def memory_hint(cls) -> str:
        return " or ".join(f"method_knobs.{cls.name}.{knob}=" for knob in cls.memory_knobs)

    @classmethod
    def unavailable_on(cls, model) -> str | None:
        """Why the method cannot run on `model` with its default knobs (None: it can)."""
        facts = facts_of(model)
        missing = [fact for fact in cls.needs if getattr(facts, fact) is None]
        if "target_layer" in missing and facts.no_target_layer:
            return (f"no convolutional layer to read: {facts.no_target_layer}; gradient, path and perturbation "
                    "methods run on it (or name a layer: model.target_layer=PATH)")
        return f"the model's facts have no {' or '.join(missing)}: set the method's layer knob" if missing else None

    @classmethod
    def default_batch_size(cls, device_type: str) -> int:
        return cls.batch_sizes.get(device_type, cls.batch_sizes["cpu"])

    def __init__(self, model, **knobs):
        """Every knob (checked against its rule; the rest at their defaults) becomes an attribute of the same
        name; a subclass reads them from there."""
        settings = self.knobs_class.checked(knobs, self.name or type(self).__name__, self.label)
        for name in self.knobs_class.names():
            setattr(self, name, getattr(settings, name))
        self.model = model
        if settings.batch_size is None:  # type: ignore[attr-defined]  # every knobs class ends in batch_size
            self.batch_size = self.default_batch_size(device_type(model))

    # -- the shared call ---------------------------------------------------------------------------
    def attribute(self, images: torch.Tensor, target=None) -> torch.Tensor:
        """Maps [B, H, W] in [0, 1]: of a class per image (`target`: an int, a tensor [B], None for the model's
        answer), or the answer to "why P rather than Q?" (`target` a `Contrast`)."""
        if isinstance(target, Contrast):
            return self.explain(images, target).answer
        return postprocess(self.raw_attribute(images, target), (images.shape[-2], images.shape[-1]))

    def explain(self, images: torch.Tensor, target=None) -> Explanation:
        """The method's answer to `target` (a class per image, or a `Contrast`) as named maps (targets.py)."""
        classes = target.classes if isinstance(target, Contrast) else target
        classes = resolve_targets(self.model, images, classes, self.batch_size)
        contrast = target.contrast_matrix() if isinstance(target, Contrast) else None
        return self._explain(images, classes, contrast)

    def _explain(self, images: torch.Tensor, classes: torch.Tensor, contrast: torch.Tensor | None) -> Explanation:
        """One map, `map`: against Q (`contrast` [B, k], its first column) where the method answers "rather than
        Q" itself (`_contrast_batch`), else its map for P. A method with several maps of its own overrides this."""
        if contrast is None or not self.answers_contrast():
            return Explanation({"map": self.attribute(images, classes)}, "map", {"map": "why {P}"}, classes, contrast)
        q = contrast[:, 0].to(images.device)
        step = self.batch_size  # one contrast class per image: a chunk of batch_size images is batch_size pairs
        raw = torch.cat([self._contrast_batch(images[s:s + step], classes[s:s + step], q[s:s + step]).float()
                         for s in range(0, len(images), step)])
        maps = postprocess(raw, (images.shape[-2], images.shape[-1]))
        return Explanation({"map": maps}, "map", {"map": "why {P} rather than {Q}"}, classes, contrast[:, :1])

    @classmethod
    def answers_contrast(cls) -> bool:
        """Whether the method answers "why P rather than Q?" with a map of its own (else with its map for P)."""
        return cls._contrast_batch is not Explainer._contrast_batch or cls._explain is not Explainer._explain

    def contrast_classes(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Q [B, k] where none is asked: the classes the method contrasts P with by default (the most likely
        other than P and the model's answer)."""
        return other_top_classes(logits, targets, 1)

    def raw_attribute(self, images: torch.Tensor, target=None) -> torch.Tensor:
        """The method's own maps [B, h, w] before the shared post-processing (signed where the method's
        are; the sanity checks compare these with and without absolute values)."""
        targets = resolve_targets(self.model, images, target, self.batch_size)
        step = self.images_per_chunk()
        self.last_parts: dict[str, list[torch.Tensor]] = {}  # a two-map method's maps of this call, per chunk
        return torch.cat([self._attribute_batch(images[s:s + step], targets[s:s + step]).float()
                          for s in range(0, len(images), step)])

    def parts_of_last_maps(self) -> dict[str, torch.Tensor]:
        """A two-map method's own maps behind its last raw_attribute call ({"M_sup": [B, h, w], "M_pro": ...}
        for CCE), kept at no extra cost for save_maps; empty for any other method."""
        return {name: torch.cat(chunks) for name, chunks in getattr(self, "last_parts", {}).items()}

    def _attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _contrast_batch(self, images: torch.Tensor, targets: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
        """A method's own map of "why targets rather than contrast?" (one class of each per image), unprocessed."""
        raise NotImplementedError

    def images_per_chunk(self) -> int:
        return self.batch_size

    # -- knobs -------------------------------------------------------------------------------------
    @classmethod
    def knob_names(cls) -> list[str]:
        return cls.knobs_class.names()

    @classmethod
    def knob_rules(cls) -> dict:
        """{knob: Rule} of the knobs whose range the suite checks."""
        return cls.knobs_class.rules()

    @classmethod
    def unknown_knobs(cls, knobs: dict) -> list[str]:
        return sorted(set(knobs) - set(cls.knob_names()))

    def knobs(self) -> dict:
        return {n: getattr(self, n) for n in self.knob_names()}

    def with_knobs(self, **changes) -> Explainer:
        return type(self)(self.model, **{**self.knobs(), **changes})

    def maps_for_settings(
        self, images: torch.Tensor, targets: torch.Tensor, settings: list[dict]
    ) -> Iterator[SettingMaps]:
        """Maps for each setting of the knobs; a method whose maps share work across settings overrides this."""
        for setting in settings:
            explainer = self.with_knobs(**setting)
            start = time.perf_counter()
            maps = explainer.attribute(images, targets)
            yield SettingMaps(setting, maps, time.perf_counter() - start)


def device_type(model) -> str:
    """Where a model's weights live ("cpu" for a model without any, such as nn.Identity)."""
    parameter = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return parameter.device.type if parameter is not None else "cpu"


def create_explainer(name: str, model, **knobs) -> Explainer:
    """The method `name` (any name `cce-bench methods` lists) on `model`, its knobs as keyword arguments,
    each checked against its range (docs: Every knob); an unknown knob raises `UserError` listing the
    method's. `.attribute(images, targets)` then gives maps [B, H, W] in [0, 1]; a method with two maps
    (CCE) also has `.contrastive_maps(images, targets, contrast=None)`."""
    cls = EXPLAINERS.get(name)
    unknown = cls.unknown_knobs(knobs)
    if unknown:
        raise UserError(f"method {cls.name} has no knob {', '.join(unknown)}; its knobs: {', '.join(cls.knob_names())} "
                        f"(set them as method_knobs.{cls.name}.KNOB=VALUE)")
    return cls(model, **knobs)

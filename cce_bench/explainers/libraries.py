"""Every attribution method of captum and pytorch-grad-cam, by name, with the call every method of the
suite has: `captum_DeepLift`, `captum_NoiseTunnel`, `pytorch_grad_cam_EigenCAM`, ... (the library's import
name, then its class name exactly; `gradcam_EigenCAM`, the former spelling, still works with a warning).
They run in every command that takes methods, beside the suite's own.

How a library's attribution becomes a map is one rule, the one the suite's own captum and pytorch-grad-cam
methods follow (so `captum_IntegratedGradients` gives `ig`'s map and `pytorch_grad_cam_GradCAMPlusPlus`
gives `gradcam_pp`'s):

- an attribution at the input, [B, 3, H, W]: the sum over channels of its absolute values (IG's rule;
  the suite's `gbp` keeps the Score-CAM comparison's maximum of absolute values instead);
- an attribution at a layer, [B, C, h, w]: the sum over channels, signed (Grad-CAM's rule);
- a map, [B, h, w] (pytorch-grad-cam's, already at the input's size): as it is;

then the post-processing every method shares: relu, bilinear resize to the input, min-max per map.

Knobs are the library's own arguments (of the class and of its call), by their names, with the library's
defaults, plus what the suite decides for every method alike:
- `layer` (captum's layer methods and GuidedGradCam) and `target_layer` (pytorch-grad-cam): a dotted path;
  null: the model's target layer (its facts), as for the suite's CAM methods;
- `baselines`: "black" (the black image, the suite's IG baseline; the default), "white", "zero" (zeros of
  the normalised input: the mean colour); methods that take a distribution of baselines (DeepLiftShap,
  GradientShap and their layer forms) get black and white by default ("black_white");
- `feature_cell`: the side in pixels of the square cells the perturbation methods that need a feature mask
  (FeatureAblation, ShapleyValueSampling, Lime, KernelShap) perturb together (16: 196 cells at 224 x 224);
- `batch_size`: images per call for the gradient methods; for the others (paths, samples, perturbations)
  the model inputs per pass, passed to the library as internal_batch_size, perturbations_per_eval or
  nt_samples_batch_size where those are left unset;
- NoiseTunnel's `method`: the captum method it wraps (default Saliency: SmoothGrad), whose knobs it takes.
"""
from __future__ import annotations

import inspect
import warnings
from functools import cache
from typing import cast

import torch

from ..errors import UserError
from ..method_knobs import RENAMED_PREFIXES, BatchOnlyKnobs
from ..method_knobs import shown as shown_value
from ..models import facts_of
from ..rules import Rule
from .base import EXPLAINERS, Explainer, MethodUnavailable
from .gradcam_pp import cam_maps
from .layers import resolve_layer

# captum's attribution methods that explain one image classifier's class per image, by cost class (what a
# map costs in passes of the model). Left out: Neuron* (they explain a neuron, not a class),
# FeaturePermutation (it permutes features across the batch: a map would depend on the other images),
# ShapleyValues (exact: 2^features passes), DataLoaderAttribution and the LLM ones.
CAPTUM_METHODS = {
    "Saliency": "gradient", "InputXGradient": "gradient", "GuidedBackprop": "gradient",
    "Deconvolution": "gradient", "DeepLift": "gradient", "LRP": "gradient", "GuidedGradCam": "gradient",
    "IntegratedGradients": "path", "DeepLiftShap": "samples", "GradientShap": "samples", "NoiseTunnel": "samples",
    "Occlusion": "perturbation", "FeatureAblation": "perturbation", "ShapleyValueSampling": "perturbation",
    "Lime": "perturbation", "KernelShap": "perturbation",
    "LayerGradCam": "gradient", "LayerGradientXActivation": "gradient", "LayerActivation": "forward",
    "LayerDeepLift": "gradient", "LayerLRP": "gradient", "LayerConductance": "path",
    "LayerIntegratedGradients": "path", "InternalInfluence": "path", "LayerDeepLiftShap": "samples",
    "LayerGradientShap": "samples", "LayerFeatureAblation": "perturbation",
}

# Arguments the suite supplies itself (the model, the images, the class, a feature mask), never knobs.
SUPPLIED = {"self", "forward_func", "model", "layer", "device_ids", "inputs", "target", "additional_forward_args",
            "return_convergence_delta", "show_progress", "verbose", "kwargs", "grad_kwargs", "feature_mask",
            "layer_mask", "custom_attribution_func", "attribution_method", "baselines", "target_layers",
            "input_tensor", "targets", "reshape_transform", "return_input_shape", "interpretable_model",
            "similarity_func", "perturb_func", "use_cuda"}
BATCHING = ("internal_batch_size", "perturbations_per_eval", "nt_samples_batch_size")
LIBRARY_ARGUMENT_DEFAULTS = {"Occlusion": {"sliding_window_shapes": (3, 16, 16), "strides": (3, 8, 8)}}
DISTRIBUTION_BASELINES = {"DeepLiftShap", "GradientShap", "LayerDeepLiftShap", "LayerGradientShap"}
FEATURE_MASKS = {"FeatureAblation", "ShapleyValueSampling", "Lime", "KernelShap"}
BASELINES = ("black", "white", "zero", "black_white")
# The ranges of the knobs the suite adds to a library's arguments (the library checks its own).
SUITE_KNOB_RULES = {"baselines": Rule("choice", choices=BASELINES), "feature_cell": Rule("whole", 1, 4096),
                    **BatchOnlyKnobs.rules()}
# The libraries' own numeric arguments, by name across their methods: each value must meet one of the rules.
# A library takes some of these unchecked (captum's Occlusion runs with a negative stride and returns a map).
_COUNT = Rule("whole", 1)
_COUNTS = (_COUNT, Rule("list", each=_COUNT))
LIBRARY_ARGUMENT_RULES: dict[str, tuple[Rule, ...]] = {
    "strides": _COUNTS, "sliding_window_shapes": _COUNTS, "n_steps": (_COUNT,), "nt_samples": (_COUNT,),
    "n_samples": (_COUNT,), "perturbations_per_eval": (_COUNT,),
    "internal_batch_size": (Rule("whole", 1, nullable=True),),
    "nt_samples_batch_size": (Rule("whole", 1, nullable=True),),
    "stdevs": (Rule("number", 0), Rule("list", each=Rule("number", 0))),
}


def library_arguments(function) -> dict:
    """A library function's arguments that are knobs, with their defaults (None where it has none)."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default) for p in parameters
            if p.name not in SUPPLIED and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def quoted(value) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


class LibraryMethod(Explainer):
    """What the captum and pytorch-grad-cam adapters share: knobs split into the library's constructor and
    call arguments, checked by name against the library's signatures, and the library's refusals of a
    value turned into one line naming the knob."""

    library = ""           # the library's prefix: "captum" or "pytorch_grad_cam"
    member = ""            # the library's class name
    cost = ""

    @classmethod
    def library_class(cls):
        raise NotImplementedError

    @classmethod
    def added_knobs(cls) -> dict:
        """The knobs the suite adds to the library's arguments, with their defaults."""
        return {"batch_size": None}

    @classmethod
    def constructor_knobs(cls) -> dict:
        # the suite's batch_size is the library's where it takes one (AblationCAM)
        return {k: v for k, v in library_arguments(cls.library_class().__init__).items() if k != "batch_size"}

    @classmethod
    def call_knobs(cls) -> dict:
        raise NotImplementedError

    @classmethod
    def knob_names(cls) -> list[str]:
        return [*cls.added_knobs(), *cls.constructor_knobs(), *cls.call_knobs()]

    @classmethod
    def defaults(cls) -> dict:
        return {**cls.constructor_knobs(), **cls.call_knobs(), **LIBRARY_ARGUMENT_DEFAULTS.get(cls.member, {}),
                **cls.added_knobs()}

    @classmethod
    def knob_rules(cls) -> dict:
        return {k: SUITE_KNOB_RULES[k] for k in cls.added_knobs() if k in SUITE_KNOB_RULES}

    def __init__(self, model, **knobs):  # knob names are checked by create_explainer (unknown_knobs)
        super().__init__(model, batch_size=knobs.pop("batch_size", None))
        self.settings = {k: v for k, v in {**self.defaults(), **knobs}.items() if k != "batch_size"}
        rules = {**{k: rules for k, rules in LIBRARY_ARGUMENT_RULES.items() if k in self.settings},
                 **{k: (rule,) for k, rule in self.knob_rules().items()}}
        for knob, alternatives in rules.items():  # before any work: a library may take a bad value and run
            if knob in self.settings and not any(rule.accepts(self.settings[knob]) for rule in alternatives):
                raise UserError(f"{self.label} {knob}={shown_value(self.settings[knob])} is not valid: it must be "
                                f"{' or '.join(r.describe() for r in alternatives)} (method_knobs.{self.name}.{knob})")

    def knobs(self) -> dict:
        return {**self.settings, "batch_size": self.batch_size}

    def split(self, names) -> dict:
        return {k: self.settings[k] for k in names if k in self.settings}

    def refused(self, exc: Exception) -> UserError:
        given = ", ".join(f"{k}={quoted(v)}" for k, v in self.settings.items() if v is not None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return UserError(f"{self.library} {self.member} failed on this model with these knobs ({first}); knobs: "
                         f"{given or 'the defaults'} (method_knobs.{self.name}.KNOB=VALUE)")

    def run_library(self, call):
        """The library's call; its failure (a value it refuses, a layer type it has no rule for) as one line.
        Out of memory goes on to the run's halving of the inputs per pass."""
        try:
            with warnings.catch_warnings():  # captum's notices about the hooks it sets, once per call
                warnings.filterwarnings("ignore", message=r"Setting (forward|backward)")
                return call()
        except (torch.OutOfMemoryError, UserError):
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the library raises is about its arguments or the model
            raise self.refused(exc) from None


class CaptumMethod(LibraryMethod):
    """A captum method that attributes to the input (gradient, path, samples): the family's base. The
    others below add what their family needs: a layer, a feature mask, a method to wrap."""

    library = "captum"

    @classmethod
    def library_class(cls):
        import captum.attr

        return getattr(captum.attr, cls.member)

    @classmethod
    def call_knobs(cls) -> dict:
        return library_arguments(cls.library_class().attribute)

    @classmethod
    def added_knobs(cls) -> dict:
        """The knobs the suite adds to the library's arguments, with their defaults: its baselines where its call
        takes them, and batch_size."""
        if "baselines" not in inspect.signature(cls.library_class().attribute).parameters:
            return {"batch_size": None}
        return {"baselines": "black_white" if cls.member in DISTRIBUTION_BASELINES else "black", "batch_size": None}

    @classmethod
    def unavailable_on(cls, model) -> str | None:
        return cls.missing_rules(model)

    @classmethod
    def missing_rules(cls, model) -> str | None:
        """Why captum's LRP cannot run on `model` whatever the knobs (layers it has no rule for), or None."""
        if cls.member not in ("LRP", "LayerLRP"):
            return None
        from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS

        supported = (*SUPPORTED_LAYERS_WITH_RULES, *SUPPORTED_NON_LINEAR_LAYERS)
        leaves = [m for m in getattr(model, "net", model).modules() if not list(m.children())]
        unsupported = sorted({type(m).__name__ for m in leaves if not isinstance(m, supported)})
        return f"captum's LRP has no rule for {', '.join(unsupported[:3])}" if unsupported else None

    def __init__(self, model, **knobs):
        missing = self.missing_rules(model)
        if missing:  # known before any work: the method's row says so, the others run
            raise MethodUnavailable(f"cannot run on this model: {missing}", "cannot run here")
        super().__init__(model, **knobs)
        self.method = self.run_library(lambda: self.library_class()(model, *self.library_layers(),
                                                                    **self.split(self.constructor_knobs())))

    def library_layers(self) -> list:
        return []

    def images_per_chunk(self) -> int:
        return self.batch_size if self.cost in ("gradient", "forward") else 1

    def baselines(self, images: torch.Tensor):
        choice = self.settings.get("baselines")
        mean = getattr(self.model, "mean", None)
        std = getattr(self.model, "std", None)

        def image_of(value: float) -> torch.Tensor:
            if mean is None or std is None:
                return torch.full_like(images, value)
            return (torch.full_like(images, value) - mean.to(images.device)) / std.to(images.device)

        if choice == "zero":
            return torch.zeros_like(images)
        if choice == "black_white":
            return torch.cat([image_of(0.0)[:1], image_of(1.0)[:1]])
        return image_of(1.0 if choice == "white" else 0.0)

    def attribute_parameters(self) -> set:
        return set(inspect.signature(self.method.attribute).parameters) - {"kwargs"}

    def call_arguments(self, images: torch.Tensor) -> dict:
        """The call's arguments: the knobs it takes, the baselines, and the inputs per pass where unset."""
        parameters = self.attribute_parameters()
        own = set(self.added_knobs()) | set(self.constructor_knobs())
        arguments = {k: v for k, v in self.settings.items() if k in parameters and k not in own and v is not None}
        if "baselines" in parameters:
            arguments["baselines"] = self.baselines(images)
        for name in BATCHING:
            if name in parameters and arguments.get(name) is None:
                arguments[name] = self.batch_size
        return arguments

    def takes_target(self) -> bool:
        return "target" in inspect.signature(self.method.attribute).parameters

    def _attribute_batch(self, images, targets):
        inputs = images.detach().requires_grad_(True)
        arguments = self.call_arguments(images)
        if self.takes_target():
            arguments["target"] = targets
        attribution = self.run_library(lambda: self.method.attribute(inputs, **arguments))
        return map_of(attribution, images.shape[-2:])


class CaptumLayerMethod(CaptumMethod):
    """A captum method that attributes to a layer (Layer*, InternalInfluence, GuidedGradCam): `layer`, a
    dotted path; null: the model's target layer (its facts), as for the suite's CAM methods."""

    @classmethod
    def added_knobs(cls) -> dict:
        return {"layer": None, **super().added_knobs()}

    @classmethod
    def unavailable_on(cls, model) -> str | None:
        if facts_of(model).target_layer is None:
            return "the model's facts have no target_layer: set layer="
        return super().unavailable_on(model)

    def __init__(self, model, **knobs):
        self.layer = None  # resolved once the knobs are set (library_layers, called by the base)
        super().__init__(model, **knobs)

    def library_layers(self) -> list:
        self.layer = resolve_layer(self.model, self.settings.get("layer"),
                                   f"method_knobs.{self.name}.layer=DOTTED.PATH")
        return [self.layer]

    def call_arguments(self, images: torch.Tensor) -> dict:
        arguments = super().call_arguments(images)
        if self.member == "LayerFeatureAblation" and "layer_mask" in self.attribute_parameters():
            arguments["layer_mask"] = self.layer_positions(images)
        return arguments

    def layer_positions(self, images: torch.Tensor) -> torch.Tensor:
        """LayerFeatureAblation's mask: each position of the layer's output is one feature (all channels
        together), so that its cost is the layer's positions (49 at a 7 x 7 map), not its neurons."""
        from .layers import capture_outputs

        size = tuple(images.shape[-2:])
        if getattr(self, "_positions", (None,))[0] != size:  # one forward per input size, not per image
            assert self.layer is not None  # a layer method's layer, resolved when it was built
            with torch.no_grad(), capture_outputs([self.layer]) as outputs:
                self.model(images[:1])
            h, w = outputs[0].shape[-2:]
            self._positions = (size, torch.arange(h * w, device=images.device).view(1, 1, h, w))
        return self._positions[1]


class CaptumPerturbationMethod(CaptumMethod):
    """A captum method that perturbs the input. Those that need a feature mask (FeatureAblation,
    ShapleyValueSampling, Lime, KernelShap) perturb square cells of `feature_cell` pixels together; Occlusion
    has the suite's window and stride (LIBRARY_ARGUMENT_DEFAULTS), given as lists on the command line."""

    @classmethod
    def added_knobs(cls) -> dict:
        return {**super().added_knobs(), **({"feature_cell": 16} if cls.member in FEATURE_MASKS else {})}

    def feature_mask(self, images: torch.Tensor) -> torch.Tensor:
        cell = int(self.settings["feature_cell"])
        h, w = images.shape[-2:]
        rows = torch.arange(h, device=images.device) // cell
        cols = torch.arange(w, device=images.device) // cell
        mask = rows[:, None] * ((w + cell - 1) // cell) + cols[None, :]
        return mask.expand(1, 1, h, w)

    def call_arguments(self, images: torch.Tensor) -> dict:
        arguments = super().call_arguments(images)
        if "feature_mask" in self.attribute_parameters():
            arguments["feature_mask"] = self.feature_mask(images)
        for name in ("sliding_window_shapes", "strides"):
            if isinstance(arguments.get(name), list):
                arguments[name] = tuple(arguments[name])
        return arguments


class CaptumNoiseTunnel(CaptumMethod):
    """captum's NoiseTunnel around the captum input-gradient method named by `method` (default Saliency:
    SmoothGrad), whose knobs it takes beside its own."""

    WRAPPABLE = ("gradient", "path")  # cost classes of the methods it can wrap (those without a layer)

    @classmethod
    def wrapped(cls, knobs: dict | None = None) -> str:
        return str((knobs or {}).get("method") or "Saliency")

    @classmethod
    def added_knobs(cls) -> dict:
        return {"method": "Saliency", "baselines": "black", "batch_size": None}

    @classmethod
    def call_knobs(cls) -> dict:
        import captum.attr

        return {**library_arguments(getattr(captum.attr, cls.wrapped()).attribute), **super().call_knobs()}

    @classmethod
    def unknown_knobs(cls, knobs: dict) -> list[str]:
        import captum.attr

        method = cls.wrapped(knobs)
        if CAPTUM_METHODS.get(method) not in cls.WRAPPABLE or issubclass(captum_base(method), CaptumLayerMethod):
            return [f"method={method} (NoiseTunnel wraps captum's input gradient methods: Saliency, "
                    "InputXGradient, IntegratedGradients, DeepLift, GuidedBackprop, ...)"]
        wrapped = library_arguments(getattr(captum.attr, method).attribute)
        return sorted(set(knobs) - set(cls.knob_names()) - set(wrapped))

    def __init__(self, model, **knobs):
        LibraryMethod.__init__(self, model, **knobs)
        import captum.attr

        self.method = captum.attr.NoiseTunnel(getattr(captum.attr, self.wrapped(self.settings))(model))

    def attribute_parameters(self) -> set:
        """Its call's parameters and those of the method it wraps, which it passes on."""
        return super().attribute_parameters() | set(inspect.signature(self.method.attribution_method.attribute)
                                                    .parameters) - {"kwargs"}

    def takes_target(self) -> bool:
        return True  # passed on to the wrapped method through its **kwargs


def map_of(attribution: torch.Tensor, size) -> torch.Tensor:
    """The rule: [B, 3, H, W] at the input -> sum of |.| over channels; [B, C, h, w] at a layer -> sum over
    channels; [B, h, w] -> as is. (Resize, relu and min-max follow in the shared post-processing.)"""
    attribution = torch.as_tensor(attribution).detach().float()
    if attribution.dim() == 3:
        return attribution
    if attribution.dim() != 4:
        raise UserError(f"the library returned an attribution of shape {tuple(attribution.shape)}, not a map per image")
    if tuple(attribution.shape[-2:]) == tuple(size) and attribution.shape[1] == 3:
        return attribution.abs().sum(1)
    return attribution.sum(1)


class GradCamMethod(LibraryMethod):
    library = "pytorch_grad_cam"

    @classmethod
    def library_class(cls):
        import pytorch_grad_cam

        return getattr(pytorch_grad_cam, cls.member)

    @classmethod
    def added_knobs(cls) -> dict:
        return {"target_layer": None, "batch_size": None}

    @classmethod
    def call_knobs(cls) -> dict:
        from pytorch_grad_cam.base_cam import BaseCAM

        return library_arguments(BaseCAM.__call__)

    needs = ("target_layer",)

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        self.layers = [resolve_layer(model, self.settings.get("target_layer"),
                                     f"method_knobs.{self.name}.target_layer=DOTTED.PATH")]

    def _attribute_batch(self, images, targets):
        constructor = self.split(self.constructor_knobs())
        if "batch_size" in inspect.signature(self.library_class().__init__).parameters:
            constructor["batch_size"] = self.batch_size
        call = self.split(self.call_knobs())
        return self.run_library(lambda: cam_maps(self.library_class(), self.model, self.layers, images, targets,
                                                 constructor, call))


@cache
def gradcam_methods() -> list[str]:
    """pytorch-grad-cam's CAM methods: every class it exports that is a BaseCAM with its call, except
    SegEigenCAM (for segmentation models) and ShapleyCAM (it differentiates through the weights, which the
    suite's models hold frozen)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.base_cam import BaseCAM

    return [name for name in dir(pytorch_grad_cam) if isinstance(getattr(pytorch_grad_cam, name), type)
            and issubclass(getattr(pytorch_grad_cam, name), BaseCAM) and name not in ("SegEigenCAM", "ShapleyCAM")]


def captum_methods() -> list[str]:
    import captum.attr

    return [name for name in CAPTUM_METHODS if hasattr(captum.attr, name)]


def captum_base(member: str) -> type:
    """The family class of a captum method: what it attributes to and what it needs."""
    import captum.attr

    if member == "NoiseTunnel":
        return CaptumNoiseTunnel
    if "layer" in inspect.signature(getattr(captum.attr, member).__init__).parameters:
        return CaptumLayerMethod
    return CaptumPerturbationMethod if CAPTUM_METHODS[member] == "perturbation" else CaptumMethod


def make_captum(member: str) -> type:
    cls = cast("type[CaptumMethod]", type(f"Captum{member}", (captum_base(member),),
                                          {"member": member, "cost": CAPTUM_METHODS[member]}))
    return named(cls, "captum", member)


def make_gradcam(member: str) -> type:
    cost = {"ScoreCAM": "masks", "AblationCAM": "masks", "EigenCAM": "forward", "RandomCAM": "forward",
            "KPCA_CAM": "forward"}.get(member, "gradient")
    cls = cast("type[GradCamMethod]", type(f"GradCam{member}", (GradCamMethod,), {"member": member, "cost": cost}))
    return named(cls, "pytorch_grad_cam", member)


def named(cls: type[LibraryMethod], library: str, member: str) -> type:
    cls.name = f"{library}_{member}"
    cls.label = f"{member} ({'captum' if library == 'captum' else 'grad-cam'})"
    cls.__doc__ = (f"{library} {member} through the suite's call ({cls.__module__}: the map rule, the knobs). "
                   f"Knobs: {', '.join(cls.added_knobs())} and the library's own arguments.")
    return cls


EXPLAINERS.add_family("captum", captum_methods, make_captum)  # the prefixes of method_knobs.LIBRARY_PREFIXES
EXPLAINERS.add_family("pytorch_grad_cam", gradcam_methods, make_gradcam)
for _old, _new in RENAMED_PREFIXES.items():
    EXPLAINERS.rename_family(_old, _new)

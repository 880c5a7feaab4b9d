"""What a run will cost, said before its first image: the model passes per image (each method's counted on
a small probe image, the scoring passes from the protocol), times the seconds per pass measured here at
the run's image size. `--dry-run` prints this and stops; the run's progress bar uses it to say the time
left from the first seconds on, instead of after the first image."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the annotations only: this module runs without torch until a plan is made
    import torch


# Side of the probe image a method's passes are counted on: every method of the suite makes the same
# number of passes at any size (CCE's steps, RISE's masks, Score-CAM's channels), and 64 pixels keeps
# the probe to about a second on a CPU.
PROBE_SIDE = 64



@dataclass(frozen=True)
class Passes:
    """Model inputs per image: forward only, forward with a graph to the input, backward."""

    forward: float = 0
    gradient: float = 0
    backward: float = 0

    def __add__(self, other: Passes) -> Passes:
        return Passes(self.forward + other.forward, self.gradient + other.gradient, self.backward + other.backward)

    def __mul__(self, factor: float) -> Passes:
        return Passes(self.forward * factor, self.gradient * factor, self.backward * factor)

    @property
    def total(self) -> float:
        return self.forward + self.gradient + self.backward


@dataclass(frozen=True)
class Rates:
    """Seconds per model input measured here: forward only, forward with a graph, backward."""

    forward: float
    gradient: float
    backward: float

    def seconds(self, passes: Passes) -> float:
        return passes.forward * self.forward + passes.gradient * self.gradient + passes.backward * self.backward

    def __mul__(self, factor: float) -> Rates:
        return Rates(self.forward * factor, self.gradient * factor, self.backward * factor)


def passes_of(model, work: Callable[[], object]) -> Passes:
    """The passes `work()` makes through `model` (its PassCount before and after)."""
    before = dict(model.passes.as_dict())
    work()
    after = model.passes.as_dict()
    return Passes(*(after[k] - before[k] for k in ("forward", "with_gradient", "backward")))


def probe_batch(model, images: int = 1) -> torch.Tensor:
    """`images` seeded noise images of PROBE_SIDE pixels, normalised as the model takes them."""
    import torch

    from ..tensors import device_of

    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(images, 3, PROBE_SIDE, PROBE_SIDE, generator=generator)
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in model.channel_stats())
    return ((pixels - mean) / std).to(device_of(model))


def measure_rates(model, side: int, batch_size: int) -> Rates:
    """Seconds per input of one batch at the run's size: forward, forward with a graph, backward (after a
    warm-up forward, which pays the one-off costs)."""
    import torch

    from ..tensors import device_of

    device = device_of(model)
    n = max(1, min(int(batch_size), 8))
    images = torch.zeros(n, 3, side, side, device=device)

    def timed(action) -> tuple[float, object]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = action()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, result

    passes_before = dict(model.passes.as_dict())
    with torch.no_grad():
        model(images)
        forward, _ = timed(lambda: model(images))
    graph_input = images.clone().requires_grad_(True)
    gradient, logits = timed(lambda: model(graph_input))
    backward, _ = timed(lambda: logits.float().sum().backward())  # type: ignore[attr-defined]
    model.passes.restore(passes_before)  # the probe is not the run's work
    return Rates(forward / n, gradient / n, backward / n)


@dataclass(frozen=True)
class Plan:
    """The work of a run: its images, what each costs, and the time it will take here."""

    images: int
    parts: dict[str, Passes]  # per stage (a method's maps, the scoring) the passes per image
    rates: Rates
    device_name: str

    @property
    def per_image(self) -> Passes:
        return sum(self.parts.values(), Passes())

    @property
    def seconds_per_image(self) -> float:
        return self.rates.seconds(self.per_image)

    def describe(self, unit: str = "image") -> str:
        from ..tables import format_duration

        unit = {"img": "image"}.get(unit, unit)
        parts = ", ".join(f"{name} {passes.total:,.0f}" for name, passes in self.parts.items())
        total = self.per_image.total * self.images
        return (
            f"plan: {self.images} {unit}{'s' if self.images != 1 else ''} x {self.per_image.total:,.0f} model passes "
            f"per {unit} ({parts}) = "
            f"{total:,.0f} passes; at the rates measured here on {self.device_name} ({1000 * self.rates.forward:.1f} "
            f"ms per forward, {1000 * (self.rates.gradient + self.rates.backward):.1f} ms per forward + backward "
            f"input) about {format_duration(self.seconds_per_image * self.images)} "
            f"({self.seconds_per_image:.1f} s per {unit})"
        )



    def measured(self, seconds: float, items: int, left: int, unit: str = "image") -> tuple[Plan, str]:
        """The plan at the rate of the run's own first batch (`items` in `seconds`): the measured rates before
        the run come from a few passes of a probe, which a batch of the run's own work can differ from (a small
        network on a busy CPU: 1.7 times). The line says both; the plan returned moves the bar from now on."""
        from dataclasses import replace

        from ..tables import format_duration

        unit = {"img": "image"}.get(unit, unit)
        per_item = seconds / max(items, 1)
        factor = per_item / self.seconds_per_image if self.seconds_per_image > 0 else 1.0
        line = (f"plan: the first batch took {format_duration(seconds)} ({per_item:.1f} s per {unit}, planned "
                f"{self.seconds_per_image:.1f} s): about {format_duration(per_item * left)} for the {left} "
                f"{unit}{'s' if left != 1 else ''} left")
        return replace(self, images=left, rates=self.rates * factor), line


# A plan longer than this on the machine gets a line offering a first look (experiment=smoke) beside it.
LONG_PLAN_SECONDS = 15 * 60


def first_look_hint(plan: Plan, command: str, experiment: str | None) -> str:
    """For a long plan (and not already a smoke run): the command that gives a first look in about a minute: the
    smoke preset, or, where an experiment is chosen (there can be one), its own settings on the images a minute
    holds."""
    if plan.seconds_per_image * plan.images < LONG_PLAN_SECONDS or experiment == "smoke":
        return ""
    if experiment is not None:
        few = max(1, int(60 // max(plan.seconds_per_image, 1e-9)))
        return (f"plan: that is long on this machine; for a first look in about a minute with "
                f"experiment={experiment}'s own settings, on {few} image(s): cce-bench {command} "
                f"experiment={experiment} ... data.n_images={few}")
    return (f"plan: that is long on this machine; for a first look in about a minute (one image, few steps, the same "
            f"code paths) add experiment=smoke: cce-bench {command} ... experiment=smoke")


def make_plan(model, images: int, side: int, batch_size: int, parts_of_probe: Callable[[torch.Tensor], dict],
              device_name: str) -> Plan:
    """Counts each stage's passes on a probe image (`parts_of_probe(probe)` -> stage -> Passes), measures the
    rates, and leaves the run as it was: the random number generators and the model's pass counts."""
    import torch

    from ..tensors import device_of

    device = device_of(model)
    counts = dict(model.passes.as_dict())
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        parts = parts_of_probe(probe_batch(model))
    rates = measure_rates(model, side, batch_size)
    model.passes.restore(counts)
    return Plan(images, parts, rates, device_name)


def probe_targets(model, probe: torch.Tensor) -> torch.Tensor:
    import torch

    with torch.no_grad():
        return model(probe).argmax(1)


def method_parts(model, explainers: dict, probe: torch.Tensor, maps_each: Callable[[object], int] = lambda _: 1
                 ) -> dict[str, Passes]:
    """Per method (by label) the passes of its `maps_each(explainer)` maps per image, counted on the probe."""
    targets = probe_targets(model, probe)

    def maps_of(explainer) -> Callable[[], object]:
        return lambda: explainer.raw_attribute(probe, targets)

    return {explainer.label: passes_of(model, maps_of(explainer)) * maps_each(explainer)
            for explainer in explainers.values()}


def scoring_part(per_image: Passes | None = None) -> dict[str, Passes]:
    """The scoring passes per image: the explained class (one forward) and the metrics' passes (`per_image`:
    each metric's per map, times the maps scored per image)."""
    return {"scoring": (per_image or Passes()) + Passes(forward=1)}

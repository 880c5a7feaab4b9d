"""What a run will cost, said before its first image: the model passes per image (each method's counted on
a small probe image, the scoring passes from the protocol), times the seconds per pass measured here at
the run's image size. `--dry-run` prints this and stops; the run's progress bar uses it to say the time
left from the first seconds on, instead of after the first image.

A count is made once per machine and setting (`PassCounts`): a later run of the same method, knobs and model
reads it instead of running the probe again, and a library metric's passes, which no probe counts cheaply,
are counted in a run's first batch and planned from then on."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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

    @classmethod
    def between(cls, before: dict, after: dict) -> Passes:
        """The passes made from one PassCount.as_dict() to a later one."""
        return cls(*(after[k] - before[k] for k in ("forward", "with_gradient", "backward")))


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
    return Passes.between(before, after)


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
    counts: PassCounts | None = field(default=None, compare=False, repr=False)  # where counts are kept

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



    def measured(self, seconds: float, items: int, left: int, unit: str = "image",
                 counted: dict[str, tuple[dict, Passes]] | None = None) -> tuple[Plan, str]:
        """The plan at the rate of the run's own first batch (`items` in `seconds`): the measured rates before
        the run come from a few passes of a probe, which a batch of the run's own work can differ from (a small
        network on a busy CPU: 1.7 times). `counted`: stage -> (what, passes per image) counted in the batch
        that the plan had not counted (a library metric's), added to the plan from now on and kept for later
        runs. The line says all of it; the plan returned moves the bar from now on."""
        from dataclasses import replace

        from ..tables import format_duration

        unit = {"img": "image"}.get(unit, unit)
        per_item = seconds / max(items, 1)
        new = {stage: passes for stage, (_, passes) in (counted or {}).items() if stage not in self.parts}
        for stage, (what, passes) in (counted or {}).items():
            if stage in new and self.counts is not None:
                self.counts.put(what, passes)
        now = replace(self, images=left, parts={**self.parts, **new})
        factor = per_item / now.seconds_per_image if now.seconds_per_image > 0 else 1.0
        found = (f"; counted in it: {', '.join(f'{stage} {passes.total:,.0f}' for stage, passes in new.items())} "
                 f"passes per {unit}, planned from now on" if new else "")
        line = (f"plan: the first batch took {format_duration(seconds)} ({per_item:.1f} s per {unit}, planned "
                f"{self.seconds_per_image:.1f} s{found}): about {format_duration(per_item * left)} for the {left} "
                f"{unit}{'s' if left != 1 else ''} left")
        return replace(now, rates=self.rates * factor), line


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


class PassCounts:
    """Passes per image counted before on this machine, in `cache_dir()/pass_counts.json`, each under a key of
    everything the count depends on: the run's `context` (the suite's code and the libraries' versions, the
    user's own code by its file's hash, the model's name and architecture, the device type) and the stage's own
    description (`what`: a method and its knobs, a metric and its knobs). `of` counts a stage on the probe
    image the first time and reads it every later time; `put` keeps a count made in a run (a library metric's,
    in its first batch). A cache that cannot be read or written is counted again: it only saves time."""

    def __init__(self, model, context: dict):
        from ..resources import cache_dir

        self.model = model
        self.context = context
        self.path = cache_dir() / "pass_counts.json"
        self.entries = self.read()
        self.probed: list[str] = []  # the stages counted on the probe by this plan (the rest were known)
        self._probe: tuple | None = None

    def read(self) -> dict:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in entries.items() if isinstance(v, list) and len(v) == 3
                and all(isinstance(x, (int, float)) for x in v)} if isinstance(entries, dict) else {}

    def key(self, what: dict) -> str:
        text = json.dumps({**self.context, "stage": what}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def known(self, what: dict) -> Passes | None:
        entry = self.entries.get(self.key(what))
        return Passes(*entry) if entry is not None else None

    def of(self, label: str, what: dict, work: Callable[[torch.Tensor, torch.Tensor], object]) -> Passes:
        """The passes of `work(probe, targets)`: read where counted before, else counted now and kept."""
        known = self.known(what)
        if known is not None:
            return known
        probe, targets = self.probe()
        passes = passes_of(self.model, lambda: work(probe, targets))
        self.probed.append(label)
        self.put(what, passes)
        return passes

    def probe(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe image and the model's class for it, made the first time a stage is counted."""
        if self._probe is None:
            import torch

            probe = probe_batch(self.model)
            with torch.no_grad():
                self._probe = (probe, self.model(probe).argmax(1))
        return self._probe

    def put(self, what: dict, passes: Passes) -> None:
        self.entries[self.key(what)] = [passes.forward, passes.gradient, passes.backward]
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(self.entries))
            os.replace(partial, self.path)  # whole or not at all: two runs at once lose a count, never the file
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)


def pass_count_context(model, user_code: list[dict]) -> dict:
    """What every count of a run depends on beside the stage: the code (the suite's own files by hash, the
    libraries' versions, the user's own files by hash), the model (its name and architecture) and the device type."""
    from ..tensors import device_of
    from .provenance import library_versions

    network = getattr(model, "net", model)
    return {"versions": library_versions(), "suite_code": suite_code_hash(),
            "user_code": [code.get("sha256") for code in user_code],
            "model": getattr(model, "name", type(model).__name__),
            "architecture": hashlib.sha256(repr(network).encode()).hexdigest()[:16],
            "device": device_of(model).type, "probe_side": PROBE_SIDE}


@functools.cache
def suite_code_hash() -> str:
    """A hash of the suite's own source files: a count made by other code (a checkout changed, without a new
    version number) is not read back."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def make_plan(model, images: int, side: int, batch_size: int, parts_of: Callable[[PassCounts], dict],
              device_name: str, counts: PassCounts) -> Plan:
    """Each stage's passes per image (`parts_of(counts)` -> stage -> Passes, counted on the probe where not
    counted before), the rates measured here, leaving the run as it was: the random number generators and
    the model's pass counts."""
    import torch

    from ..tensors import device_of

    device = device_of(model)
    before = dict(model.passes.as_dict())
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        parts = parts_of(counts)
    rates = measure_rates(model, side, batch_size)
    model.passes.restore(before)
    return Plan(images, parts, rates, device_name, counts)


def method_stage(explainer) -> dict:
    """What a method's count depends on: its name and knobs."""
    return {"method": explainer.name, "knobs": explainer.knobs()}


def method_parts(counts: PassCounts, explainers: dict, maps_each: Callable[[object], int] = lambda _: 1
                 ) -> dict[str, Passes]:
    """Per method (by label) the passes of its `maps_each(explainer)` maps per image."""
    def maps_of(explainer) -> Callable[[torch.Tensor, torch.Tensor], object]:
        return lambda probe, targets: explainer.raw_attribute(probe, targets)

    return {explainer.label: counts.of(explainer.label, method_stage(explainer), maps_of(explainer))
            * maps_each(explainer) for explainer in explainers.values()}


def scoring_part(per_image: Passes | None = None) -> dict[str, Passes]:
    """The scoring passes per image: the explained class (one forward) and the metrics' passes (`per_image`:
    each metric's per map, times the maps scored per image)."""
    return {"scoring": (per_image or Passes()) + Passes(forward=1)}

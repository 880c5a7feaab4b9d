"""Scenes whose answer is known: an object made of part slots, each filled with one of a few part types
(shape and colour), jittered in position, scale and rotation on a textured background, with distractor shapes
that carry no class information. A class is a combination of part types; the classes are every combination
of the first `types` types of each of the first `parts` slots, so that every class has, for each slot, a
neighbour that differs from it in that slot alone (the model must look at every part to tell them apart).

A scene is drawn from (seed, split, index) alone, with numpy's PCG64 and integer pixel arithmetic, and drawn
with PIL without antialiasing, so the same seed gives the same bytes. Every scene can be drawn again with any
set of parts removed (what lies behind showing: the body or the background) or any part swapped to another
type; a part's mask is exactly the pixels that change when it is removed (parts never overlap each other, and
no part colour occurs in the body or the background).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

# Bumped whenever a scene's bytes change for the same seed: cached models are keyed by it.
GENERATOR_VERSION = 1

# The slots, clockwise from the top of the object, at 72 degrees from each other around the body.
SLOTS = ("head", "right_wing", "right_foot", "left_foot", "left_wing")
SHAPES = ("disc", "square", "triangle")
# Each slot's types: (shape, colour); saturated colours, each slot its own, none in the muted body or
# background. Type t of every slot has shape SHAPES[t].
PALETTE = (
    ((230, 30, 30), (30, 90, 230), (250, 210, 0)),
    ((0, 200, 80), (240, 0, 220), (0, 230, 230)),
    ((255, 120, 0), (120, 0, 255), (255, 255, 255)),
    ((0, 0, 0), (255, 0, 110), (0, 140, 255)),
    ((160, 255, 0), (255, 60, 160), (40, 40, 160)),
)
BODY_COLOUR = (128, 116, 100)
SPLITS = {"train": 0, "test": 1, "check": 2}  # check: the held-out scenes of the model's reliance check
MAX_PARTS, MAX_TYPES = len(SLOTS), len(SHAPES)

# Geometry in units of the object's scale s (pixels): the body an ellipse of radii (1.0, 0.75) s, each part a
# shape of radius 0.55 s whose centre lies 1.45 s from the body's (neighbouring parts 1.7 s apart: no overlap).
BODY_RADII = (1.0, 0.75)
PART_RADIUS, PART_DISTANCE = 0.55, 1.45
OBJECT_RADIUS = PART_DISTANCE + PART_RADIUS * 1.25  # with the parts' jitter


@dataclass(frozen=True)
class Part:
    slot: int
    kind: int          # the part type: SHAPES[kind] in PALETTE[slot][kind]
    x: float           # centre, pixels
    y: float
    radius: float
    angle: float       # radians


@dataclass(frozen=True)
class Scene:
    """One scene's draw: its class, its parts (one per used slot) and distractors, and its background's seed."""

    split: str
    index: int
    label: int
    code: tuple[int, ...]                # the part type of each used slot
    centre: tuple[float, float]
    scale: float
    angle: float
    parts: tuple[Part, ...]
    distractors: tuple[Part, ...]
    background_seed: int

    @property
    def image_id(self) -> str:
        return f"{self.split}_{self.index:06d}"


@dataclass
class Rendered:
    """A scene drawn: the image [H, W, 3] uint8, a mask per slot of its parts that are shown, one per
    distractor shown (by its number), and the body's."""

    image: np.ndarray
    part_masks: dict[int, np.ndarray] = field(default_factory=dict)
    distractor_masks: dict[int, np.ndarray] = field(default_factory=dict)
    body_mask: np.ndarray | None = None


@dataclass(frozen=True)
class PartsWorld:
    """The generator's settings: `parts` slots used (of 5), `types` types per slot in the classes (of 3), the
    image side in pixels, and the seed. Its classes are every combination (types ** parts of them)."""

    seed: int = 0
    parts: int = 5
    types: int = 2
    side: int = 96
    distractors: int = 3

    def __post_init__(self):
        if not 2 <= self.parts <= MAX_PARTS or not 2 <= self.types <= MAX_TYPES:
            raise ValueError(f"parts must be in 2..{MAX_PARTS} and types in 2..{MAX_TYPES}")

    @property
    def classes(self) -> list[tuple[int, ...]]:
        """Each class's part type per slot, in a fixed order (class index = position)."""
        return list(itertools.product(range(self.types), repeat=self.parts))

    def class_name(self, label: int) -> str:
        """A class as its parts read: `disc-disc-square-disc-triangle` names the type in each slot."""
        return "-".join(SHAPES[t] for t in self.classes[label])

    def neighbour(self, label: int, slot: int) -> int:
        """The class that differs from `label` in `slot` alone (the next type of that slot, cyclically)."""
        code = list(self.classes[label])
        code[slot] = (code[slot] + 1) % self.types
        return self.classes.index(tuple(code))

    def scene(self, split: str, index: int) -> Scene:
        """Scene `index` of `split` (train or test: disjoint draws); classes in turn, so any first n are balanced."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, SPLITS[split], index])))
        label = index % len(self.classes)
        code = self.classes[label]
        side = self.side
        scale = side * 0.12 * (1 + rng.uniform(-0.12, 0.12))
        margin = OBJECT_RADIUS * scale + 1
        centre = (float(rng.uniform(margin, side - margin)), float(rng.uniform(margin, side - margin)))
        angle = float(rng.uniform(-math.pi / 6, math.pi / 6))
        parts = []
        for slot, kind in enumerate(code):
            direction = angle - math.pi / 2 + slot * 2 * math.pi / MAX_PARTS
            distance = scale * (PART_DISTANCE + rng.uniform(-0.08, 0.08))
            parts.append(Part(slot, kind, centre[0] + distance * math.cos(direction),
                              centre[1] + distance * math.sin(direction),
                              scale * PART_RADIUS * (1 + rng.uniform(-0.1, 0.1)),
                              angle + float(rng.uniform(-math.pi / 12, math.pi / 12))))
        distractors = self._distractors(rng, centre, scale)
        return Scene(split, index, label, code, centre, float(scale), angle, tuple(parts), distractors,
                     int(rng.integers(2**31)))

    def _distractors(self, rng: np.random.Generator, centre, scale: float) -> tuple[Part, ...]:
        """Shapes of any slot's type, away from the object and from each other (placed by rejection, so a
        crowded scene may have fewer)."""
        placed: list[Part] = []
        for _ in range(self.distractors * 20):
            if len(placed) == self.distractors:
                break
            radius = scale * float(rng.uniform(0.4, 0.55))
            x, y = (float(v) for v in rng.uniform(radius + 1, self.side - radius - 1, size=2))
            slot, kind = int(rng.integers(MAX_PARTS)), int(rng.integers(MAX_TYPES))
            angle = float(rng.uniform(0, 2 * math.pi))
            clear_of_object = math.dist((x, y), centre) > OBJECT_RADIUS * scale + radius + 2
            if clear_of_object and all(math.dist((x, y), (d.x, d.y)) > d.radius + radius + 2 for d in placed):
                placed.append(Part(slot, kind, x, y, radius, angle))
        return tuple(placed)

    def render(self, scene: Scene, removed=(), swapped: dict | None = None, removed_distractors=()) -> Rendered:
        """The scene drawn, without the parts of the slots in `removed` and the distractors numbered in
        `removed_distractors`, with the slots in `swapped` (slot -> type) drawn as that type."""
        swapped = swapped or {}
        image = Image.fromarray(background(self.side, scene.background_seed))
        draw = ImageDraw.Draw(image)
        body = body_polygon(scene)
        draw.polygon(body, fill=BODY_COLOUR)
        rendered = Rendered(np.empty(0), body_mask=polygon_mask(self.side, body))
        for number, part in enumerate(scene.distractors):
            if number in removed_distractors:
                continue
            outline = part_polygon(part)
            draw.polygon(outline, fill=PALETTE[part.slot][part.kind])
            rendered.distractor_masks[number] = polygon_mask(self.side, outline)
        for part in scene.parts:
            if part.slot in removed:
                continue
            kind = int(swapped.get(part.slot, part.kind))
            outline = part_polygon(Part(part.slot, kind, part.x, part.y, part.radius, part.angle))
            draw.polygon(outline, fill=PALETTE[part.slot][kind])
            rendered.part_masks[part.slot] = polygon_mask(self.side, outline)
        rendered.image = np.asarray(image, dtype=np.uint8).copy()
        return rendered


def background(side: int, seed: int) -> np.ndarray:
    """A muted texture: a coarse grid of earth colours, bilinearly enlarged, with fine noise (integers only)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    base = rng.integers(70, 170, size=(6, 6, 1))
    tint = rng.integers(-18, 19, size=(6, 6, 3))
    coarse = np.clip(base + tint, 50, 190).astype(np.uint8)
    enlarged = np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BILINEAR), dtype=np.int16)
    noise = rng.integers(-10, 11, size=(side, side, 1))
    return np.clip(enlarged + noise, 40, 200).astype(np.uint8)


def part_polygon(part: Part) -> list[tuple[float, float]]:
    """The part's outline: a 24-gon (disc), a square or a triangle of circumradius `radius`, rotated by `angle`."""
    corners = {"disc": 24, "square": 4, "triangle": 3}[SHAPES[part.kind]]
    start = part.angle + (math.pi / 4 if corners == 4 else -math.pi / 2)
    return [(part.x + part.radius * math.cos(start + k * 2 * math.pi / corners),
             part.y + part.radius * math.sin(start + k * 2 * math.pi / corners)) for k in range(corners)]


def body_polygon(scene: Scene) -> list[tuple[float, float]]:
    rx, ry = (r * scene.scale for r in BODY_RADII)
    cos, sin = math.cos(scene.angle), math.sin(scene.angle)
    points = []
    for k in range(32):
        t = k * 2 * math.pi / 32
        x, y = rx * math.cos(t), ry * math.sin(t)
        points.append((scene.centre[0] + x * cos - y * sin, scene.centre[1] + x * sin + y * cos))
    return points


def polygon_mask(side: int, outline: list[tuple[float, float]]) -> np.ndarray:
    mask = Image.new("1", (side, side), 0)
    ImageDraw.Draw(mask).polygon(outline, fill=1)
    return np.asarray(mask, dtype=bool).copy()

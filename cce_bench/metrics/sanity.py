"""The model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

A map that explains the model must change when the model's learned weights are destroyed. The network
is cut into blocks (below); the test re-initialises them from the logits down, cumulatively (cascading)
or one at a time (independent), recomputes the maps for the same images and classes, and measures how
similar each map stays to the original: Spearman rank correlation of the method's own maps, with and
without absolute values, and SSIM of the post-processed maps in [0, 1] (scikit-image's).

Blocks: every module that owns parameters, grouped by its name up to the first numbered part
(`layer4.2.conv1` -> `layer4.2`, `features.34` -> `features.34`, `blocks.6.0.conv_pw` -> `blocks.6`,
`fc` -> `fc`); a block made only of normalisation layers (ResNet's `bn1`) joins the block before it.
Re-initialising is each module's own `reset_parameters()` (PyTorch's default initialisation; a
normalisation layer becomes the identity), drawn on the CPU from a generator seeded by (seed, block), so
the same block gets the same random weights in every mode, batch, process and device.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata
from torch import nn

from ..choices import SANITY_MODES
from .base import CHECK, REEXPLAINS, MapsToScore, Metric, Panel, Ranking, Scored, register_metric

NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
MODES = tuple(SANITY_MODES)
MEASURES = {"spearman_abs": "Spearman (abs)", "spearman": "Spearman", "ssim": "SSIM"}  # record key -> title


@dataclass(frozen=True)
class Block:
    name: str
    modules: tuple[nn.Module, ...]


def network(model: nn.Module) -> nn.Module:
    """The network inside a suite Classifier (its normalisation buffers are not weights), else the model."""
    return getattr(model, "net", model)


def randomisation_blocks(model: nn.Module) -> list[Block]:
    """The blocks of the network in forward (registration) order; the test walks them from the end."""
    groups: dict[str, list[nn.Module]] = {}
    for name, module in network(model).named_modules():
        if not name or not any(True for _ in module.parameters(recurse=False)):
            continue
        parts = name.split(".")
        numbered = next((i for i, p in enumerate(parts) if re.fullmatch(r"\d+", p)), len(parts) - 1)
        groups.setdefault(".".join(parts[: numbered + 1]), []).append(module)
    blocks: list[Block] = []
    for name, modules in groups.items():
        if blocks and all(isinstance(m, NORM_LAYERS) for m in modules):
            blocks[-1] = Block(f"{blocks[-1].name}+{name}", blocks[-1].modules + tuple(modules))
        else:
            blocks.append(Block(name, tuple(modules)))
    return blocks


def top_down(blocks: list[Block], layers: int | None = None) -> list[Block]:
    """The blocks from the logits down, the first `layers` of them (all with None)."""
    ordered = blocks[::-1]
    return ordered if layers is None else ordered[: int(layers)]


def _random_state(block_index: int, block: Block, seed: int) -> list[dict]:
    generator_seed = int(seed) * 100_003 + int(block_index)
    states = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        for module in block.modules:
            fresh = _cpu_copy(module)
            reset = getattr(fresh, "reset_parameters", None)
            if callable(reset):
                reset()
            else:  # a custom layer without its own initialiser
                for p in fresh.parameters(recurse=False):
                    nn.init.normal_(p, std=0.01)
            states.append({k: v for k, v in fresh.state_dict().items() if "." not in k})
    return states


def _cpu_copy(module: nn.Module) -> nn.Module:
    import copy

    children = dict(module.named_children())
    for name in children:  # only the module's own parameters are re-initialised; children are blocks of their own
        module._modules[name] = None
    try:
        fresh = copy.deepcopy(module).cpu()
    finally:
        module._modules.update(children)
    return fresh


def _own_state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "." not in k}


def _load_own(module: nn.Module, state: dict) -> None:
    with torch.no_grad():
        for key, value in state.items():
            getattr(module, key).copy_(value)


class Randomiser:
    """Re-initialises blocks of a model in place and puts the trained weights back afterwards."""

    def __init__(self, model: nn.Module, seed: int = 0):
        self.model = model
        self.seed = int(seed)
        self.blocks = randomisation_blocks(model)
        self.index = {b.name: i for i, b in enumerate(self.blocks)}
        self._random: dict[str, list[dict]] = {}  # block -> its modules' random weights (CPU), drawn once

    def random_state(self, block: Block) -> list[dict]:
        if block.name not in self._random:
            self._random[block.name] = _random_state(self.index[block.name], block, self.seed)
        return self._random[block.name]

    @contextmanager
    def randomised(self, blocks: list[Block]) -> Iterator[nn.Module]:
        """The model with `blocks` re-initialised, inside the `with`; trained again after it, even on error."""
        saved = [[_own_state(m) for m in b.modules] for b in blocks]
        try:
            for block in blocks:
                for module, state in zip(block.modules, self.random_state(block)):
                    _load_own(module, state)
            yield self.model
        finally:
            for block, states in zip(blocks, saved):
                for module, state in zip(block.modules, states):
                    _load_own(module, state)

    def walk(self, mode: str, layers: int | None = None) -> Iterator[str]:
        """Steps from the logits down, yielding the name of the block just randomised, with the model in
        that step's state: cascading = the top k blocks for k = 1, 2, ...; independent = each block alone.
        The trained weights are back when the walk ends (or is left)."""
        ordered = top_down(self.blocks, layers)
        if mode == "cascading":
            with ExitStack() as stack:
                for block in ordered:
                    stack.enter_context(self.randomised([block]))
                    yield block.name
        elif mode == "independent":
            for block in ordered:
                with self.randomised([block]):
                    yield block.name
        else:
            raise ValueError(f"unknown randomisation mode {mode!r}")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties get their mean rank). A constant map carries no
    ranking: against a map that has one the correlation is 0, two constant maps count as equal (1)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    flat_a, flat_b = np.ptp(a) == 0, np.ptp(b) == 0
    if flat_a or flat_b:
        return 1.0 if flat_a and flat_b else 0.0
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two maps in [0, 1] (scikit-image, 7 x 7 window, data range 1)."""
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), data_range=1.0)
    )


def map_similarities(raw: torch.Tensor, maps: torch.Tensor, raw_random: torch.Tensor,
                     maps_random: torch.Tensor) -> list[dict]:
    """Per image: `spearman` (raw maps as the method makes them), `spearman_abs` (their magnitudes) and
    `ssim` (post-processed maps in [0, 1]) between the original and the randomised model's maps."""
    a, a_random = raw.detach().cpu().double().numpy(), raw_random.detach().cpu().double().numpy()
    b, b_random = maps.detach().cpu().double().numpy(), maps_random.detach().cpu().double().numpy()
    return [{"spearman": spearman(a[i], a_random[i]),
             "spearman_abs": spearman(np.abs(a[i]), np.abs(a_random[i])),
             "ssim": ssim(b[i], b_random[i])} for i in range(len(a))]


@register_metric
class Sanity(Metric):
    """The model-parameter randomisation test in one number per map: the Spearman (abs) of the map to the
    same method's map with every block of the network re-initialised (knob: `metric_knobs.sanity.fail_above`)."""

    label = "sanity"
    family = "randomisation"
    what = "model-parameter randomisation (Adebayo et al.): Spearman (abs) to the map of the randomised model"
    higher_is_better = False
    needs = frozenset({REEXPLAINS})
    extra_maps = 1
    section = CHECK

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self._randomisers: dict[int, Randomiser] = {}  # one per network explained, each made once per run

    def randomiser(self, network) -> Randomiser:
        if id(network) not in self._randomisers:
            self._randomisers[id(network)] = Randomiser(network, int(self.cfg.seed))
        return self._randomisers[id(network)]

    def score(self, maps: MapsToScore) -> Scored:
        randomiser = self.randomiser(maps.explained_network)
        with randomiser.randomised(randomiser.blocks):
            similarity = self.similarities(maps)
        return Scored({"sanity_spearman_abs": [s["spearman_abs"] for s in similarity]})

    def steps(self, maps: MapsToScore) -> Iterator[tuple[str, int, str, dict[str, list]]]:
        """The test step by step, as the `sanity` command reports it: per mode of the knob `modes` and step of
        its walk over the top `layers` blocks, (mode, step, block just randomised, {measure: per image})."""
        randomiser = self.randomiser(maps.explained_network)
        for mode in self.modes:
            for step, block in enumerate(randomiser.walk(mode, self.layers), start=1):
                similarity = self.similarities(maps)
                yield mode, step, block, {key: [s[key] for s in similarity] for key in MEASURES}

    def similarities(self, maps: MapsToScore) -> list[dict]:
        """Per image, the maps of the model as it is now (randomised) against the trained model's maps."""
        from ..explainers import postprocess

        raw_random = maps.explainer.raw_attribute(maps.images, maps.targets)
        raw = maps.raw if maps.raw is not None else maps.maps
        return map_similarities(raw, maps.maps, raw_random, postprocess(raw_random, maps.size))

    def columns(self, records: pd.DataFrame, names: list[str]) -> dict[str, list]:
        rho: pd.Series | dict = (records.groupby("method")["sanity_spearman_abs"].mean()
                                 if "sanity_spearman_abs" in records else {})
        fail_above = float(self.fail_above)
        return {"sanity ρ": [round(float(rho[n]), 3) if n in rho else None for n in names],
                "sanity": [None if n not in rho else ("FAILS" if rho[n] > fail_above else "passes") for n in names]}

    def ranking(self) -> Ranking:
        return Ranking("sanity ρ", None, 1, higher_is_better=False)

    def rank_values(self, records: pd.DataFrame) -> pd.Series | None:
        return records["sanity_spearman_abs"] if "sanity_spearman_abs" in records else None

    def panels(self) -> list[Panel]:
        return [Panel("sanity: Spearman to the randomised model's map ↓", "sanity ρ", "tab:purple",
                      threshold_key="metric_knobs.sanity.fail_above")]

    def caption(self) -> str:
        return ("sanity ρ = Spearman (abs) of each map to the map of the same model with every block "
                f"re-initialised (FAILS above {self.fail_above})")

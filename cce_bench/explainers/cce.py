"""CCE: counterfactual-based contrastive saliency (ICCV 2023), as docs/cce_method.md describes.

For each image (class p) and each of its M contrast classes q, an additive perturbation delta in pixel
space turns the prediction into q (the counterfactual). Two maps per pair are read off it (the `readoff`
knob; by default the change of the target layer's output weighted by Grad-CAM's weights of p at x and of
q at x'): S_sup (where the change took evidence for p away) and S_pro (where it made evidence for q). All
B * M pairs of a chunk are one tensor: the per-pair losses are summed, and since Adam is elementwise
and the model is frozen, every pair is optimised exactly as it would be alone.

Only alpha, M, gamma and epsilon are documented by the paper; every other choice here is a
reconstruction and a knob (docs/cce.md lists them).
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torchvision.transforms.v2.functional import gaussian_blur

from ..errors import UserError
from ..method_knobs.cce import LAYER_READOFFS
from ..models import IMAGENET_MEAN, IMAGENET_STD, PixelInput, batched_logits, facts_of
from ..progress import counted
from ..tensors import channel_list, to_pixels
from .base import Explainer, MethodUnavailable, SettingMaps, other_top_classes, postprocess, register
from .layers import capture_outputs, resolve_layer
from .targets import Explanation


@dataclass
class ContrastiveMaps:
    """What CCE reads off the counterfactuals of a batch of B images with M contrast classes each."""

    sup: torch.Tensor          # [B, H, W] M_sup: mean over the M counterfactuals, each max-normalised
    pro: torch.Tensor          # [B, H, W] M_pro
    contrast: torch.Tensor     # [B, M] the contrast classes q
    valid: torch.Tensor        # [B, M] bool: the kept perturbation turns the prediction into q
    predicted: torch.Tensor    # [B, M] the model's class on the kept counterfactual
    counterfactual: torch.Tensor  # [B, M, 3, H, W] the counterfactual images in pixel space [0, 1]

    def unified(self, alpha: float) -> torch.Tensor:
        """M_p = alpha * M_sup + (1 - alpha) * M_pro, divided by its maximum."""
        return normalise_max(alpha * self.sup + (1 - alpha) * self.pro)


def normalise_max(maps: torch.Tensor) -> torch.Tensor:
    peak = maps.amax(dim=(-2, -1), keepdim=True)
    return torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


@register
class CCE(Explainer):
    """CCE (docs/cce_method.md): for each image and each of its M contrast classes, a bounded perturbation
    toward that class; the map mixes the perturbations' support and their averaged gradients.
    DOC: documented by the paper; REC: reconstructed (a knob, its default chosen by measurement).
    """

    label = "CCE"
    cost = "optimisation"
    recorded_knobs = ("alpha", "M", "gamma", "epsilon")  # Tables 1-4's columns
    featured = True  # the method the suite reproduces: report's examples show its maps
    needs = ("target_layer",)  # the default read-off's layer (readoff=input needs none)

    memory_knobs = ("batch_size", "M")
    # Knobs whose null the method resolves when it is built, and the type they then have (for the checker).
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        classes = len(getattr(model, "categories", None) or []) or None
        if classes is not None and self.M > classes - 2:
            raise UserError(f"M={self.M} counterfactuals but the model has {classes} classes: at most {classes - 2} "
                            "contrast classes (all but the explained one and the top-1)")
        # the layer read-offs' module, looked up once (None for the input read-offs, which need no layer)
        self._layer_module = self._readoff_layer(model, self.target_layer) if self.readoff in LAYER_READOFFS else None
        # The model takes normalised images; CCE needs their pixel values (the model's own, else ImageNet's).
        if self.mean is None:
            self.mean = tuple(channel_list(getattr(model, "mean", IMAGENET_MEAN)))
        if self.std is None:
            self.std = tuple(channel_list(getattr(model, "std", IMAGENET_STD)))
        self.pixel_model = PixelInput(model, tuple(channel_list(self.mean)), tuple(channel_list(self.std)))

    def images_per_chunk(self) -> int:
        return max(1, self.batch_size // self.M)

    def _readoff_layer(self, model, target_layer):
        facts = facts_of(model)
        if target_layer is None and facts.target_layer is None and getattr(model, "facts", None) is not None:
            name = getattr(model, "name", None) or type(model).__name__
            why = f" ({facts.no_target_layer})" if facts.no_target_layer else ""
            message = (f"CCE's readoff={self.readoff} reads the maps off a layer, and model {name} has none{why}: pass "
                       "method_knobs.cce.readoff=input, or method_knobs.cce.target_layer=DOTTED.PATH (its last "
                       "convolutional block, e.g. layer4.2)")
            raise MethodUnavailable(message, "cannot run here") if facts.no_target_layer else UserError(message)
        return resolve_layer(model, target_layer, "method_knobs.cce.target_layer=DOTTED.PATH")

    def contrast_classes(self, logits, targets) -> torch.Tensor:
        """Q [B, M]: the M most likely classes other than P and the model's answer ("why P?")."""
        return other_top_classes(logits, targets, self.M)

    # -- the maps ----------------------------------------------------------------------------------
    def _attribute_batch(self, images, targets):
        maps = self.contrastive_maps(images, targets)
        for name, part in (("M_sup", maps.sup), ("M_pro", maps.pro)):
            self.last_parts.setdefault(name, []).append(part.float())
        return maps.unified(self.alpha)

    def _explain(self, images, classes, contrast) -> Explanation:
        """Every question in three named maps: the unified map (the answer), M_sup ("why P") and M_pro ("why not
        Q"), Q the given classes (one or several per image) or its own M; per image, what its first
        counterfactual turned out to be."""
        maps = self.contrastive_maps(images, classes, contrast=None if contrast is None else contrast.to(images.device))
        size = (images.shape[-2], images.shape[-1])
        categories = getattr(self.model, "categories", None)
        found = []
        for valid, made in zip(maps.valid, maps.predicted):
            name = categories[int(made[0])] if categories else str(int(made[0]))
            found.append(f"counterfactual -> {name} ({'valid' if valid[0] else 'not valid'}); "
                         f"valid {int(valid.sum())}/{len(valid)}")
        return Explanation(
            {"M_sup": postprocess(maps.sup, size), "M_pro": postprocess(maps.pro, size),
             "unified": postprocess(maps.unified(self.alpha), size)}, "unified",
            {"M_sup": "why {P}: M_sup", "M_pro": "why not {Q}: M_pro", "unified": f"unified, alpha={self.alpha}"},
            classes, maps.contrast, found,
            {"valid": maps.valid, "predicted": maps.predicted, "counterfactual": maps.counterfactual})

    def contrastive_maps(self, images: torch.Tensor, targets: torch.Tensor,
                         contrast: torch.Tensor | None = None) -> ContrastiveMaps:
        """M_sup and M_pro of each image; `contrast` [B, M] names the classes q (default: the M
        highest-scoring classes other than the target, i.e. the question "why P?")."""
        if contrast is None:
            contrast = self.contrast_classes(batched_logits(self.model, images, self.batch_size), targets)
        chunk = max(1, self.batch_size // contrast.shape[1])  # batch_size pairs per pass
        parts = [self._chunk_maps(images[s:s + chunk], targets[s:s + chunk], contrast[s:s + chunk])
                 for s in range(0, len(images), chunk)]
        return ContrastiveMaps(*[torch.cat(tensors) for tensors in zip(*parts)])

    def _chunk_maps(self, images, targets, contrast):
        b, m = contrast.shape
        pixels = to_pixels(images, self.mean, self.std).clamp(0, 1)
        x = pixels.repeat_interleave(m, dim=0)
        p = targets.repeat_interleave(m)
        q = contrast.flatten()
        delta, valid, predicted = self.counterfactuals(x, q)
        s_sup, s_pro = self.pair_maps(x, delta, p, q)
        h, w = images.shape[-2:]
        return (s_sup.view(b, m, h, w).mean(1), s_pro.view(b, m, h, w).mean(1), contrast,
                valid.view(b, m), predicted.view(b, m), (x + delta).view(b, m, *x.shape[1:]))

    # -- the counterfactuals -----------------------------------------------------------------------
    @property
    def step_size(self) -> float:
        if self.lr is not None:
            return self.lr
        bound = self.epsilon / 255
        # Madry et al.'s PGD step: the whole ball is reachable in steps / 2.5 steps.
        return 2.5 * bound / self.steps if self.step_rule == "signed" else bound / 5

    def _edge_weights(self, x):
        # Content-aware TV: crossing an edge of the clean image is cheap.
        dh = (x[..., :, 1:] - x[..., :, :-1]).pow(2).sum(1, keepdim=True)
        dv = (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum(1, keepdim=True)
        two_s2 = 2 * self.tv_sigma ** 2
        return torch.exp(-dh / two_s2), torch.exp(-dv / two_s2)

    def distance(self, delta, weights) -> torch.Tensor:
        """L_dist per pair: dist_scale * (mean |delta| + tv_weight * mean(w * |neighbour differences of delta|)).

        dist_scale = 255 measures it in 0-255 pixel units, those of epsilon: in [0, 1] units (dist_scale
        = 1) its gradient per value is gamma / (3 H W), ~1e-4 at gamma = 20, and gamma has no effect
        (docs/cce_method.md, calibration)."""
        w_h, w_v = weights
        tv_h = (w_h * (delta[..., :, 1:] - delta[..., :, :-1]).abs()).flatten(1)
        tv_v = (w_v * (delta[..., 1:, :] - delta[..., :-1, :]).abs()).flatten(1)
        tv = (tv_h.sum(1) + tv_v.sum(1)) / (tv_h.shape[1] + tv_v.shape[1])
        return self.dist_scale * (delta.abs().flatten(1).mean(1) + self.tv_weight * tv)

    def validity_loss(self, logits, q) -> torch.Tensor:
        """Per pair: relu(max_{j != q} z_j - z_q + kappa) (hinge), or -log softmax(z)_q (ce)."""
        if self.validity == "ce":
            return torch.nn.functional.cross_entropy(logits, q, reduction="none")
        z_q = logits.gather(1, q.view(-1, 1))[:, 0]
        others = logits.scatter(1, q.view(-1, 1), float("-inf")).amax(1)
        return torch.relu(others - z_q + self.kappa)

    def _variable(self, x):
        """The optimised tensor: delta itself, or its grid x grid cells (upsampled bilinearly)."""
        shape = x.shape if self.grid is None else (*x.shape[:2], self.grid, self.grid)
        return torch.zeros(shape, dtype=x.dtype, device=x.device, requires_grad=True)

    def _perturbation(self, variable, x):
        """delta of the variable, with x + delta in [0, 1]."""
        if self.grid is None:
            return variable  # projected onto the box after each step
        up = torch.nn.functional.interpolate(variable, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.clamp(x + up, 0, 1) - x

    def _project(self, variable, x, bound):
        with torch.no_grad():  # |delta| <= bound (a bilinear upsampling of cells in the bound stays in it)
            if self.grid is None:
                variable.copy_(torch.clamp(x + variable.clamp(-bound, bound), 0, 1) - x)
            else:
                variable.clamp_(-bound, bound)

    def counterfactuals(self, x: torch.Tensor, q: torch.Tensor):
        """Perturbations [P, 3, H, W] toward classes q; validity [P]; predicted class of the kept iterate [P].

        Keeps, per pair, the iterate that `keep` names: the valid one with the smallest L_dist, the first
        valid one, or the last one; a pair never valid keeps its last. Valid means that the prediction was
        changed into q: a pair whose clean image the model already assigns to q needs no change, and is
        never valid (its map is empty).
        """
        bound = self.epsilon / 255
        weights = self._edge_weights(x)
        variable = self._variable(x)
        # fused: one kernel for Adam's update on a GPU instead of a dozen.
        optimiser = (
            torch.optim.Adam([variable], lr=self.step_size, fused=x.is_cuda) if self.step_rule == "adam" else None
        )
        best = torch.zeros_like(x)
        best_dist = torch.full((x.shape[0],), float("inf"), device=x.device)
        found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        needs_change = None
        for t in counted(range(self.steps + 1), f"CCE: {x.shape[0]} counterfactuals"):
            last = t == self.steps  # the final iterate is only evaluated
            with torch.set_grad_enabled(not last):
                delta = self._perturbation(variable, x)
                logits = self.pixel_model(x + delta).float()
                dist = self.distance(delta, weights)
            with torch.no_grad():
                if needs_change is None:  # t = 0: delta = 0, the clean image
                    needs_change = logits.argmax(1) != q
                improved = self._kept_now((logits.argmax(1) == q) & needs_change, dist, best_dist, found, last)
                # torch.where, not best[improved] = ...: a boolean index waits for the GPU at every step.
                best = torch.where(improved.view(-1, 1, 1, 1), delta, best)
                best_dist = torch.where(improved, dist, best_dist)
                found |= improved
            if last:
                break
            loss = (self.validity_loss(logits, q) + self.gamma * dist).sum()
            (grad,) = torch.autograd.grad(loss, variable)  # no parameter gradients, whatever the model
            self._step(variable, grad, optimiser)
            self._project(variable, x, bound)
        kept = torch.where(found.view(-1, 1, 1, 1), best, delta.detach())
        with torch.no_grad():
            predicted = torch.where(found, q, logits.argmax(1))
        return kept, found, predicted

    def _kept_now(self, valid_now, dist, best_dist, found, last: bool) -> torch.Tensor:
        """Per pair, whether this iterate replaces the one kept, by the `keep` knob."""
        if self.keep == "closest_valid":
            return valid_now & (dist < best_dist)
        if self.keep == "first_valid":
            return valid_now & ~found
        return valid_now & last

    def _step(self, variable, grad, optimiser) -> None:
        """One update of the perturbation: Adam's, or a signed gradient step (PGD)."""
        if optimiser is not None:
            variable.grad = grad
            optimiser.step()
        else:
            with torch.no_grad():
                variable.sub_(self.step_size * grad.sign())

    # -- maps from the counterfactuals -------------------------------------------------------------
    def path_gradients(self, x, delta, classes: list[torch.Tensor]) -> list[torch.Tensor]:
        """mean_k grad_x z_c(x + ((k - 0.5) / K) * delta) for each class vector c [P]."""
        total = [torch.zeros_like(x) for _ in classes]
        for k in range(1, self.K + 1):
            point = (x + ((k - 0.5) / self.K) * delta).detach().requires_grad_(True)
            logits = self.pixel_model(point)
            for i, c in enumerate(classes):
                (g,) = torch.autograd.grad(logits.gather(1, c.view(-1, 1)).sum(), point,
                                           retain_graph=i < len(classes) - 1)
                total[i] += g / self.K
        return total

    def smooth(self, maps: torch.Tensor) -> torch.Tensor:
        """Gaussian blur with sigma = blur_sigma * H, then divide by the maximum."""
        sigma = self.blur_sigma * maps.shape[-2]
        if sigma > 0:
            size = 2 * math.ceil(3 * sigma) + 1
            maps = gaussian_blur(maps[:, None], kernel_size=[size, size], sigma=[sigma, sigma])[:, 0]
        return normalise_max(maps)

    def pair_maps(self, x, delta, p, q):
        """S_sup and S_pro of each pair [P, H, W], each divided by its maximum, by the `readoff` knob."""
        return getattr(self, f"_{self.readoff}_maps")(x, delta, p, q)

    def _input_maps(self, x, delta, p, q):
        """S_sup = relu(-sum_c delta * g_p), S_pro = relu(sum_c delta * g_q), each smoothed."""
        g_p, g_q = self.path_gradients(x, delta, [p, q])
        s_sup = torch.relu(-(delta * g_p).sum(1))
        s_pro = torch.relu((delta * g_q).sum(1))
        return self.smooth(s_sup), self.smooth(s_pro)

    def _magnitude_maps(self, x, delta, p, q):
        """Where the counterfactual changed the image: sum_c |delta|, smoothed, for both maps."""
        s = self.smooth(delta.abs().sum(1))
        return s, s.clone()

    def _layer_contrast_maps(self, x, delta, p, q):
        """S_sup = relu(sum_k w_k^p (A_k(x) - A_k(x'))), w^p the spatial mean of dz_p/dA at x (Grad-CAM's
        weights); S_pro = relu(sum_k w_k^q (A_k(x') - A_k(x))), w^q at x'. Upsampled to the image."""
        a_x, g_p = self.layer_gradient(x, p)
        a_cf, g_q = self.layer_gradient(x + delta, q)
        w_p, w_q = g_p.mean((2, 3), keepdim=True), g_q.mean((2, 3), keepdim=True)
        s_sup = torch.relu((w_p * (a_x - a_cf)).sum(1))
        s_pro = torch.relu((w_q * (a_cf - a_x)).sum(1))
        return self.upsampled(s_sup, x), self.upsampled(s_pro, x)

    def _layer_path_maps(self, x, delta, p, q):
        """Integrated gradients at the layer with the counterfactual as the baseline: S_sup =
        relu(sum_k (A_k(x) - A_k(x')) * mean_t dz_p/dA_k(A(x') + t (A(x) - A(x')))), so that the unrectified
        map sums to z_p(x) - z_p(x') (up to the K-point rule); S_pro likewise for z_q from A(x) to A(x'),
        which passes through the same K midpoints."""
        a_x, a_cf = self.layer_output(x), self.layer_output(x + delta)
        change = a_x - a_cf
        g_p, g_q = self.layer_path_gradients(x, a_cf, change, [p, q])
        s_sup = torch.relu((change * g_p).sum(1))
        s_pro = torch.relu((-change * g_q).sum(1))
        return self.upsampled(s_sup, x), self.upsampled(s_pro, x)

    # -- the layer read-offs' pieces ----------------------------------------------------------------
    @property
    def readoff_layer(self) -> torch.nn.Module:
        """The layer the layer read-offs read (looked up once; the input read-offs have none)."""
        assert self._layer_module is not None, f"readoff={self.readoff} reads no layer"
        return self._layer_module

    def layer_output(self, pixels) -> torch.Tensor:
        """A: the layer's output for images in pixel space [P, K, h, w] (no graph)."""
        with torch.no_grad(), capture_outputs([self.readoff_layer]) as outputs:
            self.pixel_model(pixels)
        return outputs[0].detach()

    def layer_gradient(self, pixels, classes) -> tuple[torch.Tensor, torch.Tensor]:
        """A and dz_c/dA at the layer, for the class c of each pair."""
        with torch.enable_grad(), capture_outputs([self.readoff_layer]) as outputs:
            # the input needs a graph so that the layer's output has one, whatever the parameters' requires_grad
            logits = self.pixel_model(pixels.detach().requires_grad_(True))
            activations = outputs[0]
            (grad,) = torch.autograd.grad(logits.gather(1, classes.view(-1, 1)).sum(), activations)
        return activations.detach(), grad

    def layer_path_gradients(self, pixels, start, change, classes: list[torch.Tensor]) -> list[torch.Tensor]:
        """mean_k dz_c/dA at A = start + ((k - 0.5) / K) * change, the layer's output replaced by that
        point (the rest of the network runs on it), for each class vector c [P]."""
        total = [torch.zeros_like(start) for _ in classes]
        for k in range(1, self.K + 1):
            point = (start + ((k - 0.5) / self.K) * change).requires_grad_(True)
            handle = self.readoff_layer.register_forward_hook(lambda _m, _i, _o, point=point: point)
            try:
                with torch.enable_grad():
                    logits = self.pixel_model(pixels)
                    for i, c in enumerate(classes):
                        (g,) = torch.autograd.grad(logits.gather(1, c.view(-1, 1)).sum(), point,
                                                   retain_graph=i < len(classes) - 1)
                        total[i] += g / self.K
            finally:
                handle.remove()
        return total

    @staticmethod
    def upsampled(maps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Layer maps [P, h, w] at the image's size (bilinear), divided by their maximum, in its dtype."""
        maps = maps.to(like.dtype)
        if maps.shape[-2:] != like.shape[-2:]:
            maps = torch.nn.functional.interpolate(maps[:, None], size=like.shape[-2:], mode="bilinear",
                                                   align_corners=False)[:, 0]
        return normalise_max(maps)

    # -- sweeps ------------------------------------------------------------------------------------
    def maps_for_settings(self, images, targets, settings) -> Iterator[SettingMaps]:
        """Counterfactuals once per distinct generation setting; alpha only mixes M_sup and M_pro."""
        groups: dict[tuple, list[dict]] = {}
        for setting in settings:
            generation = {k: v for k, v in {**self.knobs(), **setting}.items() if k != "alpha"}
            groups.setdefault(tuple(sorted(generation.items(), key=lambda kv: kv[0])), []).append(setting)
        for members in groups.values():
            explainer = self.with_knobs(**members[0])
            start = time.perf_counter()
            maps = explainer.contrastive_maps(images, targets)
            seconds = time.perf_counter() - start
            for setting in members:
                alpha = setting.get("alpha", self.alpha)
                yield SettingMaps(setting, postprocess(maps.unified(alpha), images.shape[-2:]), seconds,
                                  valid=maps.valid.float().mean(1),
                                  parts={"M_sup": maps.sup, "M_pro": maps.pro})

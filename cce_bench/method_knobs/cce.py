"""CCE's knobs (cce_bench/explainers/cce.py). DOC: documented by the paper; REC: reconstructed (its default
chosen by measurement, docs/cce.md)."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules import Rule
from . import MethodKnobs, batch_size_knob, knob

# The reconstructed choices of the counterfactual search (docs/cce_method.md, "the search").
VALIDITY_LOSSES = {
    "hinge": "relu(max_{j != q} z_j - z_q + kappa): zero once q leads by kappa",
    "ce": "cross-entropy toward q: keeps raising q's probability within the budget",
}
KEEP_RULES = {
    "closest_valid": "the valid iterate with the smallest L_dist",
    "first_valid": "the first valid iterate",
    "last": "the last iterate (valid if its prediction is q)",
}
STEP_RULES = {
    "adam": "Adam, lr (epsilon / 255) / 5 unless lr is set",
    "signed": "signed gradient steps as in PGD, lr 2.5 (epsilon / 255) / steps unless lr is set",
}
# How S_sup and S_pro are read off one counterfactual x' = x + delta (docs/cce_method.md, "the read-off").
# A is the output of the model's target layer (the `target_layer` knob), z_c a logit.
READOFFS = {
    "input": "relu(-sum_c delta * g_p) and relu(sum_c delta * g_q), g the input gradients averaged on x -> x', blurred",
    "magnitude": "sum_c |delta|, blurred, for both maps",
    "layer_contrast": "relu(sum_k w_k^p (A_k(x) - A_k(x'))), w^p Grad-CAM's weights of p at x; M_pro with q's at x' "
                      "and A(x') - A(x); upsampled",
    "layer_path": "relu(sum_k (A_k(x) - A_k(x')) * mean_t dz_p/dA_k) along A(x') -> A(x) (integrated gradients at the "
                  "layer, baseline x'); M_pro with z_q along A(x) -> A(x'); upsampled",
}
LAYER_READOFFS = ("layer_contrast", "layer_path")


@dataclass
class CCEKnobs(MethodKnobs):
    alpha: float = knob(0.7, Rule("number", 0, 1), "DOC, M_p = alpha * M_sup + (1 - alpha) * M_pro")
    # at most ImageNet's 1000 classes less the explained one and the top-1
    M: int = knob(
        5, Rule("whole", 1, 998), "DOC, counterfactuals per image (contrast classes: the M next-highest classes)"
    )
    gamma: float = knob(20.0, Rule("number", 0, 1e9), "DOC, L = L_valid + gamma * L_dist")
    # 0-255 pixel units: 255 is no bound at all
    epsilon: float = knob(
        8.0, Rule("number", 0, 255, low_open=True), "DOC, |delta|_inf <= epsilon / 255 (0-255 pixel units)"
    )
    steps: int = knob(50, Rule("whole", 1, 100_000), "REC, optimiser steps per counterfactual")
    lr: float | None = knob(None, Rule("number", 0, 1, low_open=True, nullable=True),
                            "REC, the step size; null: the step rule's (step_rule)")
    # a negative margin would call a counterfactual valid before it flips
    kappa: float = knob(0.0, Rule("number", 0, 1e4), "REC, margin of L_valid = relu(max_{j != q} z_j - z_q + kappa)")
    K: int = knob(4, Rule("whole", 1, 1000), "REC, path points of the averaged gradients")
    tv_weight: float = knob(
        1.0, Rule("number", 0, 1e9), "REC, lambda_tv of the content-aware total variation in L_dist"
    )
    tv_sigma: float = knob(0.1, Rule("number", 0, 1e3, low_open=True),
                           "REC, sigma_c of the edge weights exp(-|x_i - x_j|^2 / (2 sigma_c^2))")
    blur_sigma: float = knob(
        0.05, Rule("number", 0, 1), "REC, map smoothing, sigma = blur_sigma * H (a fraction of the side)"
    )
    dist_scale: float = knob(
        255.0,
        Rule("number", 0, 1e6, low_open=True),
        "REC, L_dist in 0-255 pixel units, those of epsilon (1: [0, 1] units, where gamma is inert)",
    )
    validity: str = knob("hinge", Rule("choice", choices=tuple(VALIDITY_LOSSES)), "REC, L_valid: " +
                         "; ".join(f"{k}: {v}" for k, v in VALIDITY_LOSSES.items()))
    keep: str = knob("closest_valid", Rule("choice", choices=tuple(KEEP_RULES)), "REC, the kept iterate: " +
                     "; ".join(f"{k}: {v}" for k, v in KEEP_RULES.items()))
    step_rule: str = knob("adam", Rule("choice", choices=tuple(STEP_RULES)), "REC, the steps: " +
                          "; ".join(f"{k}: {v}" for k, v in STEP_RULES.items()))
    grid: int | None = knob(None, Rule("whole", 1, 4096, nullable=True),
                            "REC, null: one delta value per pixel; N: delta on N x N cells, upsampled bilinearly")
    readoff: str = knob("layer_contrast", Rule("choice", choices=tuple(READOFFS)),
                        "REC, how the maps are read off each counterfactual (docs/cce_method.md, the read-off)")
    target_layer: str | None = knob(None, Rule("text", nullable=True),
                                    "REC, dotted path of the layer the layer read-offs use; null: the model's "
                                    "(model.target_layer)")
    batch_size: int | None = batch_size_knob("counterfactual pairs per forward/backward pass; null: 16 on a CPU, "
                                             "64 on a GPU")
    mean: list | None = knob(None, Rule("list", nullable=True, each=Rule("number", -1e6, 1e6)),
                             doc="the normalisation the model expects (per channel); null: the model's own "
                             "(ImageNet's for a bare network)")
    std: list | None = knob(None, Rule("list", nullable=True, each=Rule("number", 0, 1e6, low_open=True)),
                            doc="the standard deviations the model divides by (per channel, each > 0); null: as mean")

"""APPB: adversarial perturbations within a perceptual ball (Elliott, Law and Russell, CVPR 2021).

x' starts at x (normalised space) and minimises
    gamma_p * sum_l MSE(phi_l(x'), phi_l(x)) + MSE(x', x) + (z_t(x') - max_{j != t} z_j(x') - v)^2,
so that the target's margin reaches v = -2 while the hidden features phi_l stay close (the perceptual
ball). The map is the root mean square over channels of x' - x, blurred with sigma 2.

As the authors' code (alan-turing-institute/perceptualBall) runs it, by default: MSE terms are *means*
(torch's MSELoss), summed over the layers and multiplied by gamma_p; torch's L-BFGS with its defaults
(step 1, no line search) for `steps` = 100 iterations, one image at a time (L-BFGS's curvature history
would couple the images of a batch; here every image of a chunk runs its own L-BFGS side by side,
explainers/lbfgs.py, step for step as torch's would on it alone); the blur is scipy's gaussian_filter of
sigma 2, which reaches 4 sigma (a 17x17 kernel). `optimizer=adam` is a batched per-image Adam variant
(every image of a chunk at once), faster, but its maps agree only weakly with L-BFGS's
(scripts/compare_appb_optimizers.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import gaussian_blur

from ..errors import UserError
from ..models import facts_of
from ..progress import counted
from .base import Explainer, register
from .layers import capture_outputs, resolve_layer
from .lbfgs import minimise_each

# a Gaussian of sigma under 0.01 pixels weighs its neighbours by exp(-5000) or less: the map as it is (and a
# sigma near zero would divide by zero in the kernel)
NO_BLUR_BELOW = 0.01


@register
class APPB(Explainer):
    """Adversarial perturbations within a perceptual ball (Elliott, Law and Russell, CVPR 2021), as the
    authors' code runs it: mean-squared-error terms, L-BFGS with torch's defaults (step 1, no line search),
    each image on its own (side by side); map = RMS over channels of x' - x, Gaussian blur (4-sigma kernel).
    """

    label = "APPB"
    cost = "optimisation"
    needs = ("perceptual_layers",)
    batch_sizes = {"cpu": 16, "cuda": 32}  # images optimised side by side (L-BFGS keeps ~2 x steps copies of each)
    layers: list[str]  # the knob's null resolved from the model's facts when the method is built

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        if self.layers is None:
            self.layers = facts_of(model).perceptual_layers  # the model's phi_l
            if self.layers is None:
                raise UserError("APPB has no default perceptual layers for this model: pass layers=[DOTTED.PATH,...]")
        self.layers = list(self.layers)
        self.modules = [
            resolve_layer(model, path, "method_knobs.appb.layers=[DOTTED.PATH,...]") for path in self.layers
        ]

    def per_image_loss(self, x_adv, x, clean_features, targets):
        with capture_outputs(self.modules) as features:
            logits = self.model(x_adv).float()
        perceptual = sum(F.mse_loss(f.float(), c, reduction="none").flatten(1).mean(1)
                         for f, c in zip(features, clean_features))
        closeness = (x_adv - x).pow(2).flatten(1).mean(1)
        z_t = logits.gather(1, targets.view(-1, 1))[:, 0]
        others = logits.scatter(1, targets.view(-1, 1), float("-inf")).amax(1)
        return self.gamma_p * perceptual + closeness + (z_t - others - self.v) ** 2

    def perturb(self, images, targets) -> torch.Tensor:
        with torch.no_grad(), capture_outputs(self.modules) as features:
            self.model(images)
            clean = [f.float().detach() for f in features]
        if self.optimizer == "lbfgs":  # each image its own L-BFGS, as the authors run it one at a time
            def loss_of(x_rows, rows):
                return self.per_image_loss(x_rows, images[rows], [c[rows] for c in clean], targets[rows])

            return minimise_each(images, loss_of, max_iter=self.steps)
        x_adv = images.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([x_adv], lr=self.lr)
        with torch.enable_grad():
            for _ in counted(range(self.steps), f"APPB: {images.shape[0]} images"):
                loss = self.per_image_loss(x_adv, images, clean, targets).sum()
                (x_adv.grad,) = torch.autograd.grad(loss, x_adv)
                opt.step()
        return x_adv.detach()

    def _attribute_batch(self, images, targets):
        diff = self.perturb(images, targets) - images
        rms = diff.pow(2).mean(1).sqrt()
        if self.blur_sigma < NO_BLUR_BELOW:
            return rms
        size = 2 * math.ceil(4 * self.blur_sigma) + 1  # scipy's gaussian_filter truncates at 4 sigma
        return gaussian_blur(rms[:, None], kernel_size=[size, size], sigma=[self.blur_sigma] * 2)[:, 0]

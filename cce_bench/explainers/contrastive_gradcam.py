"""CE: contrastive explanations (Prabhushankar et al., ICIP 2020), "why P, rather than Q?".

Grad-CAM driven by the gradient of the cross-entropy toward a contrast class Q: the channel weights are
the spatial mean of d CE(logits, Q) / d A at the Grad-CAM layer; the map is relu(sum_k w_k A_k). This is
the authors' code (olivesgatech, `ContrastCAM`): CE over all classes, its gradient used as it is (no sign
change), relu, then the usual resize and min-max.

In their formulation P is the network's prediction. Q is the most likely class other than the explained
class *and other than the prediction*: where the explained class is not the top-1 (the pointing game
explains the best class mapped to a COCO category), Q = the top-1 would be a cross-entropy toward what
the network already says, whose gradient points away from the evidence and leaves an empty or inverted
map (the 0.18% of the first pointing-game runs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Explainer, other_top_classes, register
from .layers import capture_outputs, resolve_layer


@register
class ContrastiveGradCAM(Explainer):
    """Contrastive explanations (Prabhushankar et al., ICIP 2020): Grad-CAM of the cross-entropy toward a
    contrast class Q.
    """

    label = "CE"
    cost = "gradient"
    needs = ("target_layer",)

    def __init__(self, model, **knobs):
        super().__init__(model, **knobs)
        self.layer = resolve_layer(model, self.target_layer, f"method_knobs.{self.name}.target_layer=DOTTED.PATH")

    def contrast_classes(self, logits, targets) -> torch.Tensor:
        """Q [B, 1]: the (contrast_rank - 1)-th most likely class other than the target and the top-1 class (the
        second most likely class overall for contrast_rank = 2 and a top-1 target)."""
        return other_top_classes(logits, targets, self.contrast_rank - 1)[:, -1:]

    def _attribute_batch(self, images, targets):
        return self._contrast_batch(images, targets, None)

    def _contrast_batch(self, images, targets, contrast):
        """The map of Q = `contrast` (None: the contrast_rank rule's class)."""
        with torch.enable_grad(), capture_outputs([self.layer]) as outputs:
            logits = self.model(images.detach().requires_grad_(True)).float()
            activations = outputs[0]
            q = self.contrast_classes(logits, targets)[:, 0] if contrast is None else contrast.to(logits.device)
            loss = F.cross_entropy(logits, q, reduction="sum")  # per-image terms: batching keeps them apart
            (grads,) = torch.autograd.grad(loss, activations)
        weights = grads.float().mean(dim=(2, 3), keepdim=True)
        return torch.relu((weights * activations.detach().float()).sum(1))

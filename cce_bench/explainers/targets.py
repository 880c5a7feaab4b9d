"""What a method is asked, and what it answers, as objects (the way pytorch-grad-cam's `model_targets` are).

- a class per image (an int, a tensor [B], or None for the model's own answer): "why P?";
- `Contrast(classes, contrast)`: "why P rather than Q?", Q one class per image [B], several [B, k], or None
  (the method's own contrast classes: `Explainer.contrast_classes`).

`Explainer.explain(images, target)` answers with an `Explanation`: named maps [B, H, W] in [0, 1], one of
them the answer (`main`), each with what it says (`says`: a template where {P} and {Q} are the classes'
names), and per image a line on what the method found (CCE: its counterfactual and whether it was valid).
A method with one map answers with the map `map`; a method that answers contrast with several (CCE:
`unified`, `M_sup`, `M_pro`) names them itself, and any command, figure or metric takes them by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Contrast:
    """"Why P rather than Q?": P per image [B]; Q per image [B] or [B, k], or None (the method's choice)."""

    classes: torch.Tensor
    contrast: torch.Tensor | None = None

    def contrast_matrix(self) -> torch.Tensor | None:
        """Q as [B, k] (k = 1 for one class per image)."""
        if self.contrast is None:
            return None
        contrast = torch.as_tensor(self.contrast, device=self.classes.device).long()
        return contrast.view(-1, 1) if contrast.dim() == 1 else contrast


@dataclass
class Explanation:
    """A method's answer: named maps [B, H, W] in [0, 1], the one that answers (`main`), what each says, the
    classes asked about, and per image a line on what the method found ('' where it says nothing)."""

    maps: dict[str, torch.Tensor]
    main: str
    says: dict[str, str] = field(default_factory=dict)   # name -> "why {P}: M_sup", "why not {Q}: M_pro", ...
    classes: torch.Tensor | None = None                  # [B] P
    contrast: torch.Tensor | None = None                 # [B, k] Q, where the method asked about them
    found: list[str] = field(default_factory=list)       # per image
    details: dict[str, torch.Tensor] = field(default_factory=dict)  # per image facts (CCE: valid, predicted)

    @property
    def answer(self) -> torch.Tensor:
        return self.maps[self.main]

    def others(self) -> dict[str, torch.Tensor]:
        """The named maps beside the answer (CCE: M_sup and M_pro), as a run saves them (NAME_M_sup, ...)."""
        return {name: maps for name, maps in self.maps.items() if name != self.main}

    def titles(self, b: int, categories) -> list[tuple[str, torch.Tensor]]:
        """(title, map) of image b for each named map, {P} and {Q} filled in with the classes' names."""
        p = categories[int(self.classes[b])] if self.classes is not None else "P"
        q = "Q"
        if self.contrast is not None:
            shown = [categories[int(c)] for c in self.contrast[b][:3]]
            q = ", ".join(shown) + ("..." if self.contrast.shape[1] > 3 else "")
        return [(self.says.get(name, name).format(P=p, Q=q), maps[b]) for name, maps in self.maps.items()]

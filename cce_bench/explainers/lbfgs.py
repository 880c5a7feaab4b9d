"""L-BFGS for B independent problems side by side: image b follows, step for step, what torch.optim.LBFGS
(default settings: step `lr`, no line search) does on image b alone.

torch's LBFGS keeps one curvature history for all its parameters, so a batch given to it as one tensor would
couple the images: APPB's authors run it one image at a time. On a small model most of that time is Python
overhead (the two-loop recursion is about 4 small tensor operations per history entry per step, and one
image's forward pass is too small to use the machine). Here every image keeps its own history, stop flags,
step and scaling, held as rows of [B, D] tensors, so each operation serves the whole batch; an image that has
stopped keeps its values and leaves the model's passes. Only float summation order differs from the one-image
runs (tests/test_lbfgs.py compares the two).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

CURVATURE_FLOOR = 1e-10  # torch's: a pair (s, y) with y.s below it is not kept


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(1)


class _History:
    """Each image's (s, y, 1/y.s) pairs: one slot per step for the whole batch, with rho = 0 where an image did not
    keep the pair (a zero rho makes the slot a no-op in the recursion for that image)."""

    def __init__(self, size: int):
        self.size = size
        self.slots: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.kept: torch.Tensor | None = None

    def add(self, s: torch.Tensor, y: torch.Tensor, keep: torch.Tensor) -> None:
        if not bool(keep.any()):
            return
        ys = _rowdot(y, s)
        rho = torch.where(keep, 1 / torch.where(keep, ys, torch.ones_like(ys)), torch.zeros_like(ys))
        self.slots.append((s, y, rho))
        self.kept = keep.long() if self.kept is None else self.kept + keep.long()
        over = self.kept > self.size  # torch drops an image's oldest kept pair once it holds `size`
        if not bool(over.any()):
            return
        for _, _, rho_old in self.slots:
            drop = over & (rho_old != 0)
            rho_old[drop] = 0
            self.kept = self.kept - drop.long()
            over = self.kept > self.size
            if not bool(over.any()):
                break
        self.slots = [slot for slot in self.slots if bool((slot[2] != 0).any())]

    def direction(self, grad: torch.Tensor, h_diag: torch.Tensor) -> torch.Tensor:
        """The two-loop recursion: -H grad for every image at once."""
        q = grad.neg()
        alphas = []
        for s, y, rho in reversed(self.slots):
            a = _rowdot(s, q) * rho
            alphas.append(a)
            q = q - a[:, None] * y
        r = q * h_diag[:, None]
        for (s, y, rho), a in zip(self.slots, reversed(alphas)):
            beta = _rowdot(y, r) * rho
            r = r + (a - beta)[:, None] * s
        return r


def minimise_each(x0: torch.Tensor, loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], max_iter: int,
                  lr: float = 1.0, tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                  history_size: int = 100) -> torch.Tensor:
    """Minimise loss_of(x[rows], rows)[k] (the loss of image rows[k]) for every image of x0 [B, ...] on its own,
    as torch.optim.LBFGS(max_iter=max_iter, lr=lr, ...).step would with that image alone; returns the minimisers."""
    shape, batch = x0.shape, x0.shape[0]
    x = x0.detach().reshape(batch, -1).clone()
    every = torch.arange(batch, device=x.device)
    loss, grad = _evaluate(x, every, shape, loss_of)
    active = grad.abs().amax(1) > tolerance_grad
    history, h_diag = _History(history_size), torch.ones(batch, dtype=x.dtype, device=x.device)
    d, t = grad.neg(), torch.zeros(batch, dtype=x.dtype, device=x.device)
    prev_grad, max_eval, evaluations = grad, max_iter * 5 // 4, 1
    for n_iter in range(1, max_iter + 1):
        if n_iter > 1:
            y, s = grad - prev_grad, d * t[:, None]
            keep = active & (_rowdot(y, s) > CURVATURE_FLOOR)
            history.add(s, y, keep)
            h_diag = torch.where(keep, _rowdot(y, s) / _rowdot(y, y).clamp_min(torch.finfo(x.dtype).tiny), h_diag)
            d = torch.where(active[:, None], history.direction(grad, h_diag), d)
        prev_grad, prev_loss = grad, loss
        first_step = torch.clamp(1 / grad.abs().sum(1), max=1.0) * lr
        t = first_step if n_iter == 1 else torch.full_like(t, lr)
        active = active & ~(_rowdot(grad, d) > -tolerance_change)
        x = x + torch.where(active[:, None], d * t[:, None], torch.zeros_like(x))
        if n_iter == max_iter or not bool(active.any()):
            break
        rows = active.nonzero()[:, 0]
        loss, grad = loss.clone(), grad.clone()
        loss[rows], grad[rows] = _evaluate(x[rows], rows, shape, loss_of)
        evaluations += 1
        if evaluations >= max_eval:
            break
        active = active & ~(grad.abs().amax(1) <= tolerance_grad)
        active = active & ~((d * t[:, None]).abs().amax(1) <= tolerance_change)
        active = active & ~((loss - prev_loss).abs() < tolerance_change)
    return x.reshape(shape)


def _evaluate(x_rows, rows, shape, loss_of):
    variable = x_rows.reshape(len(rows), *shape[1:]).detach().requires_grad_(True)
    with torch.enable_grad():
        losses = loss_of(variable, rows)
        (grad,) = torch.autograd.grad(losses.sum(), variable)
    return losses.detach(), grad.reshape(len(rows), -1)

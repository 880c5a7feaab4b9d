"""The side-by-side L-BFGS (explainers/lbfgs.py) against torch.optim.LBFGS run on each image alone, in float64 so
that only a wrong step could make them differ."""
from __future__ import annotations

import pytest
import torch

from cce_bench.explainers.lbfgs import minimise_each


def problem(seed: int = 0):
    """A small conv net and APPB's kind of loss: push the target's margin to -2 while staying close to x."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(),
                              torch.nn.Linear(6 * 8 * 8, 5)).double()
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 3, 4])

    def loss_of(x_rows, rows):
        logits = net(x_rows)
        z_t = logits.gather(1, targets[rows].view(-1, 1))[:, 0]
        others = logits.scatter(1, targets[rows].view(-1, 1), float("-inf")).amax(1)
        return (z_t - others + 2) ** 2 + 0.05 * (x_rows - x[rows]).pow(2).flatten(1).mean(1)

    return x, loss_of


def torch_alone(x, loss_of, **settings):
    answers = []
    for i in range(len(x)):
        variable = x[i:i + 1].clone().requires_grad_(True)
        optimiser = torch.optim.LBFGS([variable], **settings)

        def closure(i=i, variable=variable):
            loss = loss_of(variable, torch.tensor([i])).sum()
            (variable.grad,) = torch.autograd.grad(loss, variable)
            return loss

        optimiser.step(closure)
        answers.append(variable.detach())
    return torch.cat(answers)


@pytest.mark.parametrize("max_iter,history_size", [(1, 100), (2, 100), (3, 100), (40, 100), (40, 4)])
def test_each_image_follows_torch_lbfgs_alone(max_iter, history_size):
    x, loss_of = problem()
    ours = minimise_each(x, loss_of, max_iter=max_iter, history_size=history_size)
    reference = torch_alone(x, loss_of, max_iter=max_iter, history_size=history_size)
    assert (reference - x).abs().max() > 1e-3  # the images moved
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-7)


def test_images_that_stop_early_keep_their_values_and_leave_the_passes():
    """A loose change tolerance stops images at different steps; each ends where torch's run on it alone ends,
    and the later passes carry only the images still running."""
    x, loss_of = problem(seed=1)
    rows_seen = []

    def counting(x_rows, rows):
        rows_seen.append(len(rows))
        return loss_of(x_rows, rows)

    ours = minimise_each(x, counting, max_iter=60, tolerance_change=1e-4)
    torch.testing.assert_close(ours, torch_alone(x, loss_of, max_iter=60, tolerance_change=1e-4), rtol=0, atol=1e-7)
    assert rows_seen[0] == len(x) and min(rows_seen) < len(x)

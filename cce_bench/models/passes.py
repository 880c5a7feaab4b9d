"""The count of model inputs a run evaluates: the floor of its time is these counts at the bare rates
(scripts/bench_table.py), and run.json records them."""
from __future__ import annotations

import torch


class PassCount:
    """Model inputs evaluated so far: forward only, forward with a graph to the input, and backward through
    the network (a method may take two gradients from one forward)."""

    def __init__(self):
        self.forward = 0
        self.with_gradient = 0
        self.backward = 0
        self.listener = None  # called after each count (the run's progress bar)

    def add(self, inputs: int, with_gradient: bool) -> None:
        if with_gradient:
            self.with_gradient += int(inputs)
        else:
            self.forward += int(inputs)
        if self.listener is not None:
            self.listener()

    def add_backward(self, inputs: int) -> None:
        self.backward += int(inputs)
        if self.listener is not None:
            self.listener()

    def restore(self, counts: dict) -> None:
        """Back to `counts` (an earlier as_dict()): work that was not the run's, such as a cost probe."""
        self.forward, self.with_gradient, self.backward = counts["forward"], counts["with_gradient"], counts["backward"]

    def as_dict(self) -> dict:
        return {"forward": self.forward, "with_gradient": self.with_gradient, "backward": self.backward}


class CountBackward(torch.autograd.Function):
    """The identity on the logits, counting the inputs of every backward pass through them."""

    @staticmethod
    def forward(ctx, logits, passes):
        ctx.passes = passes
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad):
        ctx.passes.add_backward(grad.shape[0])
        return grad, None

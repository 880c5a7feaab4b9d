import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent


class TinyNet(nn.Module):
    """A small CNN on normalised input, quick enough for per-step reference loops."""

    def __init__(self, classes: int = 5, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.eval()

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(nn.functional.adaptive_avg_pool2d(h, 2).flatten(1))


@pytest.fixture
def tiny_net():
    return TinyNet()


@pytest.fixture(scope="session")
def lite0():
    from cce_bench import create_model

    return create_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def photos(lite0):
    """chelsea and coffee, preprocessed for the real model: (images [2, 3, 224, 224], ids)."""
    from cce_bench.data import create_dataset, image_batches

    dataset = create_dataset({"name": "photos", "n_images": 2}, lite0.mean.flatten().tolist(),
                              lite0.std.flatten().tolist())
    batch = next(iter(image_batches(dataset, 2)))
    return batch["image"], batch["id"]


def run_cli(*args, env=None, timeout=600):
    """Run the installed command line the way a user does."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cce_bench.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=str(ROOT))

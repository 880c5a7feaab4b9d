"""Fixtures: the tiny CNN, the real default model and photos, an ImageNet-like folder of real files."""
import os
import sys
from pathlib import Path

import pytest


def pytest_configure(config):
    """Each of pytest-xdist's worker processes on its own share of the cores (and so are the commands it runs,
    which take their threads from the cores they may use): two workers that each used every core would make
    twice the threads the machine has, and the tests no faster than one after the other."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker and count > 1 and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) >= count:
            share = cores[int(worker.removeprefix("gw")) % count::count]
            os.sched_setaffinity(0, share)
            import torch  # loaded already (helpers), its threads counted from every core: the tests in this process

            torch.set_num_threads(len(share))

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tests' own helpers module

from helpers import TinyNet, WarmCli, noise  # noqa: E402


@pytest.fixture(scope="session")
def warm_cli():
    """`warm_cli.run(*args)`: the command line in one warm process, for commands that stop early."""
    cli = WarmCli()
    yield cli
    cli.close()


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

    dataset = create_dataset({"name": "photos", "n_images": 2}, lite0.inputs)
    batch = next(iter(image_batches(dataset, 2)))
    return batch["image"], batch["image_id"]



@pytest.fixture
def image_tree(tmp_path):
    root = tmp_path / "imagenet" / "val"
    for wnid in ("n02123045", "n07920052"):
        (root / wnid).mkdir(parents=True)
        noise(root / wnid / "a.JPEG")
    noise(root / "n02123045" / "b.png", mode="L")
    full = (root / "n02123045" / "a.JPEG").read_bytes()
    (root / "n07920052" / "truncated.JPEG").write_bytes(full[: len(full) // 2])
    (root / "n07920052" / "garbage.JPEG").write_bytes(b"not an image at all")
    return tmp_path / "imagenet"


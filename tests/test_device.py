"""device=auto|cuda|cuda:N reaches torch as an indexed device, on a CPU box with torch.cuda faked."""
import pytest
import torch
from omegaconf import OmegaConf

from cce_bench.errors import UserError
from cce_bench.runs.distributed import Shard
from cce_bench.runs.runtime import resolve, resolve_device


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two visible GPUs; set_device behaves as torch's does (it refuses a device without an index)."""
    chosen = []

    def set_device(device):
        device = torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
        if device.index is None:
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{device}")
        chosen.append(device)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    return chosen


@pytest.mark.parametrize("name, local_rank, expected", [
    ("auto", 0, "cuda:0"),
    ("cuda", 0, "cuda:0"),
    ("cuda:1", 0, "cuda:1"),
    ("cuda", 1, "cuda:1"),      # torchrun: one GPU per process
    ("auto", 1, "cuda:1"),
    ("cuda", 3, "cuda:1"),      # srun with 2 GPUs per node shared by 4 tasks
    ("cuda:0", 1, "cuda:0"),    # an explicit index wins
    (" cuda ", 0, "cuda:0"),
    ("cpu", 1, "cpu"),
])
def test_gpu_devices_always_carry_an_index(fake_gpus, name, local_rank, expected):
    device = resolve_device(name, local_rank)
    assert device == torch.device(expected) and str(device) == expected


def test_resolve_sets_the_indexed_device_for_every_command(fake_gpus):
    for name, shard, expected in [("cuda", Shard(), "cuda:0"), ("auto", Shard(), "cuda:0"),
                                  ("cuda", Shard(rank=1, world=2, local_rank=1), "cuda:1")]:
        cfg = resolve(OmegaConf.create({"device": name, "batch_size": None, "images_per_batch": None,
                                        "method_knobs": {"cce": {"batch_size": None}}}), shard)
        assert cfg.device == expected
        assert fake_gpus[-1] == torch.device(expected)
        assert cfg.batch_size == 256 and cfg.method_knobs.cce.batch_size == 64  # GPU defaults


def test_a_gpu_index_beyond_the_visible_ones_is_one_line(fake_gpus):
    with pytest.raises(UserError, match=r"device=cuda:2 but torch sees 2 GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_no_gpu_and_not_a_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="torch sees no CUDA GPU"):
        resolve_device("cuda")
    for bad in ("gpu", "cuda:x", "", "meta"):
        with pytest.raises(UserError, match="is not a device"):
            resolve_device(bad)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserError, match="no usable MPS"):
        resolve_device("mps")
    with pytest.raises(UserError, match="the CPU has no index"):
        resolve_device("cpu:3")

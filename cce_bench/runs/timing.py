"""Wall-clock timing that waits for the GPU, for the time columns and the benchmark scripts."""
from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def sync(device: torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device, repeats: int = 1, warmup: bool = False) -> tuple[float, T]:
    """Median seconds of `repeats` calls of fn (after one untimed call if `warmup`), and the last result."""
    if warmup:
        fn()
    times = []
    for _ in range(max(1, repeats)):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def device_name(device: torch.device) -> str:
    """The card's name, or the CPU's model name with the threads torch uses (what the tables' headers and
    machine.json name too)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

"""Wall-clock timing that waits for the GPU, for the time columns and the benchmark scripts."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable, device: torch.device, repeats: int = 1, warmup: bool = False) -> tuple[float, object]:
    """Median seconds of `repeats` calls of fn (after one untimed call if `warmup`), and the last result."""
    if warmup:
        fn()
    times, result = [], None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def device_name(device: torch.device) -> str:
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"

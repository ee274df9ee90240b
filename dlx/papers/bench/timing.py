"""Step timers. CUDA kernels run asynchronously, so a step is only over once the device has drained:
every timer synchronizes before reading the clock (a no-op on CPU, where ops return when done)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_steps(step: Callable[[], object], n: int, device: str, budget_s: float | None = None,
               min_n: int = 1) -> list[float]:
    """Wall seconds of each of `n` calls of `step`, each measured until the device is idle. With a
    budget, stop early once `budget_s` seconds have passed and at least `min_n` steps are done."""
    times: list[float] = []
    synchronize(device)
    start = time.perf_counter()
    for _ in range(int(n)):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - t0)
        if budget_s is not None and len(times) >= min_n and time.perf_counter() - start > budget_s:
            break
    return times


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = list(values)
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

"""How many threads torch (and scikit-learn's native pools) may use.

On a shared machine, more OpenMP threads than free cores makes every op wait for a descheduled thread:
small models train several times slower (see docs/benchmarks.md). ``trainer.threads=auto`` (the default)
therefore takes one thread for a model too small to gain from more (a forward pass under ``MIN_FLOPS``
on one training batch), and otherwise the cores that are free right now: the cores this process may run
on, less those other processes keep busy (measured over a fifth of a second from /proc/stat; the
1-minute load average where that is missing), within any cap a sweep sets for its workers
(``DLX_THREADS_CAP``). An integer is used as given; null leaves torch's default (every core).
"""

from __future__ import annotations

import os
import time

CAP_ENV = "DLX_THREADS_CAP"
MIN_FLOPS = 10e6  # forward FLOPs per training batch below which more threads cannot pay for their syncs


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_cores(window: float = 0.2) -> float | None:
    """How many cores other processes keep busy now (this one sleeps while it looks), from /proc/stat."""
    def snapshot():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle0, total0 = snapshot()
        time.sleep(window)
        idle1, total1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def free_cores() -> tuple[int, float]:
    """(cores not busy with other work, how many are busy)."""
    busy = busy_cores()
    if busy is None:
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, usable_cores() - int(round(busy))), busy


FLOP_ROWS = 16  # FLOPs are counted on this many rows of a batch and scaled to the batch (per-row work)


def forward_flops(model, batch) -> float:
    """FLOPs of one forward pass over ``batch`` (torch's FLOP counter on its first FLOP_ROWS rows, scaled
    to the batch: a model's work is per row; inf when it cannot tell)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = batch[0] if isinstance(batch, (tuple, list)) else next(iter(batch.values()))
    rows = len(x) if hasattr(x, "__len__") else 1
    head = x[:FLOP_ROWS] if isinstance(x, torch.Tensor) and rows > FLOP_ROWS else x
    was = model.training
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(head)
        return float(counter.get_total_flops()) * rows / max(len(head) if hasattr(head, "__len__") else 1, 1)
    except Exception:  # a model the counter cannot trace: assume it is big enough to share cores
        return float("inf")
    finally:
        model.train(was)


def choose(setting, model=None, batch=None) -> tuple[int | None, str]:
    """(threads, why) for ``trainer.threads``: an int as given, null = torch's default, auto = the rule
    above (needs the model and one training batch)."""
    if setting is None:
        return None, "torch default"
    if setting != "auto":
        from dlx.config import number

        return number(setting, "trainer.threads (an integer >= 1, auto or null)", lo=1, integer=True), "set"
    flops = forward_flops(model, batch) if model is not None and batch is not None else float("inf")
    if flops < MIN_FLOPS:
        return 1, f"auto: small model ({flops / 1e6:.1f} MFLOP per batch forward)"
    free, busy = free_cores()
    cap = int(os.environ.get(CAP_ENV) or free)
    n = max(1, min(free, cap))
    capped = f", sweep cap {cap}" if os.environ.get(CAP_ENV) else ""
    return n, f"auto: {n} of {usable_cores()} cores ({busy:.1f} busy{capped})"


def apply(threads: int | None) -> None:
    """Set torch's intra-op threads and scikit-learn's native thread pools (None: leave the defaults)."""
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))


def cpu_seconds() -> float:
    """CPU time of this command so far: this process and its finished children (the pool workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

"""How many threads torch (and scikit-learn's native pools) may use.

On a shared machine, more OpenMP threads than free cores makes every op wait for a descheduled thread:
small models train many times slower (see docs/benchmarks.md). ``trainer.threads=auto`` (the default)
therefore takes one thread unless the model does enough work per step to gain from more (a forward pass
of at least ``MIN_FLOPS`` on one training batch), and then no more than the cores that are free: the
cores this process may run on, less the 1-minute load average, within any cap a sweep sets for its
workers (``DLX_THREADS_CAP``). An integer is used as given; null leaves torch's default (every core).
"""

from __future__ import annotations

import os

CAP_ENV = "DLX_THREADS_CAP"
MIN_FLOPS = 40e6  # forward FLOPs per batch below which a second thread was measured to gain nothing


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_cores() -> tuple[int, float]:
    """(cores not busy with other work, the 1-minute load average)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, usable_cores() - int(round(load))), load


def forward_flops(model, batch) -> float:
    """FLOPs of one forward pass over ``batch`` (torch's FLOP counter; 0 when it cannot tell)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = batch[0] if isinstance(batch, (tuple, list)) else next(iter(batch.values()))
    was = model.training
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        return float(counter.get_total_flops())
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
    free, load = free_cores()
    cap = int(os.environ.get(CAP_ENV) or free)
    flops = forward_flops(model, batch) if model is not None and batch is not None else float("inf")
    if flops < MIN_FLOPS:
        return 1, f"auto: small model ({flops / 1e6:.0f} MFLOP per batch forward)"
    n = max(1, min(free, cap))
    return n, f"auto: {n} of {usable_cores()} cores (load {load:.1f}" + (f", sweep cap {cap})" if
                                                                        os.environ.get(CAP_ENV) else ")")


def apply(threads: int | None) -> None:
    """Set torch's intra-op threads and scikit-learn's native thread pools (None: leave the defaults)."""
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))

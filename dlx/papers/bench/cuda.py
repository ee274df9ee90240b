"""CUDA-only measurements of the paper's runtime design (section 5): the caching allocator warming up
over the first iterations, asynchronous execution (Python enqueues kernels and returns long before the
GPU finishes them), and memory that `del` hands back to the cache but not to the driver."""

from __future__ import annotations

import gc
import time

import torch

from dlx.papers.bench.throughput import make_step
from dlx.papers.bench.timing import mean_std, time_steps
from dlx.papers.bench.workloads import workload


def _mem(stage: str, model: str) -> dict:
    torch.cuda.synchronize()
    return {"suite": "cuda", "model": model, "mode": f"memory:{stage}", "unit": "MB allocated",
            "mean": torch.cuda.memory_allocated() / 2**20,
            "reserved_mb": torch.cuda.memory_reserved() / 2**20, "note": ""}


def run_cuda(ccfg, seed: int, device: str = "cuda"):
    """Rows (timings in ms, memory in MB), per-step rows for the first `first_steps` iterations, and
    per-step enqueue / execute rows (rounds.csv: the async_cuda claim pairs them by step).

    Run it before anything else touches the GPU, so the allocator starts empty.
    """
    name = str(ccfg.model)
    w = workload(name)
    torch.cuda.empty_cache()
    rows = [_mem("before", name)]
    torch.manual_seed(seed)
    model, batch, loss_fn, _ = w.make(int(ccfg.get("batch_size") or w.default_batch), device,
                                      torch.Generator().manual_seed(seed))
    rows.append(_mem("model_and_batch", name))
    step = make_step(model, batch, loss_fn, "eager", device)
    first = time_steps(step, int(ccfg.first_steps), device)
    rows.append(_mem("after_training", name))
    rows[-1]["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    enqueue, execute, gpu = [], [], []
    for _ in range(int(ccfg.async_steps)):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        start.record()
        step()
        end.record()
        t1 = time.perf_counter()  # Python is done: every kernel is queued, few have run
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        enqueue.append(t1 - t0)
        execute.append(t2 - t0)
        gpu.append(start.elapsed_time(end) / 1e3)
    del model, batch, step
    gc.collect()
    rows.append(_mem("after_del", name))  # tensors freed: allocated drops, the cache keeps the blocks
    torch.cuda.empty_cache()
    rows.append(_mem("after_empty_cache", name))
    timing = {"first_step": first[:1], "next_steps": first[1:], "enqueue": enqueue, "execute": execute,
              "gpu_time": gpu}
    for mode, values in timing.items():
        mean, std = mean_std(values)
        rows.append({"suite": "cuda", "model": name, "mode": mode, "unit": "ms/step", "mean": 1e3 * mean,
                     "std": 1e3 * std, "n": len(values), "note": ""})
    step_rows = [{"suite": "cuda", "model": name, "mode": "eager", "step": i + 1, "seconds": t,
                  "warmup": True} for i, t in enumerate(first)]
    rounds = [{"suite": "cuda", "model": name, "mode": mode, "round": i + 1, "seconds": t}
              for mode in ("enqueue", "execute") for i, t in enumerate(timing[mode])]
    return rows, step_rows, rounds

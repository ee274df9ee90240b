"""Training throughput of the Table-1-like workloads in four modes: eager, torch.compile,
channels_last and bf16 autocast. A step is forward + loss + backward + SGD update on one fixed
synthetic batch; warm-up steps (where compilation and allocator growth happen) are timed but kept out
of the mean."""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from dlx.errors import DlxError
from dlx.papers.bench.timing import mean_std, time_steps
from dlx.papers.bench.workloads import workload

MODES = ("eager", "compile", "channels_last", "bf16")


def check_modes(modes) -> list[str]:
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise DlxError(f"unknown bench mode '{bad[0]}' (choose from: {', '.join(MODES)})")
    return list(modes)


def skip_reason(w, mode: str, device: str) -> str | None:
    """Why a (workload, mode) cell cannot run here, or None."""
    if mode == "channels_last" and not w.image:
        return "channels_last applies to 4-D image tensors only"
    if mode == "bf16" and str(device).startswith("cuda") and not torch.cuda.is_bf16_supported():
        return "this GPU has no bfloat16 support"
    return None


def make_step(model, batch, loss_fn, mode: str, device: str):
    """A closure running one training step of `model` on `batch` in `mode`."""
    if mode == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        batch = (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    fwd = torch.compile(model) if mode == "compile" else model
    dev_type = str(device).split(":")[0]
    bf16 = lambda: torch.autocast(device_type=dev_type, dtype=torch.bfloat16)
    ctx = bf16 if mode == "bf16" else nullcontext
    model.train()

    def step():
        with ctx():
            loss = loss_fn(fwd, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def measure(name: str, mode: str, device: str, batch: int | None, warmup: int, steps: int, seed: int,
            budget_s: float | None = None):
    """One cell: (result row, per-step seconds including warm-up). Past `budget_s` seconds of timed steps
    the cell stops early (after at least 2) so a slow machine cannot blow the run's time budget."""
    w = workload(name)
    bs = int(batch or w.default_batch)
    row = {"suite": "throughput", "model": name, "mode": mode, "unit": w.unit, "batch": bs,
           "paper_model": w.paper}
    reason = skip_reason(w, mode, device)
    if reason:
        return {**row, "status": "skipped", "note": reason}, []
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, data, loss_fn, items = w.make(bs, device, gen)
    row["params"] = sum(p.numel() for p in model.parameters())
    try:
        step = make_step(model, data, loss_fn, mode, device)
        times = time_steps(step, max(int(warmup), 1), device)  # compile time is not charged to the budget
        times += time_steps(step, int(steps), device, budget_s, min_n=min(2, int(steps)))
    except Exception as err:  # a backend that cannot build here (e.g. no C++ compiler) is a result
        return {**row, "status": "failed",
                "note": f"{type(err).__name__}: {str(err).strip().splitlines()[0][:160]}"}, []
    finally:
        if mode == "compile":
            torch._dynamo.reset()  # the next cell compiles from scratch, its compile time stands alone
    timed = times[max(int(warmup), 1):]
    mean, std = mean_std([items / t for t in timed])
    step_mean, step_std = mean_std(timed)
    row.update(mean=mean, std=std, n=len(timed), step_ms=1e3 * step_mean, step_ms_std=1e3 * step_std,
               first_step_ms=1e3 * times[0], status="ok", note="")
    if mode == "compile":
        # The first call traces, lowers and builds kernels; what it took beyond a steady step is compile time.
        row["compile_s"] = times[0] - step_mean
    return row, times


def _cache(mode: str, cold: bool):
    """A fresh, deleted-afterwards inductor cache for cold compile times; else the user's cache."""
    if mode != "compile" or not cold:
        return nullcontext()
    from torch._inductor.utils import fresh_cache

    return fresh_cache()


def run_throughput(tcfg, device: str, seed: int, log=None):
    """All (model, mode) cells: result rows with a per-model '% of best', and per-step time rows."""
    modes = check_modes(tcfg.modes)
    for name in tcfg.models:
        workload(name)  # fail on a bad name before any timing
    cache = str(tcfg.get("compile_cache", "cold"))
    if cache not in ("cold", "warm"):
        raise DlxError(f"bench.throughput.compile_cache must be cold or warm, got '{cache}'")
    budget = tcfg.get("compile_budget_s")
    warmup = max(int(tcfg.warmup), 1)
    rows, step_rows, compile_spent = [], [], 0.0
    # compile cells last: the cheap modes of every model are measured before the compile budget is spent
    cells = [(n, m) for n in tcfg.models for m in modes if m != "compile"] + \
        [(n, m) for n in tcfg.models for m in modes if m == "compile"]
    for name, mode in cells:
        if mode == "compile" and budget is not None and compile_spent >= float(budget):
            w = workload(name)
            row, times = {"suite": "throughput", "model": name, "mode": mode, "unit": w.unit,
                          "paper_model": w.paper, "status": "skipped",
                          "note": f"compile budget of {float(budget):g} s spent ({compile_spent:.0f} s); "
                                  "raise bench.throughput.compile_budget_s"}, []
        else:
            t0 = time.perf_counter()
            with _cache(mode, cache == "cold"):
                row, times = measure(name, mode, device, tcfg.get("batch_size"), warmup, int(tcfg.steps),
                                     seed, tcfg.get("cell_budget_s"))
            if mode == "compile":
                compile_spent += time.perf_counter() - t0
                row["compile_cache"] = cache
        rows.append(row)
        step_rows += [{"suite": "throughput", "model": name, "mode": mode, "step": i + 1, "seconds": t,
                       "warmup": i < warmup} for i, t in enumerate(times)]
        if log:
            log(row)
    order = {cell: i for i, cell in enumerate((n, m) for n in tcfg.models for m in modes)}
    rows.sort(key=lambda r: order[(r["model"], r["mode"])])
    best: dict[str, float] = {}
    for r in rows:
        if r.get("mean") is not None:
            best[r["model"]] = max(best.get(r["model"], 0.0), r["mean"])
    for r in rows:
        if r.get("mean") is not None:
            r["pct_of_best"] = 100.0 * r["mean"] / best[r["model"]]
    return rows, step_rows

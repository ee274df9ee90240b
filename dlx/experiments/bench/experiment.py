"""`dlx bench`: the PyTorch paper's performance claims (Paszke et al., 2019) measured on dlx's own models
and loop. Suites (bench.suites):

- throughput: Table-1-like small models on synthetic batches in eager / torch.compile / channels_last /
  bf16 autocast modes; mean +- std over timed steps after warm-up, "% of best" per model;
- overhead: dlx's `fit` (bare, and with the CSV log and checkpoint of `dlx train`) and, if installed,
  PyTorch Lightning against a minimal hand-written loop on the same model, data and steps;
- multiprocessing: a tensor in shared memory through torch.multiprocessing vs a pickled numpy array;
- cuda (CUDA only): first-iteration step times from a cold caching allocator, enqueue vs execute time,
  memory before and after `del`.

Writes results.csv (one row per suite x model x mode), step_times.csv (every step, warm-up included) and
summary.json with the machine, threads, load and versions.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv

SUITES = ("throughput", "overhead", "multiprocessing", "cuda", "stacking")
COLUMNS = ["suite", "model", "mode", "unit", "mean", "std", "n", "median", "pct_of_best", "ratio",
           "compile_s", "compile_cache", "step_ms", "step_ms_std", "first_step_ms", "batch", "params",
           "paper_model", "steps", "steps_per_s", "test_error", "bytes", "reserved_mb", "peak_mb", "status",
           "note"]


def cpu_model() -> str:
    """lscpu's 'Model name' (from /proc/cpuinfo), else whatever platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    import numpy
    import torch

    out = {"torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version()}
    try:
        import lightning

        out["lightning"] = lightning.__version__
    except ImportError:
        out["lightning"] = None
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
    return out


def _say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _fmt(row: dict) -> str:
    head = f"{row['suite']} {row['model']} {row['mode']}"
    if row.get("mean") is None:
        return f"{head}: {row.get('status', 'skipped')}: {row.get('note')}"
    extra = f" (compile {row['compile_s']:.1f} s)" if row.get("compile_s") is not None else ""
    return f"{head}: {row['mean']:.4g} +- {row['std']:.2g} {row['unit']}{extra}"


def validate(cfg) -> list[str]:
    """Every bench setting checked before anything is timed: bad input fails in a second, not minutes in."""
    from dlx.experiments.bench.overhead import RUNNERS
    from dlx.experiments.bench.sharing import check_sizes
    from dlx.experiments.bench.throughput import check_modes
    from dlx.experiments.bench.workloads import workload

    b = cfg.bench
    bad = [s for s in b.suites if s not in SUITES]
    if bad:
        raise DlxError(f"unknown bench suite '{bad[0]}' (choose from: {', '.join(SUITES)})")
    check_modes(b.throughput.modes)
    for name in b.throughput.models:
        workload(name)
    if str(b.throughput.get("compile_cache", "cold")) not in ("cold", "warm"):
        raise DlxError("bench.throughput.compile_cache must be cold or warm, "
                       f"got '{b.throughput.compile_cache}'")
    if int(b.throughput.steps) < 1:
        raise DlxError(f"bench.throughput.steps must be >= 1, got {b.throughput.steps}")
    runners = list(b.overhead.runners)
    bad = [r for r in runners if r not in RUNNERS]
    if bad or "hand" not in runners:
        raise DlxError(f"bench.overhead.runners must include hand and come from: {', '.join(RUNNERS)}"
                       + (f" (got '{bad[0]}')" if bad else ""))
    if int(b.overhead.repeats) < 1:
        raise DlxError(f"bench.overhead.repeats must be >= 1, got {b.overhead.repeats}")
    check_sizes(b.multiprocessing.sizes_mb)
    if "stacking" in b.suites:
        from dlx.experiments.bench.stacking import check

        check(b.stacking)
    return list(b.suites)


def run_overhead(cfg) -> list[dict]:
    from dlx.experiments.bench.overhead import overhead_rows, time_overhead

    ocfg = cfg.bench.overhead
    res = time_overhead(cfg, list(ocfg.runners), int(ocfg.repeats),
                        log=lambda rep, t: _say(f"overhead round {rep}: " +
                                                ", ".join(f"{k} {v:.3f} s" for k, v in t.items())))
    return overhead_rows(res, cfg.model.name, cfg.data.name)


def metrics_from(rows: list[dict]) -> dict:
    """The headline numbers for summary.json."""
    m: dict = {}
    for r in rows:
        if r.get("mean") is None:
            continue
        if r["suite"] == "throughput" and r.get("pct_of_best") == 100.0:
            m[f"throughput.{r['model']}"] = r["mean"]
            m[f"best_mode.{r['model']}"] = r["mode"]
        if r["suite"] == "throughput" and r.get("compile_s") is not None:
            m[f"compile_s.{r['model']}"] = r["compile_s"]
        if r["suite"] == "overhead" and r["mode"] != "hand":
            m[f"overhead_ratio.{r['mode']}"] = r["ratio"]
        if r["suite"] == "multiprocessing" and r["mode"] != "shared_tensor":
            m[f"mp_ratio.{r['mode']}.{r['model'].split()[0]}MB"] = r["ratio"]
        if r["suite"] == "stacking" and r["mode"].startswith("stacked"):
            m[f"stacking_ratio.{r['model'].replace(' ', '_')}.S{r['stack']}"] = r["ratio"]
        if r["suite"] == "cuda" and r["mode"] in ("enqueue", "execute", "first_step", "next_steps"):
            m[f"cuda.{r['mode']}_ms"] = r["mean"]
    if "overhead_ratio.dlx" in m:
        m["overhead_ratio"] = m["overhead_ratio.dlx"]
    return m


def run(cfg, run: Run):
    import pandas as pd
    import torch

    from dlx.device import resolve_device

    suites = validate(cfg)
    if cfg.bench.get("threads"):
        torch.set_num_threads(int(cfg.bench.threads))
    device = resolve_device(cfg.get("device", "auto"))
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load_before and load_before[0] > (os.cpu_count() or 1) and torch.get_num_threads() > 1:
        # OpenMP threads wait on each other at every op; when other processes hold the cores, each wait
        # costs a scheduler slice (seen here: 10-60x slower steps), so numbers say more about the load.
        _say(f"the machine is busy (load {load_before[0]:.1f} on {os.cpu_count()} cores) and torch uses "
             f"{torch.get_num_threads()} threads: timings will be noisy; bench.threads=1 is steadier")
    run.summary("running", device=device)
    rows: list[dict] = []
    step_rows: list[dict] = []
    if "cuda" in suites:  # first, so the caching allocator starts empty
        if device.startswith("cuda"):
            from dlx.experiments.bench.cuda import run_cuda

            r, s = run_cuda(cfg.bench.cuda, int(cfg.seed), device)
            rows += r
            step_rows += s
            for row in r:
                _say(_fmt(row))
        else:
            rows.append({"suite": "cuda", "model": str(cfg.bench.cuda.model), "mode": "all",
                         "status": "skipped", "note": f"device is {device}; allocator warm-up, enqueue vs "
                                                      "execute and memory after del need CUDA"})
    if "throughput" in suites:
        from dlx.experiments.bench.throughput import run_throughput

        r, s = run_throughput(cfg.bench.throughput, device, int(cfg.seed), log=lambda row: _say(_fmt(row)))
        rows += r
        step_rows += s
    if "overhead" in suites:
        r = run_overhead(cfg)
        rows += r
        for row in r:
            _say(_fmt(row))
    if "multiprocessing" in suites:
        from dlx.experiments.bench.sharing import check_sizes, run_sharing

        mp = cfg.bench.multiprocessing
        rows += run_sharing(check_sizes(mp.sizes_mb), int(mp.repeats), log=lambda row: _say(_fmt(row)))
    if "stacking" in suites:  # same-shape children stacked vs one by one (dlx/experiments/bench/stacking.py)
        from dlx.experiments.bench.stacking import run_stacking

        rows += run_stacking(cfg.bench.stacking, log=lambda row: _say(_fmt(row)))
    for r in rows:
        r.setdefault("status", "ok" if r.get("mean") is not None else "skipped")
    df = pd.DataFrame(rows)
    df = df[[c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]]
    write_csv(run.path("results.csv"), df)
    write_csv(run.path("step_times.csv"), pd.DataFrame(step_rows, columns=["suite", "model", "mode", "step",
                                                                           "seconds", "warmup"]))
    machine = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
               "interop_threads": torch.get_num_interop_threads(), "platform": platform.platform(),
               "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
               "loadavg_before": load_before,
               "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None}
    run.summary("completed", metrics_from(rows), device=device, suites=suites, machine=machine,
                versions=versions(), claims=claims(rows))
    plot(run.dir)
    return df


def estimate(cfg):
    """`--estimate`: the suites are bounded by their budgets, so this is an upper bound: each throughput
    cell at most its time budget, compilation at most its budget, the overhead rounds timed from one
    training run of the configured model."""
    from dlx.estimate import Cost, rss_mb, time_train, train_cost

    b = cfg.bench
    tp = b.throughput
    cells = len(tp.models) * len([m for m in tp.modes if m != "compile"])
    throughput = cells * float(tp.cell_budget_s or 30) if "throughput" in b.suites else 0.0
    if "throughput" in b.suites and "compile" in tp.modes:
        throughput += float(tp.compile_budget_s or 300)
    overhead = 0.0
    if "overhead" in b.suites:
        run = train_cost(cfg, time_train(cfg)).wall_s
        overhead = run * len(b.overhead.runners) * (int(b.overhead.repeats) + 1)
    mp = len(b.multiprocessing.sizes_mb) * (int(b.multiprocessing.repeats) + 1) * 3 * 0.2 \
        if "multiprocessing" in b.suites else 0.0
    return Cost(throughput + overhead + mp, rss_mb(), 1.0,
                {"throughput_s<=": round(throughput), "overhead_s": round(overhead), "bound": "budgets"})


def claims(rows: list[dict]) -> list[dict]:
    """The PyTorch paper's performance claims as dlx can check them on its own models and loop."""
    from dlx.experiments.claims import claim

    got = [r for r in rows if r.get("mean") is not None]
    paper = "PyTorch within 17% of the fastest framework on six benchmarks (Table 1)"
    ratio = next((r["ratio"] for r in got if r["suite"] == "overhead" and r["mode"] == "dlx"), None)
    out = [claim("runner_overhead", "an eager, Pythonic training loop costs little speed",
                 None if ratio is None else round(ratio, 3), "dlx train / a hand-written loop <= 1.03",
                 paper, holds=None if ratio is None else ratio <= 1.03,
                 why="" if ratio is not None else "the overhead suite did not run")]
    eager = {r["model"]: round(r["pct_of_best"], 1) for r in got
             if r["suite"] == "throughput" and r["mode"] == "eager" and r.get("pct_of_best") is not None}
    out.append(claim("eager_competitive", "plain eager execution is close to the fastest mode",
                     {f"{m} eager % of best": v for m, v in eager.items()} or None,
                     "eager throughput >= 83% of the model's fastest mode (within 17%)", paper,
                     holds=all(v >= 83 for v in eager.values()) if eager else None,
                     why="" if eager else "the throughput suite did not run"))
    mp = [r for r in got if r["suite"] == "multiprocessing" and r["mode"] == "pickled_numpy"]
    big = max(mp, key=lambda r: r.get("bytes") or 0) if mp else None
    out.append(claim("shared_memory", "tensors reach other processes through shared memory, not copies",
                     None if big is None else {big["model"]: f"{big['ratio']:.1f}x faster than pickling"},
                     "a shared-memory tensor round trip beats pickling a numpy array at the largest size",
                     "torch.multiprocessing moves tensors through shared memory (section 5.4)",
                     holds=None if big is None else big["ratio"] > 1,
                     why="" if big is not None else "the multiprocessing suite did not run"))
    cuda = {r["mode"]: r["mean"] for r in got if r["suite"] == "cuda"}
    shown = "enqueue" in cuda and "execute" in cuda
    out.append(claim("async_cuda", "CUDA kernels run asynchronously: Python returns before the GPU is done",
                     {k: round(cuda[k], 3) for k in ("enqueue", "execute")} if shown else None,
                     "enqueue time < half the execute time per step", "asynchronous streams (section 5.2)",
                     holds=cuda["enqueue"] < cuda["execute"] / 2 if shown else None,
                     why="" if shown else "needs a CUDA device"))
    return out


def plot(run_dir: Path) -> list[Path]:
    from dlx.experiments.bench.plots import plot_bench_run
    from dlx.experiments.bench.stacking import plot_stacking

    return plot_bench_run(run_dir) + plot_stacking(run_dir)

"""`dlx bench`: the PyTorch paper's performance claims (Paszke et al., 2019) measured on dlx's own models
and loop. Suites (bench.suites):

- throughput: Table-1-like small models on synthetic batches in eager / torch.compile / channels_last /
  bf16 autocast modes; mean +- std over timed steps after warm-up, "% of best" per model;
- overhead: dlx's `fit` (bare, and with the CSV log and checkpoint of `dlx train`) and, if installed,
  PyTorch Lightning against a minimal hand-written loop on the same model, data and steps;
- multiprocessing: a tensor in shared memory through torch.multiprocessing vs a pickled numpy array;
- cuda (CUDA only): first-iteration step times from a cold caching allocator, enqueue vs execute time,
  memory before and after `del`.

Writes results.csv (one row per suite x model x mode), step_times.csv (every step, warm-up included),
rounds.csv (the seconds of every round of the overhead and multiprocessing suites and every enqueue /
execute step on CUDA, which the claims are decided on) and summary.json with the machine, threads, load,
versions and the claims (each a 95% interval against a line in bench.rules).
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
    from dlx.papers.bench.overhead import RUNNERS
    from dlx.papers.bench.sharing import check_sizes
    from dlx.papers.bench.throughput import check_modes
    from dlx.papers.bench.workloads import workload

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
    if int(b.multiprocessing.repeats) < 1:
        raise DlxError(f"bench.multiprocessing.repeats must be >= 1, got {b.multiprocessing.repeats}")
    check_sizes(b.multiprocessing.sizes_mb)
    check_rules(b.get("rules"))
    if "stacking" in b.suites:
        from dlx.papers.bench.stacking import check

        check(b.stacking)
    return list(b.suites)


def run_overhead(cfg) -> tuple[list[dict], list[dict]]:
    from dlx.papers.bench.overhead import overhead_rounds, overhead_rows, time_overhead

    ocfg = cfg.bench.overhead
    res = time_overhead(cfg, list(ocfg.runners), int(ocfg.repeats),
                        log=lambda rep, t: _say(f"overhead round {rep}: " +
                                                ", ".join(f"{k} {v:.3f} s" for k, v in t.items())))
    name = (cfg.model.name, cfg.data.name)
    return overhead_rows(res, *name), overhead_rounds(res, *name)


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
    round_rows: list[dict] = []  # rounds.csv: per-round (per-step on CUDA) seconds the claims are decided on
    if "cuda" in suites:  # first, so the caching allocator starts empty
        if device.startswith("cuda"):
            from dlx.papers.bench.cuda import run_cuda

            r, s, rd = run_cuda(cfg.bench.cuda, int(cfg.seed), device)
            rows += r
            step_rows += s
            round_rows += rd
            for row in r:
                _say(_fmt(row))
        else:
            rows.append({"suite": "cuda", "model": str(cfg.bench.cuda.model), "mode": "all",
                         "status": "skipped", "note": f"device is {device}; allocator warm-up, enqueue vs "
                                                      "execute and memory after del need CUDA"})
    if "throughput" in suites:
        from dlx.papers.bench.throughput import run_throughput

        r, s = run_throughput(cfg.bench.throughput, device, int(cfg.seed), log=lambda row: _say(_fmt(row)))
        rows += r
        step_rows += s
    if "overhead" in suites:
        r, rd = run_overhead(cfg)
        rows += r
        round_rows += rd
        for row in r:
            _say(_fmt(row))
    if "multiprocessing" in suites:
        from dlx.papers.bench.sharing import check_sizes, run_sharing

        mp = cfg.bench.multiprocessing
        r, rd = run_sharing(check_sizes(mp.sizes_mb), int(mp.repeats), log=lambda row: _say(_fmt(row)))
        rows += r
        round_rows += rd
    if "stacking" in suites:  # same-shape children stacked vs one by one (dlx/papers/bench/stacking.py)
        from dlx.papers.bench.stacking import run_stacking

        rows += run_stacking(cfg.bench.stacking, log=lambda row: _say(_fmt(row)))
    for r in rows:
        r.setdefault("status", "ok" if r.get("mean") is not None else "skipped")
    df = pd.DataFrame(rows)
    df = df[[c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]]
    write_csv(run.path("results.csv"), df)
    write_csv(run.path("step_times.csv"), pd.DataFrame(step_rows, columns=["suite", "model", "mode", "step",
                                                                           "seconds", "warmup"]))
    write_csv(run.path("rounds.csv"), pd.DataFrame(round_rows, columns=["suite", "model", "mode", "round",
                                                                        "seconds", "bytes"]))
    machine = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
               "interop_threads": torch.get_num_interop_threads(), "platform": platform.platform(),
               "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
               "loadavg_before": load_before,
               "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None}
    run.summary("completed", metrics_from(rows), device=device, suites=suites, machine=machine,
                versions=versions(),
                claims=claims(rows, step_rows, round_rows, check_rules(cfg.bench.rules)))
    plot(run.dir)
    return df


def cost(exp, cfg, overrides=(), say=None):
    """The `--estimate` hook: the suites are bounded by their budgets, so this is an upper bound: each
    throughput cell at most its time budget, compilation at most its budget, the overhead rounds timed from
    one training run of the configured model."""
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


def check_rules(rules) -> dict[str, float]:
    """bench.rules as numbers within the bounds the record declares (RULES in dlx/papers/bench)."""
    from dlx.config import numbers
    from dlx.papers.bench import RULES

    return numbers(rules, RULES, "bench.rules")


def _cells(rows, suite: str, mode: str | None = None) -> list[dict]:
    return [r for r in rows if r.get("suite") == suite and (mode is None or r.get("mode") == mode)]


def _seconds(rows, suite: str, model: str, mode: str, key: str = "round") -> dict[int, float]:
    """{round (or step): seconds} of one (suite, model, mode) from rounds.csv / step_times.csv rows."""
    return {int(r[key]): float(r["seconds"]) for r in rows
            if r.get("suite") == suite and r.get("model") == model and r.get("mode") == mode
            and not r.get("warmup", False)}


def _ratios(num: dict[int, float], den: dict[int, float]) -> list[float]:
    """num / den per shared round (or step), in round order."""
    return [num[k] / den[k] for k in sorted(set(num) & set(den)) if den[k] > 0]


def _ordinal(keys: dict[int, float]) -> dict[int, float]:
    """Timed steps renumbered 1..n: two cells' steps pair by their order, whatever their warm-up."""
    return {i + 1: keys[k] for i, k in enumerate(sorted(keys))}


def deciding(tests: dict[str, dict]) -> tuple[str, dict]:
    """The test that decides "every one holds" (direction greater): the one whose interval ends lowest
    when that end is below its line (it fails, so the claim fails), else the one whose interval starts
    lowest (it holds only if all hold; it is inconclusive, or has no interval, otherwise)."""
    with_ci = {k: t for k, t in tests.items() if t["ci"] is not None}
    if with_ci:
        k = min(with_ci, key=lambda k: with_ci[k]["ci"][1])
        if with_ci[k]["verdict"] == "fails":
            return k, with_ci[k]
    no_ci = [k for k, t in tests.items() if t["ci"] is None]
    if no_ci:
        return no_ci[0], tests[no_ci[0]]
    k = min(with_ci, key=lambda k: with_ci[k]["ci"][0])
    return k, with_ci[k]


def claims(rows: list[dict], steps: list[dict], rounds: list[dict], rules: dict) -> list[dict]:
    """The PyTorch paper's performance claims as dlx can check them on its own models and loop, from the
    results rows, the per-step times (step_times.csv) and the per-round times (rounds.csv) alone.

    Every claim is decided by compare() on a 95% t interval over what varies from one measurement to the
    next: rounds paired within one process (runner overhead, multiprocessing), timed steps (throughput,
    CUDA). The lines are bench.rules."""
    from dlx.claims import claim, compare, rule_text

    def decide(id, text, paper, source, what, values, direction, margin, measured, why, note=""):
        if not values:
            line = {"less": "<", "greater": ">"}[direction]
            return claim(id, text, None, f"{what} {line} {margin:g} on its 95% t interval", paper,
                         source=source, why=why)
        t = compare(values, direction=direction, margin=margin)
        return claim(id, text, measured(t), rule_text(t, what=what) + note, paper, test=t, source=source)

    overhead = "an eager, Pythonic training loop costs little speed"
    table1 = "PyTorch within 17% of the fastest framework on six benchmarks (Table 1)"
    # runner_overhead: dlx train / the hand loop per round (the runners of a round take turns: a pair)
    oh = _cells(rounds, "overhead")
    model = oh[0]["model"] if oh else None
    ratios = _ratios(_seconds(rounds, "overhead", model, "dlx"), _seconds(rounds, "overhead", model, "hand"))
    out = [decide("runner_overhead", overhead, table1, "dlx", "dlx train / hand-written loop, per round",
                  ratios, "less", rules["overhead_max"],
                  lambda t: {"dlx train / hand, mean per round": round(t["estimate"], 3), "rounds": t["n"]},
                  "the overhead suite did not run (or had no dlx and hand rounds)")]
    out.append(eager_claim(rows, steps, rules))
    # shared_memory: pickled numpy / shared tensor round trip per round, at the largest size
    mp = _cells(rounds, "multiprocessing")
    size = max(mp, key=lambda r: r.get("bytes") or 0)["model"] if mp else None
    ratios = _ratios(_seconds(rounds, "multiprocessing", size, "pickled_numpy"),
                     _seconds(rounds, "multiprocessing", size, "shared_tensor"))
    out.append(decide("shared_memory", "tensors reach other processes through shared memory, not copies",
                      "torch.multiprocessing moves tensors through shared memory (section 5.4)", "paper",
                      "pickled numpy / shared-memory tensor round trip, per round, at the largest size",
                      ratios, "greater", rules["shared_min"],
                      lambda t: {size: f"{t['estimate']:.1f}x faster than pickling", "rounds": t["n"]},
                      "the multiprocessing suite did not run"))
    # async_cuda: enqueue / execute time per step
    cu = _cells(rounds, "cuda")
    model = cu[0]["model"] if cu else None
    times = {k: _seconds(rounds, "cuda", model, k) for k in ("enqueue", "execute")}
    out.append(decide("async_cuda", "CUDA kernels run asynchronously: Python returns before the GPU is done",
                      "asynchronous streams (section 5.2)", "paper", "enqueue / execute time, per step",
                      _ratios(times["enqueue"], times["execute"]), "less", rules["async_max"],
                      lambda t: {f"{k} ms": round(1e3 * sum(v.values()) / len(v), 3)
                                 for k, v in times.items()},
                      "needs a CUDA device"))
    return out


def eager_claim(rows: list[dict], steps: list[dict], rules: dict) -> dict:
    """eager_competitive: per timed step, eager's throughput / the model's fastest mode's (the same batch,
    so the ratio of their step times), for every model whose eager cell ran; the least favourable model
    decides (see deciding())."""
    from dlx.claims import claim, compare, rule_text

    text = "plain eager execution is close to the fastest mode"
    paper = "PyTorch within 17% of the fastest framework on six benchmarks (Table 1)"
    what = "eager fp32 / the model's fastest mode (throughput), per timed step, for every model"
    tests, pct = {}, {}
    for r in _cells(rows, "throughput", "eager"):
        if r.get("mean") is None:
            continue
        m = r["model"]
        best = max((c for c in _cells(rows, "throughput") if c["model"] == m and c.get("mean") is not None),
                   key=lambda c: c["mean"])
        eager = _ordinal(_seconds(steps, "throughput", m, "eager", key="step"))
        fast = _ordinal(_seconds(steps, "throughput", m, best["mode"], key="step"))
        per_step = _ratios(fast, eager)  # t_best / t_eager = eager throughput / best throughput
        if per_step:
            tests[m] = compare(per_step, direction="greater", margin=rules["eager_min"])
            pct[f"{m} eager % of {best['mode']}"] = round(100 * r["mean"] / best["mean"], 1)
    if not tests:
        return claim("eager_competitive", text, None,
                     f"{what} > {rules['eager_min']:g} on its 95% t interval", paper, source="dlx",
                     why="the throughput suite did not run")
    m, t = deciding(tests)
    return claim("eager_competitive", text, {**pct, "decided by": m},
                 rule_text(t, what=what) + f" (shown: {m}, the least favourable)", paper, test=t,
                 source="dlx")


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.bench.plots import plot_bench_run
    from dlx.papers.bench.stacking import plot_stacking

    return plot_bench_run(run_dir) + plot_stacking(run_dir)

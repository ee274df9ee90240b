"""`--estimate`: what a run will cost before paying for it. Each distinct child shape is built and a few
real training steps and one evaluation are timed on the current device; the run's cost is then those
times scaled by its steps and evaluations (children summed and shared among the sweep's workers), with
the peak memory seen while timing and the disk its checkpoints and tables will take. Nothing is written.
"""

from __future__ import annotations

import json
import math
import os
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass

from dlx.errors import DlxError

TIMED_STEPS = 5  # after 2 warm-up steps
STACK_STEPS = 200  # a stack is timed over a whole epoch when an epoch has at most this many steps
EVAL_BATCHES = 4  # evaluation is timed on this many batches of a large split and scaled to the whole
FIT_SIZES = (10000, 40000)  # a baseline's fit is timed on these many rows: a fixed part and a part per row
FIT_ROUNDS = (5, 20)  # a boosted baseline is timed with these many rounds: its once-only and per-round parts
SCORE_ROWS = 8192  # a baseline's scoring is timed on this many test rows and scaled to every split's rows
ROW_SAMPLE = 16  # a model that fits each row at evaluation (per_row_fit) is timed on this many rows, scaled


class DataMemo:
    """While an estimate runs, each distinct data config is built once: the shapes of a sweep share their
    data (a sweep's children each build it, so every child is still charged the first build's seconds)."""

    def __init__(self, build):
        # charge: every call's first-build seconds (what the children pay); spent: the builds really done
        self.build, self.built, self.charge, self.spent = build, {}, 0.0, 0.0

    def __call__(self, cfg, device="cpu"):
        from omegaconf import OmegaConf

        key = json.dumps([OmegaConf.to_container(cfg, resolve=True), str(device)], sort_keys=True,
                         default=str)
        if key not in self.built:
            t = time.perf_counter()
            self.built[key] = (self.build(cfg, device=device), time.perf_counter() - t)
            self.spent += self.built[key][1]
        bundle, seconds = self.built[key]
        self.charge += seconds
        return bundle


@contextmanager
def shared_data():
    """dlx.data.build_data memoized for the duration (the estimate's children share their data)."""
    import dlx.data

    real = dlx.data.build_data
    if isinstance(real, DataMemo):
        yield real
        return
    memo = dlx.data.build_data = DataMemo(real)
    try:
        yield memo
    finally:
        dlx.data.build_data = real


class _Head:
    """The first ``batches`` batches of a split, for timing an evaluation (scaled by len(split)/len(head))."""

    def __init__(self, split, batch_size: int, batches: int):
        self.split, self.bs, self.k = split, batch_size, batches

    def __len__(self) -> int:
        return min(len(self.split), self.bs * self.k)

    def batches(self, batch_size: int, shuffle: bool = False, generator=None):
        import itertools

        return itertools.islice(self.split.batches(batch_size, shuffle=False), self.k)


@dataclass
class Cost:
    wall_s: float
    peak_mb: float
    disk_mb: float
    detail: dict

    def add(self, other: Cost) -> Cost:
        return Cost(self.wall_s + other.wall_s, max(self.peak_mb, other.peak_mb),
                    self.disk_mb + other.disk_mb, {})


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def shape_key(cfg) -> str:
    """What decides the cost of a training step: model, data, batch, precision, device (not seeds, a model's
    own included, nor lrs)."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True)
    # a seed (of the data's draws, or a model's own, e.g. DeepMatch's lda_seed=${seed}) changes no cost
    data = {k: v for k, v in c.get("data", {}).items() if k != "label_noise" and not str(k).endswith("seed")}
    model = {k: v for k, v in (c.get("model") or {}).items() if not str(k).endswith("seed")}
    key = {"model": model or c.get("model"), "data": data, "batch": c.get("trainer", {}).get("batch_size"),
           "precision": c.get("precision"), "task": c.get("task", {}).get("name"), "device": c.get("device"),
           "baseline": c.get("baseline") if "model" not in c else None}
    return json.dumps(key, sort_keys=True, default=str)


def family(cfg) -> tuple[str, float]:
    """(shape key without data.n_train, the training rows asked for: inf for all): runs of one family are
    timed once, at their largest training set, and the rest derived (``resized``)."""
    from omegaconf import OmegaConf

    if "n_train" not in (cfg.get("data") or {}):
        return shape_key(cfg), math.inf
    n = cfg.data.n_train
    return shape_key(OmegaConf.merge(cfg, {"data": {"n_train": None}})), math.inf if n is None else float(n)


def step_seconds(parts, model, cfg, steps: int = TIMED_STEPS) -> float:
    """Median seconds of one training step (forward, backward, optimizer step) after 2 warm-up steps;
    0 for a model with nothing to train."""
    import torch

    from dlx.train.optim import build_optimizer

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return 0.0
    opt = build_optimizer(params, cfg.optimizer)
    gen = torch.Generator().manual_seed(0)
    batches, times = iter(()), []
    for i in range(steps + 2):
        batch = next(batches, None)
        if batch is None:
            batches = iter(parts.data.train.batches(int(cfg.trainer.batch_size), shuffle=True, generator=gen))
            batch = next(batches)
        if parts.data.augment is not None:
            batch = parts.data.augment(batch, gen)
        t = time.perf_counter()
        with parts.precision.autocast():
            loss = parts.task.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        parts.precision.backward(loss)
        parts.precision.step(opt)
        if parts.device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


TRAIN_ONLY = ("n_train", "train_range")  # data keys that change the training split alone
_EVALS: dict[str, tuple[float, int]] = {}  # eval_key -> (seconds, rows) of a timed evaluation


def eval_key(cfg, split: str) -> str:
    """What decides the cost of evaluating ``split`` (validation or test): the shape without the data keys
    that change only the training split (a learning curve's sizes, a forecaster's training range)."""
    from omegaconf import OmegaConf

    data = cfg.get("data") or {}
    drop = {k: None for k in TRAIN_ONLY if k in data}
    return f"{split}:" + shape_key(OmegaConf.merge(cfg, {"data": drop}) if drop else cfg)


def time_train(cfg, parts=None) -> dict:
    """Seconds per training step and per evaluation, setup seconds, parameters, for one train config
    (``parts``: already built from it; their model takes the timed steps)."""
    import torch

    from dlx.build import build
    from dlx.models.registry import REUSED
    from dlx.train.evaluate import evaluate

    with shared_data() as memo:
        t0, charged, spent, reused = time.perf_counter(), memo.charge, memo.spent, REUSED[0]
        built = parts is None
        parts = parts or build(cfg)
        # the data a memo handed back still costs each child its build: charge the first build's seconds;
        # so does work a model builder reused (a child in a fresh process may redo it)
        data_s = memo.charge - charged if built else 0.0
        setup = time.perf_counter() - t0 - (memo.spent - spent) + data_s + (REUSED[0] - reused)
    model = parts.precision.prepare(parts.model)
    params = [p for p in model.parameters() if p.requires_grad]
    step_s = step_seconds(parts, model, cfg)
    splits = (["train"] if cfg.trainer.get("eval_train", True) else []) + \
        (["val"] if parts.data.val is not None else []) + ["test"]
    bs = int(cfg.trainer.get("eval_batch_size", 2048))
    eval_s, per_split = 0.0, {}
    for s in splits:
        split = parts.data.split(s)
        held = _EVALS.get(eval_key(cfg, s)) if s != "train" else None
        if held is not None and held[1] == len(split):  # this model on this split, timed for another shape
            eval_s += held[0]
            per_split[s] = held
            continue
        head = _Head(split, bs, EVAL_BATCHES) if len(split) > bs * EVAL_BATCHES * 2 else split
        if getattr(parts.model, "per_row_fit", False) and hasattr(split, "take") and len(split) > ROW_SAMPLE:
            # a fit per row (ETS, ARIMA) costs the same in any batch: a seeded sample of rows, scaled
            gen = torch.Generator().manual_seed(0)
            head = split.take(torch.randperm(len(split), generator=gen)[:ROW_SAMPLE].sort().values)
        t = time.perf_counter()
        try:
            evaluate(model, parts.task, head, bs, parts.precision)
        except Exception:  # a task whose metrics need the whole split (ranking groups): time it whole
            head = split
            t = time.perf_counter()
            evaluate(model, parts.task, split, bs, parts.precision)
        seconds = (time.perf_counter() - t) * len(split) / max(len(head), 1)
        eval_s += seconds
        per_split[s] = (seconds, len(split))
        if s != "train":
            _EVALS[eval_key(cfg, s)] = per_split[s]
    peak = torch.cuda.max_memory_allocated() / 2**20 if parts.device.startswith("cuda") else rss_mb()
    return {"setup_s": setup, "data_s": data_s, "step_s": step_s, "eval_s": eval_s, "splits": per_split,
            "params": parts.params, "peak_mb": peak, "n_train": len(parts.data.train), "device": parts.device,
            "trainable": bool(params), **time_writes(model, splits)}


def resized(timing: dict, cfg) -> dict:
    """The timing of a run that differs from a timed one only in data.n_train (a subset of its training
    rows): the same step and data build (a subset is drawn from the same data: nothing is built to price
    it); the model's build scaled by the training rows where it reads them (DeepMatch's topic models, PLS);
    the training split's evaluation scaled by its rows, the other splits' as timed."""
    from dlx.models import needs_train

    n0 = max(int(timing["n_train"]), 1)
    asked = (cfg.get("data") or {}).get("n_train")
    n = min(int(asked), n0) if asked is not None else n0
    model_s = max(timing["setup_s"] - timing["data_s"], 0.0) * (n / n0 if needs_train(cfg.model) else 1.0)
    splits = {s: ((sec * n / n0, n) if s == "train" else (sec, rows))
              for s, (sec, rows) in timing["splits"].items()}
    return {**timing, "setup_s": timing["data_s"] + model_s, "splits": splits, "n_train": n,
            "eval_s": sum(sec for sec, _ in splits.values())}


_WRITES: dict = {}  # the CSV row and the learning-curve figure cost the same whatever the model: timed once


def time_writes(model, splits: list[str]) -> dict:
    """What a train run writes besides training: a metrics.csv row, the checkpoint, the learning curves."""
    import tempfile
    from pathlib import Path

    import pandas as pd

    from dlx.plots.curves import learning_curves
    from dlx.runs import save_torch, write_csv

    row = {"epoch": 1, "step": 1, "lr": 0.1, **{f"{s}_{m}": 0.5 for s in splits for m in ("loss", "error")}}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        save_torch(Path(tmp) / "c.pt", {"model": model.state_dict(), "optimizer": model.state_dict()})
        ckpt_s = time.perf_counter() - t
        if not _WRITES:
            t = time.perf_counter()
            write_csv(Path(tmp) / "m.csv", pd.DataFrame([row] * 20), durable=False)
            _WRITES["csv_s"] = time.perf_counter() - t
            t = time.perf_counter()
            learning_curves(pd.DataFrame([{**row, "epoch": e} for e in range(1, 21)]), Path(tmp) / "c.png")
            _WRITES["plot_s"] = time.perf_counter() - t
    return {"ckpt_s": ckpt_s, **_WRITES}


def train_cost(cfg, timing: dict) -> Cost:
    """One train run's cost from its config and the timing of a run of the same shape."""
    from dlx.train.callbacks import eval_epochs
    from dlx.train.loop import plan_steps

    spe, epochs, total = plan_steps(timing["n_train"], cfg.trainer)
    if not timing["trainable"]:
        epochs = total = 0
    evals = len(eval_epochs(epochs, cfg.trainer.get("eval_every", 1), cfg.trainer.get("eval_points", 0))) or 1
    opt_state = {"sgd": 1, "adam": 2, "adamw": 2}.get(cfg.optimizer.get("name"), 2)
    ckpt_mb = timing["params"] * 4 * (1 + opt_state) / 2**20
    wall = (timing["setup_s"] + total * timing["step_s"] + evals * (timing["eval_s"] + timing["csv_s"])
            + timing["ckpt_s"] + timing["plot_s"])
    return Cost(wall, timing["peak_mb"], ckpt_mb + 0.1 + evals * 0.001,
                {"steps": total, "evaluations": evals, "step_ms": round(1e3 * timing["step_s"], 2)})


_FITS: dict[str, dict] = {}  # shape without data.n_train -> its fit and scoring model (time_fit)


def fit_cost(cfg) -> Cost:
    """A baseline fit: its data's build (as timed), the fit (``time_fit``'s model at the child's training
    rows) and the scoring of every split it evaluates (seconds per row, times their rows). Timed once per
    shape: seeds and training-set sizes do not change how it scales."""
    from omegaconf import OmegaConf

    import dlx.data

    sized = "n_train" in cfg.data and cfg.data.n_train is not None
    full = OmegaConf.merge(cfg, {"data": {"n_train": None}}) if "n_train" in cfg.data else cfg
    with shared_data() as memo:  # a subset is drawn from the whole data: its build prices the subset's too
        charged = memo.charge
        data = dlx.data.build_data(full.data, device="cpu")
        data_s = memo.charge - charged
        key = shape_key(full)
        if key not in _FITS:  # the fit kind's own timing (dlx/kinds/fit/cost.py), through its record
            from dlx.registry import get

            _FITS[key] = get("fit").hook("time_fit")(full, data)
    f = _FITS[key]
    n = min(int(cfg.data.n_train), len(data.train)) if sized else len(data.train)
    test = bool(cfg.get("eval_test", (cfg.get("trainer") or {}).get("eval_test", True)))
    scored = n + (len(data.val) if data.val is not None else 0) + (len(data.test) if test else 0)
    fit_s = f["fixed_s"] + f["row_s"] * n
    return Cost(data_s + fit_s + f["score_s"] * scored, f["peak_mb"], 0.1,
                {"timed": f"fit: {f['fixed_s']:.2f} s + {1e6 * f['row_s']:.1f} us/row (timed on "
                          f"{'/'.join(map(str, f['sizes']))} rows{f['rounds_note']})"})


def time_stack(cfgs: list) -> float:
    """Mean seconds of one training step of these members trained together as one stack (fit_stack), read
    between its steps after 2 warm-up steps, over an epoch boundary (each member's batch order drawn and
    its rows gathered) where an epoch has at most STACK_STEPS steps."""
    from omegaconf import OmegaConf

    from dlx.build import build
    from dlx.sweep.plan import small_enough
    from dlx.sweep.stack import stack_threads
    from dlx.train.loop import plan_steps
    from dlx.train.stacked import fit_stack, member_state

    members, flops, trainer, counted = [], 0.0, None, set()
    for c in cfgs:
        p = build(c)
        spe = plan_steps(len(p.data.train), c.trainer)[0]
        steps = spe + 3 if spe <= STACK_STEPS else TIMED_STEPS + 3
        c = OmegaConf.merge(OmegaConf.create(OmegaConf.to_container(c)),  # not struct: keys may be new
                            {"trainer": {"steps": steps, "eval_points": 0, "eval_every": 10**9,
                                         "check_every": 1, "progress": "none"}})
        trainer = c.trainer
        if shape_key(c) not in counted:  # members of one shape (seeds, lrs) have one member's FLOPs
            counted.add(shape_key(c))
            flops = max(flops, small_enough(p, c)[1])
        members.append(member_state(p.model, p.task, p.data, p.precision, c.trainer, c.optimizer,
                                    int(c.seed)))
    stack_threads(cfgs[0], len(cfgs), flops)  # as the stack's worker will
    marks: list[float] = []

    def mark(*_):
        marks.append(time.perf_counter())
        if len(marks) >= int(trainer.steps):  # timed: the stack's final evaluation is not a step's cost
            raise _Timed

    try:
        fit_stack(members, trainer, on_step=mark)
    except _Timed:
        pass
    return (marks[-1] - marks[2]) / (len(marks) - 3) if len(marks) > 3 else 0.0


class _Timed(Exception):
    """Raised from a timed stack's last step: what follows it (the final evaluation) is not timed."""


def makespan(costs: list[float], workers: int) -> float:
    """When the last of these units ends, each started in order on the first free of ``workers`` (what a
    process pool, or SLURM's array with its parallelism, does)."""
    import heapq

    free = [0.0] * max(1, min(workers, len(costs)))
    for c in costs:
        heapq.heapreplace(free, free[0] + c)
    return max(free) if costs else 0.0


def sweep_hook(exp, cfg, overrides: list[str], say=None) -> Cost:
    """The generic `--estimate` of a sweep experiment (dlx/registry.py: Experiment.cost), its tune=true
    studies first."""
    from dlx.sweep.tuning import enabled

    found = sweep_cost(exp, cfg, [*overrides, "trainer.progress=none"], say)[0]
    if not enabled(cfg):
        return found
    tuning = tuning_cost(exp, cfg, list(overrides), say)
    return Cost(found.wall_s + tuning.wall_s, max(found.peak_mb, tuning.peak_mb), found.disk_mb,
                {**found.detail, **tuning.detail})


def tuning_cost(exp, cfg, overrides: list[str], say=None, price=None) -> Cost:
    """tune=true's studies (dlx/sweep/tuning.py): each model's trials priced as its child (trained on all of
    its training rows and evaluated on test: an upper bound, as a trial holds out tune.val_fraction and
    skips the test split), one study after another with tune.workers trials at a time. ``price(cfg) ->
    Cost`` prices a paper's own kind of child (its cost hook's per-child price)."""
    from dlx.config import compose, number
    from dlx.sweep.tuning import tunables_of

    t = cfg.get("tune") or {}
    trials = int(number(t.get("trials"), "tune.trials", lo=1, integer=True))
    workers = min(int(number(t.get("workers", 1), "tune.workers", lo=1, integer=True)), trials)
    total, peak = 0.0, 0.0
    with shared_data():
        for m in tunables_of(exp, cfg):
            ccfg = compose(exp.name, [*overrides, "trainer.progress=none", *m.overrides])
            if say:
                say(f"estimate: timing the tuning of {m.label}")
            if m.child not in ("train", "fit", "forecast"):
                c = price(ccfg)
            else:
                c = fit_cost(ccfg) if m.child == "fit" else train_cost(ccfg, time_train(ccfg))
            total += c.wall_s * trials / workers
            peak = max(peak, c.peak_mb)
    return Cost(total, peak, 0.0, {"tuning_s": round(total, 1)})


def sweep_cost(exp, cfg, base_overrides: list[str], say=None) -> tuple[Cost, list[dict]]:
    """Every child's cost (one timing per distinct shape), in the units the sweep will run (a child alone,
    or a stack of children timed as one), then the sweep's wall time with its workers (timed on the
    share of the cores each worker of a local pool gets). Each distinct data config is built once."""
    with shared_data():
        return _sweep_units(exp, cfg, base_overrides, say)


def _sweep_units(exp, cfg, base_overrides: list[str], say=None) -> tuple[Cost, list[dict]]:
    from dlx.sweep.plan import plan, setting

    children = exp.children(cfg)
    workers = 1
    launcher = cfg.get("launcher") or {}
    if launcher.get("name") == "local":
        workers = max(1, int(cfg.sweep.get("workers", 1)))
    elif launcher.get("name") == "slurm":
        workers = max(1, int(launcher.get("array_parallelism", 64)))
    units = [[c] for c in children]
    sweep = cfg.get("sweep") or {}
    if launcher.get("name") != "slurm" and len(children) > 1:  # as execute() plans them
        units = plan(children, exp.name, base_overrides, setting(sweep.get("stack", "false")),
                     1 if launcher.get("name") == "inline" else workers, sweep.get("stack_max"))
    if launcher.get("name") == "local" and workers > 1:  # each pool worker gets its share of the cores
        from dlx import threads as thread_rule

        share = max(1, thread_rule.free_cores()[0] // workers)
        saved = os.environ.get(thread_rule.CAP_ENV)
        os.environ[thread_rule.CAP_ENV] = str(share)
        try:
            return _sweep_cost(exp, cfg, base_overrides, children, units, workers, say)
        finally:
            if saved is None:
                os.environ.pop(thread_rule.CAP_ENV, None)
            else:
                os.environ[thread_rule.CAP_ENV] = saved
    return _sweep_cost(exp, cfg, base_overrides, children, units, workers, say)


def _sweep_cost(exp, cfg, base_overrides, children, units, workers: int, say) -> tuple[Cost, list[dict]]:
    from dlx.config import compose

    timings: dict[str, dict | DlxError] = {}
    timed: set[str] = set()
    stacks: dict[tuple, float] = {}
    composed = [[compose(exp.name, [*base_overrides, *c.overrides]) for c in unit] for unit in units]
    largest: dict[str, tuple] = {}  # family -> (rows, run id, config) of its largest training set
    for unit, cfgs in zip(units, composed, strict=True):
        for c, x in zip(unit, cfgs, strict=True):
            fam, n = family(x)
            if c.kind != "fit" and (fam not in largest or n > largest[fam][0]):
                largest[fam] = (n, c.run_id, x)

    def time_one(key: str, ccfg, run_id: str):
        if key not in timings:
            if say:
                say(f"estimate: timing {run_id} ({len(timed) + 1} shapes so far)")
            timed.add(key)
            try:
                timings[key] = time_train(ccfg)
            except DlxError as err:  # the run records this child as failed or skipped at once: no cost
                timings[key] = err
        return timings[key]

    def timing(key: str, ccfg, run_id: str):
        if key not in timings:
            _, big_id, big = largest.get(family(ccfg)[0], (0, run_id, ccfg))
            base = time_one(shape_key(big), big, big_id)
            if key not in timings:  # another training-set size of a timed family
                try:
                    timings[key] = resized(base, ccfg) if isinstance(base, dict) else \
                        time_one(key, ccfg, run_id)
                except DlxError as err:
                    timings[key] = err
        return timings[key]

    rows, total, peak, disk, skipped, unit_costs = [], 0.0, 0.0, 0.0, [], []
    for unit, cfgs in zip(units, composed, strict=True):
        keys = [shape_key(x) for x in cfgs]
        share = None  # a stack's step, per member
        if len(unit) > 1:
            if tuple(keys) not in stacks:
                if say:
                    say(f"estimate: timing a stack of {len(unit)} ({unit[0].run_id}, ...)")
                stacks[tuple(keys)] = time_stack(cfgs)
            share = stacks[tuple(keys)] / len(unit)
        unit_s = 0.0
        for c, ccfg, key in zip(unit, cfgs, keys, strict=True):
            if c.kind == "fit":
                cost = fit_cost(ccfg)
            else:
                t = timing(key, ccfg, c.run_id)
                if isinstance(t, DlxError):
                    skipped.append(f"{c.run_id}: {t}")
                    rows.append({"run_id": c.run_id, "wall_s": 0.0, "skipped": str(t)})
                    continue
                cost = train_cost(ccfg, t if share is None else {**t, "step_s": share})
                if share is not None:
                    cost.detail["stack"] = len(unit)
            rows.append({"run_id": c.run_id, "wall_s": round(cost.wall_s, 2), **cost.detail})
            unit_s += cost.wall_s
            peak, disk = max(peak, cost.peak_mb), disk + cost.disk_mb
        total += unit_s
        unit_costs.append(unit_s)
    if children and len(skipped) == len(children):
        raise DlxError(f"every child stops at once, nothing to estimate; first: {skipped[0]}")
    wall = makespan(unit_costs, workers)
    detail = {"children": len(children), "shapes": len(timed), "workers": workers,
              "child_s_sum": round(total, 1)}
    if any(len(u) > 1 for u in units):
        detail["stacks"] = sum(len(u) > 1 for u in units)
    if skipped:  # e.g. fp8_native on a CPU: the run records them as skipped (or failed) without training
        detail["not timed"] = f"{len(skipped)} that stop at once, e.g. {skipped[0]}"
    return Cost(wall, peak * min(workers, max(len(units), 1)), disk, detail), rows


def describe(cost: Cost) -> str:
    m = cost.wall_s / 60
    secs = f"{cost.wall_s:.1f} s" if cost.wall_s < 10 else f"{cost.wall_s:.0f} s"
    when = secs if m < 2 else f"{m:.1f} min" if m < 120 else f"{m / 60:.1f} h"
    extra = ", ".join(f"{k} {v}" for k, v in cost.detail.items())
    return (f"estimate: {when} wall, peak memory ~{math.ceil(cost.peak_mb)} MB, "
            f"disk ~{math.ceil(cost.disk_mb)} MB" + (f" ({extra})" if extra else ""))

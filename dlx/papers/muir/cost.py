"""`--estimate` for MUiR's children: a child's data, model and schedule live in its part's config
(``synthetic.*`` / ``crossmodal.*``, turned into a train config by ``child_settings``), so the generic
timing of dlx/estimate.py (which builds ``cfg.model`` / ``cfg.data``) cannot build them. ``child_cost``
builds the child exactly as it would run, times a few real joint steps (with a generation open for the
searching methods, so the soft mixing of champion and challengers is paid for) and one evaluation, and
scales them by the child's schedule; a ridge child is timed whole. One timing per child shape (seeds and
noise variants share one), cached in ``timings``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def shape(cfg) -> str:
    """What decides a child's cost: its part, method and task (seeds and noise variants do not)."""
    c = cfg.child
    return json.dumps({"part": c.part, "method": c.method, "task": c.task}, sort_keys=True)


def child_cost(cfg, timings: dict | None = None, cap: int | None = None):
    """The expected cost (dlx.estimate.Cost) of the child run ``cfg`` (a composed muir config with
    ``child.*`` set); nothing is written outside a temporary directory. ``cap``: the cores a sweep worker
    gets (the child's ``trainer.threads=auto`` stays within them, as in the run)."""
    from dlx.estimate import Cost

    timings = {} if timings is None else timings
    key = shape(cfg)
    if cfg.child.method == "stl":
        if key not in timings:
            timings[key] = _time_stl(cfg)
        return Cost(timings[key]["wall_s"], timings[key]["peak_mb"], 0.1, {"timed": "whole ridge fit"})
    if key not in timings:
        timings[key] = _time_trained(cfg, cap)
    return _scale(cfg, timings[key])


def _time_stl(cfg) -> dict:
    from dlx.estimate import rss_mb
    from dlx.papers.muir.child import run_stl
    from dlx.runs import Run

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run_stl(cfg, Run(Path(tmp) / "stl", "muir", exclusive=False))
        return {"wall_s": time.perf_counter() - t, "peak_mb": rss_mb()}


def _time_trained(cfg, cap: int | None = None) -> dict:
    """Setup, one joint step (median of a few) and one evaluation of the child as it would run (with the
    threads the child would choose)."""
    import os

    import torch

    from dlx import threads
    from dlx.estimate import rss_mb, step_seconds, time_writes
    from dlx.models import count_params
    from dlx.papers.muir.child import SEARCHING, build_child, choose_threads
    from dlx.papers.muir.search import AssignmentSearch
    from dlx.precision import build_precision
    from dlx.train.evaluate import evaluate

    t0 = time.perf_counter()
    s, device, data, task, model = build_child(cfg)
    before = os.environ.get(threads.CAP_ENV)
    if cap:
        os.environ[threads.CAP_ENV] = str(cap)
    try:
        choose_threads(s["trainer"].threads, model, data, int(s["trainer"].batch_size))
    finally:
        if cap and before is None:
            os.environ.pop(threads.CAP_ENV)
        elif cap:
            os.environ[threads.CAP_ENV] = before
    setup = time.perf_counter() - t0
    search = None
    if cfg.child.method in SEARCHING:  # a generation open: contested blocks mix 1 + lambda candidates
        search = AssignmentSearch(model.pool, {**s["search"], "burn_in": 0, "generations": 1}, seed=0)
        search.on_start(None)
    parts = SimpleNamespace(data=data, task=task, precision=build_precision({"name": "fp32"}, device),
                            device=device)
    step_s = step_seconds(parts, model, SimpleNamespace(optimizer=s["optimizer"], trainer=s["trainer"]))
    if search is not None:
        search.on_end(None, "completed")
        search.select()
    splits = (["train"] if s["trainer"].get("eval_train", True) else []) + \
        (["val"] if data.val is not None else []) + ["test"]
    t = time.perf_counter()
    with torch.no_grad():
        for split in splits:
            evaluate(model, task, data.split(split), int(s["trainer"].get("eval_batch_size", 2048)),
                     parts.precision)
    eval_s = time.perf_counter() - t
    return {"setup_s": setup, "step_s": step_s, "eval_s": eval_s, "params": count_params(model),
            "peak_mb": rss_mb(), "n_train": len(data.train), **time_writes(model, splits)}


def _scale(cfg, timing: dict):
    """A trained child's cost from its schedule: steps x step time, evaluations, checkpoints."""
    from dlx.estimate import Cost
    from dlx.papers.muir.child import child_settings
    from dlx.train.callbacks import eval_epochs
    from dlx.train.loop import plan_steps

    tr = child_settings(cfg)["trainer"]
    _, epochs, total = plan_steps(timing["n_train"], tr)
    evals = len(eval_epochs(epochs, tr.get("eval_every", 1), tr.get("eval_points", 0)))
    every = int(tr.get("checkpoint_every", 0) or 0)
    ckpts = (epochs // every if every else 0) + 1
    ckpt_mb = timing["params"] * 4 * 3 / 2**20  # weights + Adam's two moments
    wall = (timing["setup_s"] + total * timing["step_s"] + evals * (timing["eval_s"] + timing["csv_s"])
            + ckpts * timing["ckpt_s"] + timing["plot_s"])
    return Cost(wall, timing["peak_mb"], ckpt_mb + 0.1 + evals * 0.001,
                {"steps": total, "evaluations": evals, "step_ms": round(1e3 * timing["step_s"], 2)})


def cost(exp, cfg, overrides=(), say=None):
    """The `--estimate` hook (dlx/registry.py): the children, and with tune=true the studies first (each
    trial priced as the child it tunes)."""
    from dlx.estimate import Cost, tuning_cost
    from dlx.sweep.tuning import enabled

    found = sweep_estimate(exp, cfg, say)
    if not enabled(cfg):
        return found
    timings: dict = {}
    tuning = tuning_cost(exp, cfg, list(overrides), say, price=lambda c: child_cost(c, timings))
    return Cost(found.wall_s + tuning.wall_s, max(found.peak_mb, tuning.peak_mb), found.disk_mb,
                {**found.detail, **tuning.detail})


def sweep_estimate(exp, cfg, say=None):
    """The whole command's cost: every child priced by ``child_cost`` (one timing per shape), summed and
    shared among the sweep's workers as dlx.estimate.sweep_cost does for train children. Settings are
    checked first, as the run would (one line, exit 2)."""
    from omegaconf import OmegaConf

    from dlx import threads
    from dlx.estimate import Cost
    from dlx.papers.muir.experiment import check

    check(cfg)
    base = cfg.copy()
    OmegaConf.update(base, "trainer.progress", "none")
    launcher = cfg.get("launcher") or {}
    workers = 1
    if launcher.get("name") == "local":
        workers = max(1, int(cfg.sweep.get("workers", 1)))
    elif launcher.get("name") == "slurm":
        workers = max(1, int(launcher.get("array_parallelism", 64)))
    cap = max(1, threads.usable_cores() // workers) if launcher.get("name") == "local" else None
    children = exp.children(cfg)
    timings: dict = {}
    total = longest = peak = disk = 0.0
    for c in children:
        ccfg = base.copy()  # the child's config: the sweep sets child.* and seed
        for k, v in c.params.items():
            OmegaConf.update(ccfg, k, v)
        if say and shape(ccfg) not in timings:
            say(f"estimate: timing {c.run_id} ({len(timings) + 1} shapes so far)")
        cost = child_cost(ccfg, timings, cap)
        total += cost.wall_s
        longest = max(longest, cost.wall_s)
        peak, disk = max(peak, cost.peak_mb), disk + cost.disk_mb
    wall = max(total / workers, longest) if children else 0.0
    return Cost(wall, peak * min(workers, max(len(children), 1)), disk,
                {"children": len(children), "shapes": len(timings), "workers": workers,
                 "child_s_sum": round(total, 1)})

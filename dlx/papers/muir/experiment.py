"""MUiR (Meyerson & Miikkulainen, NeurIPS 2019): one command, two parts, every cell a child run.

1. Synthetic (Kang et al. 2011 style, dlx/data/multitask.py): 30 linear tasks in 3 groups, clean and noisy;
   single-task ridge, MUiR (20 x 1 blocks, c = 1, the search on), MUiR with the true grouping fixed
   (oracle) and with a random fixed assignment; test RMSE over seeds and how well the found assignment
   recovers the groups (adjusted Rand index).
2. Cross-modal: digits CNN (vision), character LSTM on the pydoc topics (language) and a DeepBind-style
   1-D CNN on planted DNA motifs (genomics); each task alone (plain architecture) and all three on one pool
   of 16 x 16 hypermodules (c = 4) with the search on; per-task metric and how many modules are shared
   across tasks and modalities.

Steps: check every setting and build every model once (bad input is one line, before any write) -> the
children (dlx.sweep: resumable with --name, parallel with sweep.workers) -> tables, claims, figures.
"""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run

PARTS = ("synthetic", "crossmodal")
METHODS = {"synthetic": ("stl", "muir", "oracle", "random"), "crossmodal": ("alone", "alone_hyper", "shared")}


def _seeds(cfg, part: str) -> int:
    from dlx.config import number

    return number(cfg[part].seeds, f"{part}.seeds", lo=1, integer=True)


def check(cfg, overrides=()) -> None:
    """Every setting of the parts that run, and every model built once on its data (block sizes that do not
    divide a layer, c < 0, lambda < 1 ... stop here, before the run directory exists)."""
    from omegaconf import OmegaConf

    from dlx.config import name_list
    from dlx.data import build_data
    from dlx.papers.muir.cells import own_overrides, tasks_of
    from dlx.papers.muir.child import child_settings

    parts = name_list(cfg.parts, list(PARTS), "parts", "part")
    if not parts:
        raise DlxError("parts is empty: choose synthetic, crossmodal or both")
    for part in parts:
        methods = name_list(cfg[part].methods, list(METHODS[part]), f"{part}.methods", "method")
        if not methods:
            raise DlxError(f"{part}.methods is empty (choose from: {', '.join(METHODS[part])})")
        _seeds(cfg, part)
        if part == "synthetic":
            noise = cfg.synthetic.noise
            if not noise or any(not isinstance(v, (int, float)) or v < 0 for v in noise.values()):
                raise DlxError("synthetic.noise must map variant names to noise sds >= 0, e.g. {clean: 0.0}")
            if not name_list(cfg.synthetic.variants, list(noise), "synthetic.variants", "variant"):
                raise DlxError(f"synthetic.variants is empty (choose from: {', '.join(noise)})")
        data = None
        for method in methods:
            if method == "stl":
                from dlx.config import positive_floats

                positive_floats(cfg.synthetic.stl_alphas, "synthetic.stl_alphas")
                continue
            alone = method.startswith("alone")
            probe = OmegaConf.merge(cfg, {"child": {"part": part, "method": method,
                                                    "task": tasks_of(cfg)[0] if alone else None,
                                                    "noise": cfg.synthetic.variants[0] if part == "synthetic"
                                                    else None}})
            try:  # with the method's own settings (<part>.settings), as its children run
                own = own_overrides(cfg, part, method, probe.child.task)
                probe = OmegaConf.merge(probe, OmegaConf.from_dotlist(own)) if own else probe
                s = child_settings(probe)
                if data is None:  # once per part: every method trains on (a selection of) the same tasks
                    data = build_data(OmegaConf.merge(s["data"], {"select": cfg[part].data.get("select")}))
                _build(s, data)
            except DlxError as err:
                raise DlxError(f"{part}: {err}") from None
    from dlx.papers.muir.cells import cells, refuse_shadowed

    refuse_shadowed(cfg, overrides, cells(cfg))


def _build(s, data) -> None:
    """Build the child's task and model on the CPU (what a child would refuse, refused now); an alone
    method's model sees each selected task's own Meta."""
    import copy

    from dlx.models import build_model
    from dlx.tasks import build_task
    from dlx.train.loop import check_settings

    meta = data.meta
    select = s["data"].get("select")
    if select is not None:
        meta = copy.copy(meta)
        meta.extra = {**meta.extra, "tasks": {k: v for k, v in meta.extra["tasks"].items() if k in select}}
    build_task(s["task"], meta)
    build_model(s["model"], meta)
    check_settings(s["trainer"], s["optimizer"], int(s["data"].epoch_examples))


def children(cfg):
    from dlx.papers.muir.cells import child_overrides, child_params, tasks_of
    from dlx.sweep.grid import Child, run_id

    def child(part, method, task, noise, seed) -> Child:
        params = child_params(part, method, task, noise, seed)
        return Child(run_id(params), child_overrides(cfg, params), params, kind="muir")

    kids = []
    parts = list(cfg.parts)
    if "crossmodal" in parts:  # the longest children first, so the pool's workers finish together
        for seed in range(_seeds(cfg, "crossmodal")):
            for method in sorted(cfg.crossmodal.methods, key=lambda m: m != "shared"):
                tasks = tasks_of(cfg) if method.startswith("alone") else [None]
                for task in tasks:
                    kids.append(child("crossmodal", method, task, None, seed))
    if "synthetic" in parts:
        order = sorted(cfg.synthetic.methods, key=lambda m: m == "stl")
        for method in order:
            for noise in cfg.synthetic.variants:
                for seed in range(_seeds(cfg, "synthetic")):
                    kids.append(child("synthetic", method, None, noise, seed))
    return kids


# `dlx reproduce muir tune=true` (dlx/papers/muir/tuning.py): the studies, and the hooks the tune kind calls
# for a trial that is a MUiR child
from dlx.papers.muir.tuning import tunables as tunables  # noqa: E402
from dlx.papers.muir.tuning import tune_objective as tune_objective  # noqa: E402
from dlx.papers.muir.tuning import tune_trial_overrides as tune_trial_overrides  # noqa: E402
from dlx.papers.muir.tuning import tune_validation as tune_validation  # noqa: E402


def run(cfg, run: Run):
    """One child of the sweep (``child.part`` set): its cell. The command itself is the sweep."""
    if cfg.child.part is None:
        raise DlxError("a MUiR run is one cell of `dlx reproduce muir` (child.part is set by the sweep)")
    import pandas as pd

    from dlx.papers.muir import child

    with run.recording():
        summary = child.run(cfg, run)
    m = summary.get("metrics", {})
    return pd.DataFrame([{"part": cfg.child.part, "setting": cfg.child.noise or cfg.child.task or "all",
                          "method": cfg.child.method, "metric": f"test {k[5:]}", "ours": f"{v:.4g}"}
                         for k, v in m.items() if k.startswith("test_") and "." not in k])


def finalize(cfg, run: Run, children):
    import warnings

    import pandas as pd

    from dlx.papers.muir import analysis
    from dlx.sweep import collect
    from dlx.sweep.driver import finish
    from dlx.threads import cpu_seconds

    with warnings.catch_warnings():  # collect inserts the grid columns into wide per-task metric tables
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        results, curves = collect(run.dir, children)
    tables = analysis.child_tables(run.dir, children)
    results = analysis.tidy(results)
    synth = analysis.synthetic_table(results) if "synthetic" in set(results.part) else None
    cross = analysis.crossmodal_table(results) if "crossmodal" in set(results.part) else None
    claims = analysis.claims(results, cfg.muir.rules, control=not cfg.synthetic.data.get("shared", True))
    shown = analysis.comparison(synth, cross, results)
    out = {"search": tables["search"], "assignment": tables["assignment"], "comparison": shown}
    if synth is not None:
        out["synthetic"] = synth
    if cross is not None:
        out["crossmodal"] = cross
    metrics = analysis.headline_metrics(synth, cross, results)
    finish(run, results, metrics, curves=analysis.tidy_curves(curves), tables=out, claims=claims,
           children=len(children), children_wall_s=round(float(results.wall_s.fillna(0).sum()), 1),
           cpu_s=round(cpu_seconds(), 1))
    return shown


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.muir.plots import plot_all

    return plot_all(Path(run_dir))

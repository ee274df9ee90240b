"""The MUiR figures, drawn from the sweep's tables alone (assignment.csv, search.csv, curves.csv):

* muir_assignment.png: which hypermodule each task's locations use at the end (task x module counts), for
  the synthetic MUiR runs (seed 0; 3 blocks when the groups are found) and the cross-modal shared run.
* muir_modules.png: the number of distinct hypermodules in use vs generation.
* muir_curves.png: each cross-modal task's test metric vs training step, alone and shared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlx.papers.muir.analysis import LABELS
from dlx.plots import band, figure, heatmap, plain_log_ticks, read_table, save, style


def plot_all(run_dir: Path) -> list[Path]:
    run_dir = Path(run_dir)
    if not (run_dir / "results.csv").is_file():  # a child run: the sweep draws the figures
        return []
    out = []
    assignment, search, curves = (read_table(run_dir / f"{n}.csv")
                                  for n in ("assignment", "search", "curves"))
    if assignment is not None:
        out.append(plot_assignment(assignment, run_dir / "muir_assignment.png"))
    if search is not None:
        out.append(plot_modules(search, run_dir / "muir_modules.png"))
    if curves is not None and "part" in curves and (curves.part == "crossmodal").any():
        out.append(plot_curves(curves[curves.part == "crossmodal"], run_dir / "muir_curves.png"))
    return [p for p in out if p is not None]


def _counts(df: pd.DataFrame) -> pd.DataFrame:
    """task x module location counts; modules ordered by the first task that uses them most."""
    t = pd.crosstab(df.task, df.module)
    t = t.loc[sorted(t.index, key=lambda s: (s[0] != "v", s))] if "vision" in t.index else t.sort_index()
    order = sorted(t.columns, key=lambda m: (int(np.argmax(t[m].to_numpy())), -int(t[m].sum())))
    t = t[order]
    t.columns = [str(c) for c in t.columns]
    return t


def plot_assignment(assignment: pd.DataFrame, path: Path) -> Path | None:
    panels = []
    syn = assignment[(assignment.part == "synthetic") & (assignment.method == "muir")]
    for noise in sorted(syn.noise.dropna().unique()):
        cell = syn[syn.noise == noise]
        first = cell.seed.min()
        panels.append((f"synthetic, {noise} (seed {int(first)})", cell[cell.seed == first]))
    cm = assignment[(assignment.part == "crossmodal") & (assignment.method == "shared")]
    if len(cm):
        panels.append((f"cross-modal, one pool (seed {int(cm.seed.min())})", cm[cm.seed == cm.seed.min()]))
    if not panels:
        return None
    fig, axes = figure(len(panels), cols=len(panels), size=(5.2, 4.6))
    for ax, (title, df) in zip(axes, panels, strict=True):
        counts = _counts(df)
        heatmap(ax, counts, label="locations", cmap="Blues", xlabel="hypermodule", ylabel="task")
        style(ax, title=f"{title}: {counts.shape[1]} modules in use", legend=False)
        ax.grid(False)
    return save(fig, path, "Which hypermodule each task uses at the end of the search")


def plot_modules(search: pd.DataFrame, path: Path) -> Path | None:
    groups = []
    if "noise" in search:
        syn = search[search.part == "synthetic"]
        groups += [(f"synthetic, {n}", syn[syn.noise == n]) for n in sorted(syn.noise.dropna().unique())]
    cm = search[search.part == "crossmodal"]
    if len(cm):
        groups.append(("cross-modal, one pool", cm))
    if not groups:
        return None
    fig, axes = figure(2 if len(cm) and len(groups) > 1 else 1, size=(6.0, 4.0))
    for label, df in groups:
        ax = axes[-1] if label.startswith("cross") and len(axes) > 1 else axes[0]
        stats = df.groupby("generation").modules_in_use.agg(["mean", "min", "max"]).reset_index()
        band(ax, stats.generation, stats["mean"], stats["min"], stats["max"], label=f"{label} (mean, min-max "
             f"over {df.seed.nunique()} seeds)", style="-", ms=0)
    for ax in axes:
        style(ax, xlabel="generation", ylabel="distinct hypermodules in use")
    if groups[0][0].startswith("synthetic"):
        axes[0].axhline(3, color="#999", ls=":", lw=1)
    return save(fig, path, "Hypermodules in use during the search (the synthetic set has 3 true groups)")


def plot_curves(curves: pd.DataFrame, path: Path) -> Path | None:
    specs = [(t, m) for t, m in (("vision", "error"), ("language", "perplexity"), ("genomics", "mse"))
             if f"{t}_{m}" in curves]
    if not specs:
        return None
    fig, axes = figure(len(specs), size=(4.6, 3.6))
    for ax, (task, metric) in zip(axes, specs, strict=True):
        col = f"{task}_{metric}"
        for method in ("alone", "alone_hyper", "shared"):
            df = curves[(curves.method == method) & curves[col].notna()]
            if method.startswith("alone") and "task" in df:
                df = df[df.task == task]
            if not len(df):
                continue
            scale = 100.0 if metric == "error" else 1.0
            stats = df.groupby("step")[col].agg(["mean", "min", "max"]).reset_index()
            band(ax, stats.step, scale * stats["mean"], scale * stats["min"], scale * stats["max"],
                 label=LABELS[method], ms=2)
        ylabel = f"test {metric}" + (" (%)" if metric == "error" else "")
        style(ax, title=task, xlabel="joint training step", ylabel=ylabel, logy=metric == "perplexity")
        if metric == "perplexity":
            plain_log_ticks(ax)
    return save(fig, path, "Cross-modal tasks: each alone vs all three sharing one pool")

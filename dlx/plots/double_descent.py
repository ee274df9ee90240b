"""Double-descent figures, drawn from results.csv and curves.csv alone."""

from __future__ import annotations

import json
from pathlib import Path

from dlx.plots import pyplot, save


def _label(noise, n) -> str:
    return f"noise {100 * noise:g}%" + ("" if n != n or n is None else f", n={int(n)}")


def error_vs_width(results, analysis: dict, path: Path, title: str) -> Path:
    """Test (solid) and train (dashed) error vs width, mean +- std over seeds, threshold marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ok = results[results.status == "completed"]
    for i, ((noise, n), g) in enumerate(ok.groupby(["label_noise", "n_train"], dropna=False)):
        color = f"C{i}"
        stats = g.groupby("width")[["test_error", "train_error"]].agg(["mean", "std"]).fillna(0).sort_index()
        w = stats.index.to_numpy()
        for col, style in (("test_error", "-"), ("train_error", "--")):
            mean, std = 100 * stats[(col, "mean")], 100 * stats[(col, "std")]
            ax.plot(w, mean, style, color=color, marker="o" if col == "test_error" else None, ms=3,
                    label=f"{col.split('_')[0]} ({_label(noise, n)})")
            ax.fill_between(w, mean - std, mean + std, color=color, alpha=0.15, lw=0)
        key = f"noise={noise:g},n={int(n) if n == n else 'all'}"
        curve = analysis.get("curves", {}).get(key, {})
        if curve.get("threshold_width"):
            ax.axvline(curve["threshold_width"], color=color, ls=":", lw=1.2)
            ax.text(curve["threshold_width"], ax.get_ylim()[1] * 0.98, " interpolation\n threshold",
                    color=color, va="top", fontsize=7)
    ax.set(xscale="log", xlabel="model width", ylabel="error (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, path)
    return path


def heatmap(curves, path: Path, title: str) -> Path:
    """Width x epoch heatmap of seed-mean test error for the noisiest full-data setting."""
    import numpy as np

    plt = pyplot()
    sub = curves[curves.label_noise == curves.label_noise.max()]
    sub = sub[sub.n_train == sub.n_train.max()]
    table = sub.pivot_table(index="width", columns="epoch", values="test_error", aggfunc="mean").sort_index()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    mesh = ax.pcolormesh(np.arange(table.shape[1] + 1), np.arange(table.shape[0] + 1), 100 * table.values,
                         cmap="viridis", shading="flat")
    ax.set_xticks(np.arange(table.shape[1]) + 0.5, [str(e) for e in table.columns], rotation=90, fontsize=7)
    ax.set_yticks(np.arange(table.shape[0]) + 0.5, [str(w) for w in table.index], fontsize=7)
    ax.set(xlabel="epoch (log-spaced evaluations)", ylabel="model width", title=title)
    fig.colorbar(mesh, ax=ax, label="test error (%)")
    save(fig, path)
    return path


def epochwise(curves, analysis: dict, path: Path, title: str) -> Path:
    """Test error vs epoch for a small, the critical (peak) and a large width."""
    plt = pyplot()
    sub = curves[curves.label_noise == curves.label_noise.max()]
    sub = sub[sub.n_train == sub.n_train.max()]
    widths = sorted(sub.width.unique())
    peak = analysis.get("main", {}).get("peak_width") or widths[len(widths) // 2]
    picks = {"small": widths[0], "critical": peak, "large": widths[-1]}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, w in picks.items():
        m = sub[sub.width == w].groupby("epoch")[["test_error", "train_error"]].mean()
        line, = ax.plot(m.index, 100 * m.test_error, marker="o", ms=3, label=f"{name} (width {w}) test")
        ax.plot(m.index, 100 * m.train_error, "--", color=line.get_color(), lw=1, label=f"{name} train")
    ax.set(xscale="log", xlabel="epoch", ylabel="error (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, path)
    return path


def samplewise(results, path: Path, title: str) -> Path:
    """Test error vs width, a line per training-set size (noisiest setting)."""
    plt = pyplot()
    ok = results[(results.status == "completed") & (results.label_noise == results.label_noise.max())]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n, g in ok.groupby("n_train"):
        m = g.groupby("width").test_error.agg(["mean", "std"]).fillna(0).sort_index()
        ax.errorbar(m.index, 100 * m["mean"], yerr=100 * m["std"], marker="o", ms=3, capsize=2,
                    label=f"n={n}")
    ax.set(xscale="log", xlabel="model width", ylabel="test error (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, path)
    return path


def plot_sweep(run_dir: Path) -> list[Path]:
    import pandas as pd

    from dlx.errors import DlxError

    if not (run_dir / "results.csv").is_file():
        raise DlxError(f"{run_dir / 'results.csv'} not found: the sweep has not collected its results")
    results = pd.read_csv(run_dir / "results.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    analysis = summary.get("analysis", {})
    what = f"{summary.get('model', '')} on {summary.get('data', '')}".strip()
    paths = [error_vs_width(results, analysis, run_dir / "error_vs_width.png", f"Double descent: {what}")]
    curves_csv = run_dir / "curves.csv"
    if curves_csv.is_file() and curves_csv.stat().st_size > 1:
        curves = pd.read_csv(curves_csv)
        if not curves.empty:
            paths.append(heatmap(curves, run_dir / "heatmap_width_epoch.png", f"Test error: {what}"))
            paths.append(epochwise(curves, analysis, run_dir / "epochwise.png", f"Epoch-wise: {what}"))
    if results.n_train.nunique() > 1:
        paths.append(samplewise(results, run_dir / "samplewise.png", f"Sample-wise: {what}"))
    return paths

"""Batch-normalization figures, drawn from results.csv, curves.csv, relative_loss.csv, activations.csv
and gradients.csv alone."""

from __future__ import annotations

import json
from pathlib import Path

from dlx.plots import pyplot, save

STYLE = {True: ("C0", "with BN"), False: ("C3", "without BN")}


def accuracy_vs_lr(results, path: Path, title: str) -> Path:
    """Seed-mean final test accuracy vs lr per network; every diverged run an 'x' at the bottom."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for bn, (color, label) in STYLE.items():
        g = results[results.bn == bn]
        if not len(g):
            continue
        ok = g[~g.diverged].groupby("lr").test_acc.agg(["mean", "min", "max"]).sort_index()
        ax.plot(ok.index, 100 * ok["mean"], "-o", color=color, ms=4, label=label)
        ax.fill_between(ok.index, 100 * ok["min"], 100 * ok["max"], color=color, alpha=0.15, lw=0)
        bad = g[g.diverged]
        if len(bad):
            ax.scatter(bad.lr, [0.0] * len(bad), marker="x", color=color, s=50, zorder=3,
                       label=f"{label}: diverged")
    ax.set(xscale="log", xlabel="learning rate", ylabel="final test accuracy (%)", ylim=(-4, 102),
           title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save(fig, path)
    return path


def training_curves(curves, picks: list[tuple[bool, float]], path: Path, title: str) -> Path:
    """Train loss and test accuracy vs epoch for the picked (bn, lr) runs (seed mean)."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (bn, lr), (ls, color) in zip(picks, [("-", "C0"), ("--", "C3"), ("-", "C2")], strict=False):
        g = curves[(curves.bn == bn) & (curves.lr == lr)]
        if not len(g):
            continue
        m = g.groupby("epoch")[["train_loss", "test_accuracy"]].mean()
        label = f"{STYLE[bn][1]}, lr={lr:g}"
        a1.plot(m.index, m.train_loss, ls, color=color, label=label)
        a2.plot(m.index, 100 * m.test_accuracy, ls, color=color, label=label)
    a1.set(yscale="log", xlabel="epoch", ylabel="training loss")
    a2.set(xlabel="epoch", ylabel="test accuracy (%)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)
    return path


def relative_loss(rel, path: Path, title: str) -> Path:
    """Median over the first batches of L(theta - eta g) / L(theta) vs eta (log-log); 1 = no change."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for bn, (color, label) in STYLE.items():
        g = rel[rel.bn == bn]
        if not len(g):
            continue
        ratio = g.assign(ratio=g.ratio.replace(np.inf, np.nan)).groupby("eta").ratio
        med = ratio.median()
        ax.plot(med.index, med.values, "-o", color=color, ms=4, label=label)
        ax.fill_between(med.index, ratio.min().values, ratio.max().values, color=color, alpha=0.15, lw=0)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="step size η along -∇L (one step)",
           ylabel="relative loss L(θ-ηg) / L(θ)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save(fig, path)
    return path


def activations(act, path: Path, title: str) -> Path:
    """Per-layer mean |channel mean| and channel std at initialization (log scale)."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for bn, (color, label) in STYLE.items():
        g = act[act.bn == bn].sort_values("layer")
        a1.plot(g.layer, g.abs_mean, "-o", color=color, ms=3, label=label)
        a2.plot(g.layer, g["std"], "-o", color=color, ms=3, label=label)
    a1.set(yscale="log", xlabel="layer (stem, then residual blocks)", ylabel="mean |channel mean|")
    a2.set(yscale="log", xlabel="layer (stem, then residual blocks)", ylabel="mean channel std")
    for a in (a1, a2):
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)
    return path


def gradients(grad, path: Path, title: str) -> Path:
    """Histogram of a middle conv layer's weight gradients at initialization, per network."""
    import numpy as np

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    edges = np.linspace(grad.grad.min(), grad.grad.max(), 121)  # shared bins: widths are comparable
    for bn, (color, label) in STYLE.items():
        g = grad[grad.bn == bn]
        if not len(g):
            continue
        axes[0].hist(g.grad, bins=edges, color=color, alpha=0.6, label=f"{label} ({g.layer.iloc[0]})")
        a = np.abs(g.grad.to_numpy())
        a = a[a > 0]
        if len(a):
            bins = np.logspace(np.log10(a.min()), np.log10(a.max()), 60)
            axes[1].hist(a, bins=bins, color=color, alpha=0.6, label=label)
    axes[0].set(xlabel="gradient", ylabel="count", yscale="log")
    axes[1].set(xscale="log", yscale="log", xlabel="|gradient|", ylabel="count")
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)
    return path


def curve_picks(summary: dict) -> list[tuple[bool, float]]:
    """(BN, small lr), (no BN, small lr), (BN, large lr), both lrs as the analysis chose them."""
    m = summary.get("metrics", {})
    small, large = m.get("small_lr"), m.get("large_lr") or m.get("bn_best_lr")
    picks = [(True, small), (False, small), (True, large)]
    return [(bn, float(lr)) for bn, lr in picks if lr is not None]


def plot_all(run_dir: Path) -> list[Path]:
    import pandas as pd

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    name = f"{summary.get('model', '')}{summary.get('depth') or ''} on {summary.get('data', '')}"
    out = []
    results = pd.read_csv(run_dir / "results.csv")
    if len(results):
        out.append(accuracy_vs_lr(results, run_dir / "accuracy_vs_lr.png", f"Test accuracy vs lr: {name}"))
    curves_path = run_dir / "curves.csv"
    if curves_path.is_file() and curves_path.stat().st_size > 1:
        try:
            curves = pd.read_csv(curves_path)
        except pd.errors.EmptyDataError:
            curves = pd.DataFrame()
        if len(curves) and curve_picks(summary):
            out.append(training_curves(curves, curve_picks(summary), run_dir / "training_curves.png",
                                       f"Training curves: {name}"))
    init_figures = (("relative_loss.csv", relative_loss, "relative_loss.png", "Relative loss at init"),
                    ("activations.csv", activations, "activations.png", "Activations at init"),
                    ("gradients.csv", gradients, "gradient_histogram.png", "Middle-layer gradients at init"))
    for csv, fn, png, title in init_figures:
        if (run_dir / csv).is_file():
            out.append(fn(pd.read_csv(run_dir / csv), run_dir / png, f"{title}: {name}"))
    return out

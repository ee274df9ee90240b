"""Batch-normalization figures, drawn from results.csv, curves.csv, relative_loss.csv, activations.csv
and gradients.csv alone."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import band, figure, integer_ticks, read_table, save, style

STYLE = {True: ("C0", "with BN"), False: ("C3", "without BN")}


def accuracy_vs_lr(results, path: Path, title: str) -> Path:
    """Seed-mean final test accuracy vs lr per network (band: min..max over seeds); every diverged run an
    'x' at the bottom."""
    fig, (ax,) = figure(1)
    for bn, (color, label) in STYLE.items():
        g = results[results.bn == bn]
        if not len(g):
            continue
        ok = g[~g.diverged].groupby("lr").test_acc.agg(["mean", "min", "max"]).sort_index()
        band(ax, ok.index, 100 * ok["mean"], 100 * ok["min"], 100 * ok["max"], label=label, color=color, ms=4)
        bad = g[g.diverged]
        if len(bad):
            ax.scatter(bad.lr, [0.0] * len(bad), marker="x", color=color, s=50, zorder=3,
                       label=f"{label}: diverged")
    style(ax, title=title, xlabel="learning rate", ylabel="final test accuracy (%)", logx=True, legend_size=8,
          ylim=(-4, 102))
    return save(fig, path)


def training_curves(curves, picks: list[tuple[bool, float]], path: Path, title: str) -> Path:
    """Train loss and test accuracy vs epoch for the picked (bn, lr) runs (seed mean)."""
    fig, (a1, a2) = figure(2, size=(5, 3.8))
    for (bn, lr), (ls, color) in zip(picks, [("-", "C0"), ("--", "C3"), ("-", "C2")], strict=False):
        g = curves[(curves.bn == bn) & (curves.lr == lr)]
        if not len(g):
            continue
        m = g.groupby("epoch")[["train_loss", "test_accuracy"]].mean()
        label = f"{STYLE[bn][1]}, lr={lr:g}"
        band(a1, m.index, m.train_loss, label=label, color=color, style=ls)
        band(a2, m.index, 100 * m.test_accuracy, label=label, color=color, style=ls)
    style(a1, xlabel="epoch", ylabel="training loss", logy=True, legend_size=8)
    style(a2, xlabel="epoch", ylabel="test accuracy (%)", legend_size=8)
    for a in (a1, a2):
        integer_ticks(a)
    return save(fig, path, title=title, title_size=12)


def relative_loss(rel, path: Path, title: str) -> Path:
    """Median over the first batches of L(theta - eta g) / L(theta) vs eta (log-log); 1 = no change."""
    import numpy as np

    fig, (ax,) = figure(1)
    for bn, (color, label) in STYLE.items():
        g = rel[rel.bn == bn]
        if not len(g):
            continue
        ratio = g.assign(ratio=g.ratio.replace(np.inf, np.nan)).groupby("eta").ratio
        med = ratio.median()
        band(ax, med.index, med.values, ratio.min().values, ratio.max().values, label=label, color=color,
             ms=4)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    style(ax, title=title, xlabel="step size η along -∇L (one step)", ylabel="relative loss L(θ-ηg) / L(θ)",
          logx=True, logy=True, legend_size=8)
    return save(fig, path)


def activations(act, path: Path, title: str) -> Path:
    """Per-layer mean |channel mean| and channel std at initialization (log scale)."""
    fig, (a1, a2) = figure(2, size=(5, 3.8))
    for bn, (color, label) in STYLE.items():
        g = act[act.bn == bn].sort_values("layer")
        band(a1, g.layer, g.abs_mean, label=label, color=color)
        band(a2, g.layer, g["std"], label=label, color=color)
    for a, what in ((a1, "mean |channel mean|"), (a2, "mean channel std")):
        style(a, xlabel="layer (stem, then residual blocks)", ylabel=what, logy=True, legend_size=8)
        integer_ticks(a)
    return save(fig, path, title=title, title_size=12)


def gradients(grad, path: Path, title: str) -> Path:
    """Histogram of a middle conv layer's weight gradients at initialization, per network."""
    import numpy as np

    fig, axes = figure(2, size=(5, 3.8))
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
    style(axes[0], xlabel="gradient", ylabel="count", logy=True, legend_size=8)
    style(axes[1], xlabel="|gradient|", ylabel="count", logx=True, logy=True, legend_size=8)
    return save(fig, path, title=title, title_size=12)


def curve_picks(summary: dict) -> list[tuple[bool, float]]:
    """(BN, small lr), (no BN, small lr), (BN, large lr), both lrs as the analysis chose them."""
    m = summary.get("metrics", {})
    small, large = m.get("small_lr"), m.get("large_lr") or m.get("bn_best_lr")
    picks = [(True, small), (False, small), (True, large)]
    return [(bn, float(lr)) for bn, lr in picks if lr is not None]


def plot_all(run_dir: Path) -> list[Path]:
    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    name = f"{summary.get('model', '')}{summary.get('depth') or ''} on {summary.get('data', '')}"
    out = []
    results = read_table(run_dir / "results.csv")
    if results is not None:
        out.append(accuracy_vs_lr(results, run_dir / "accuracy_vs_lr.png", f"Test accuracy vs lr: {name}"))
    curves = read_table(run_dir / "curves.csv")
    if curves is not None and curve_picks(summary):
        out.append(training_curves(curves, curve_picks(summary), run_dir / "training_curves.png",
                                   f"Training curves: {name}"))
    init_figures = (("relative_loss.csv", relative_loss, "relative_loss.png", "Relative loss at init"),
                    ("activations.csv", activations, "activations.png", "Activations at init"),
                    ("gradients.csv", gradients, "gradient_histogram.png", "Middle-layer gradients at init"))
    for csv, fn, png, title in init_figures:
        table = read_table(run_dir / csv)
        if table is not None:
            out.append(fn(table, run_dir / png, f"{title}: {name}"))
    return out

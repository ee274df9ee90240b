"""Double-descent figures, drawn from results.csv and curves.csv alone."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import band, figure, need_table, plain_log_ticks, read_table, save, style
from dlx.plots import heatmap as draw_heatmap


def _label(noise, n) -> str:
    return f"noise {100 * noise:g}%" + ("" if n != n or n is None else f", n={int(n)}")


def width_ticks(ax, widths) -> None:
    """The log width axis ticked at the widths themselves, as plain integers, thinned to about ten evenly
    spaced (in log) ticks when there are many."""
    import numpy as np
    from matplotlib.ticker import NullLocator

    widths = sorted(set(widths))
    gap = np.log(widths[-1] / widths[0]) / 10 if len(widths) > 10 else 0
    ticks = [widths[0]]
    for w in widths[1:]:
        if np.log(w / ticks[-1]) >= gap or w == widths[-1]:
            ticks.append(w)
    if len(ticks) > 2 and np.log(ticks[-1] / ticks[-2]) < gap / 2:
        del ticks[-2]  # the widest is always ticked; a tick crowding it goes
    ax.set_xticks(ticks, [f"{w:g}" for w in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def seeds_note(ok) -> str:
    """'±1 std over N seeds' with N the seeds per width (a range where widths differ)."""
    n = ok.groupby(["label_noise", "n_train", "width"], dropna=False).seed.nunique()
    count = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
    return f"band: ±1 std over {count} seed{'s' if n.max() > 1 else ''}"


def error_vs_width(results, analysis: dict, path: Path, title: str) -> Path:
    """Test (solid) and train (dashed) error vs width, mean +- std over seeds, threshold marked."""
    fig, (ax,) = figure(1, size=(7, 4.2))
    ok = results[results.status == "completed"]
    for i, ((noise, n), g) in enumerate(ok.groupby(["label_noise", "n_train"], dropna=False)):
        color = f"C{i}"
        stats = g.groupby("width")[["test_error", "train_error"]].agg(["mean", "std"]).fillna(0).sort_index()
        for col, ls in (("test_error", "-o"), ("train_error", "--")):
            mean, std = 100 * stats[(col, "mean")], 100 * stats[(col, "std")]
            band(ax, stats.index.to_numpy(), mean, mean - std, mean + std, color=color, style=ls,
                 label=f"{col.split('_')[0]} ({_label(noise, n)})")
        curve = analysis.get("curves", {}).get(f"noise={noise:g},n={int(n) if n == n else 'all'}", {})
        if curve.get("threshold_width"):
            ax.axvline(curve["threshold_width"], color=color, ls=":", lw=1.2)
            ax.text(curve["threshold_width"], ax.get_ylim()[1] * 0.98, " interpolation\n threshold",
                    color=color, va="top", fontsize=7)
    note = f" ({seeds_note(ok)})" if len(ok) and "seed" in ok else ""
    style(ax, title=f"{title}{note}", xlabel="model width", ylabel="error (%)", logx=True)
    if len(ok):
        width_ticks(ax, ok.width)
    return save(fig, path)


def heatmap(curves, path: Path, title: str) -> Path:
    """Width x epoch heatmap of seed-mean test error for the noisiest full-data setting."""
    sub = curves[curves.label_noise == curves.label_noise.max()]
    sub = sub[sub.n_train == sub.n_train.max()]
    table = sub.pivot_table(index="width", columns="epoch", values="test_error", aggfunc="mean").sort_index()
    fig, (ax,) = figure(1, size=(7, 4.2))
    draw_heatmap(ax, 100 * table, label="test error (%)", xlabel="epoch (log-spaced evaluations)",
            ylabel="model width")
    ax.set_title(title)
    return save(fig, path)


def epochwise(curves, analysis: dict, path: Path, title: str) -> Path:
    """Test error vs epoch for a small, the critical (peak) and a large width."""
    sub = curves[curves.label_noise == curves.label_noise.max()]
    sub = sub[sub.n_train == sub.n_train.max()]
    widths = sorted(sub.width.unique())
    peak = analysis.get("main", {}).get("peak_width") or widths[len(widths) // 2]
    fig, (ax,) = figure(1, size=(7, 4.2))
    for name, w in {"small": widths[0], "critical": peak, "large": widths[-1]}.items():
        m = sub[sub.width == w].groupby("epoch")[["test_error", "train_error"]].mean()
        line = band(ax, m.index, 100 * m.test_error, label=f"{name} (width {w}) test")
        band(ax, m.index, 100 * m.train_error, color=line.get_color(), style="--", lw=1,
             label=f"{name} train")
    style(ax, title=title, xlabel="epoch", ylabel="error (%)", logx=True)
    plain_log_ticks(ax, "x")
    return save(fig, path)


def samplewise(results, path: Path, title: str) -> Path:
    """Test error vs width, a line per training-set size (noisiest setting)."""
    ok = results[(results.status == "completed") & (results.label_noise == results.label_noise.max())]
    fig, (ax,) = figure(1, size=(7, 4.2))
    for n, g in ok.groupby("n_train"):
        m = g.groupby("width").test_error.agg(["mean", "std"]).fillna(0).sort_index()
        ax.errorbar(m.index, 100 * m["mean"], yerr=100 * m["std"], marker="o", ms=3, capsize=2,
                    label=f"n={n}")
    style(ax, title=title, xlabel="model width", ylabel="test error (%)", logx=True)
    if len(ok):
        width_ticks(ax, ok.width)
    return save(fig, path)


def plot_sweep(run_dir: Path) -> list[Path]:
    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    results = need_table(run_dir / "results.csv", ("status", "width"))
    summary = read_summary(run_dir)
    analysis = summary.get("analysis", {})
    what = f"{summary.get('model', '')} on {summary.get('data', '')}".strip()
    paths = [error_vs_width(results, analysis, run_dir / "error_vs_width.png", f"Double descent: {what}")]
    curves = read_table(run_dir / "curves.csv")
    if curves is not None:
        paths.append(heatmap(curves, run_dir / "heatmap_width_epoch.png", f"Test error: {what}"))
        paths.append(epochwise(curves, analysis, run_dir / "epochwise.png", f"Epoch-wise: {what}"))
    if results.n_train.nunique() > 1:
        paths.append(samplewise(results, run_dir / "samplewise.png", f"Sample-wise: {what}"))
    return paths

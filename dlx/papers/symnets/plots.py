"""The symnets figures, drawn from errors.csv, ablation.csv and invariance.csv alone."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import NullFormatter

from dlx.plots import band, figure, plain_log_ticks, read_table, save, style

LOOK = {"symnet": ("C3", "symnet"), "convnet": ("C0", "plain CNN"),
        "convnet_aug": ("C2", "CNN + rotation aug."), "p4cnn": ("C1", "P4 CNN (90° rotations)"),
        "symnet_nosearch": ("C4", "symnet, no search between control points")}


def look(name: str, i: int) -> tuple[str, str]:
    return LOOK.get(name, (f"C{(i + 4) % 10}", name))


def error_vs_n(errors, path: Path, title: str) -> Path:
    """The paper's figure: test error vs training-set size (log x), a line per network, band = ±1 std."""
    fig, (ax,) = figure(1, size=(6.5, 4.3))
    for i, (name, g) in enumerate(errors.groupby("model", sort=False)):
        g = g.sort_values("n_train")
        color, label = look(name, i)
        sd = g.test_error_std.fillna(0)
        band(ax, g.n_train, 100 * g.test_error, 100 * (g.test_error - sd), 100 * (g.test_error + sd),
             label=f"{label} ({int(g.params.iloc[0]):,} params)", color=color, ms=4)
    style(ax, title=title, xlabel="training examples (log scale)", ylabel="test error (%)", logx=True,
          legend_size=8)
    ax.set_ylim(bottom=0)
    sizes = sorted(int(n) for n in errors.n_train.unique())
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    return save(fig, path)


def invariance_plot(inv, path: Path, title: str) -> Path:
    """Error vs test rotation angle for networks trained on upright digits (mean over seeds)."""
    fig, (ax,) = figure(1, size=(8.5, 4.0))
    for i, (name, g) in enumerate(inv.groupby("model", sort=False)):
        m = g.groupby("angle").error.agg(["mean", "min", "max"]).sort_index()
        color, label = look(name, i)
        several = g.seed.nunique() > 1
        lo, hi = (100 * m["min"], 100 * m["max"]) if several else (None, None)
        band(ax, m.index, 100 * m["mean"], lo, hi, label=label, color=color, ms=3)
    style(ax, title=title, xlabel="test rotation angle (degrees)", ylabel="test error (%)", legend=False,
          xlim=(0, 360))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xticks(range(0, 361, 45))
    ax.set_ylim(bottom=0)
    return save(fig, path)


def ablation_plot(abl, errors, path: Path, title: str) -> Path:
    """Left: the symnet's test error per ablation row (mean ± std); right: training cost per step."""
    import numpy as np

    fig, (a1, a2) = figure(2, size=(5.2, 3.9))
    sizes = sorted(abl.n_train.unique()) if abl is not None and len(abl) else []
    width = 0.8 / max(len(sizes), 1)
    for j, n in enumerate(sizes):
        g = abl[abl.n_train == n].reset_index(drop=True)
        x = np.arange(len(g)) + (j - (len(sizes) - 1) / 2) * width
        a1.bar(x, 100 * g.test_error, width * 0.9, yerr=100 * g.test_error_std.fillna(0), capsize=3,
               label=f"n={int(n)}", color=f"C{3 + j}", alpha=0.8)
        a1.set_xticks(np.arange(len(g)), g.row, rotation=20, fontsize=8)
    style(a1, xlabel="symnet variant", ylabel="test error (%)", legend=len(sizes) > 1, legend_size=8)
    cost = []
    if errors is not None and len(errors):
        for name, g in errors.groupby("model", sort=False):
            cost.append((look(name, 0)[1], float(g.step_ms.mean())))
    if abl is not None and len(abl):
        for r in abl.itertuples():  # the rows that are not the main symnet itself
            label = f"symnet {r.row}"
            if r.step_ms == r.step_ms and not getattr(r, "main", False) and label not in dict(cost):
                cost.append((label, float(r.step_ms)))
    if cost:
        a2.barh([c[0] for c in cost], [c[1] for c in cost], color="C7")
        a2.set_xscale("log")
        plain_log_ticks(a2, "x")
        for i, (_, v) in enumerate(cost):
            a2.text(v, i, f" {v:.3g}", va="center", fontsize=7)
    style(a2, xlabel="training time per step (ms)", legend=False)
    a2.tick_params(axis="y", labelsize=7)
    return save(fig, path, title=title, title_size=11)


def plot_all(run_dir: Path) -> list[Path]:
    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    names = {"digits_rot": "rotated digits", "mnist_rot": "MNIST-rot", "smallnorb": "small NORB"}
    data = names.get(summary.get("data"), "rotated digits")
    if summary.get("label", "digit") != "digit":  # the negative control (dlx/data/rotated.py)
        data += "; control: class = digit + angle bin"
    out = []
    errors = read_table(run_dir / "errors.csv")
    if errors is not None:
        out.append(error_vs_n(errors, run_dir / "error_vs_n.png",
                              f"Test error vs training-set size ({data})"))
    inv = read_table(run_dir / "invariance.csv")
    if inv is not None:
        out.append(invariance_plot(inv, run_dir / "invariance.png", "Trained upright, tested turned"))
    abl = read_table(run_dir / "ablation.csv")
    if abl is not None or errors is not None:
        out.append(ablation_plot(abl, errors, run_dir / "ablation.png", "Symnet ablation and cost"))
    return out

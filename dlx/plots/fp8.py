"""Figures of `dlx reproduce fp8`, drawn from its CSVs alone."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import pyplot, save


def plot_curves(run_dir: Path) -> Path | None:
    import pandas as pd

    path = run_dir / "curves.csv"
    if not path.is_file() or path.stat().st_size < 5:
        return None
    df = pd.read_csv(path)
    models = list(dict.fromkeys(df.model))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    for ax, m in zip(axes[0], models, strict=True):
        for prec, g in df[df.model == m].groupby("precision", sort=False):
            ax.plot(g.epoch, 100 * g.test_error, marker=".", label=prec,
                    ls="--" if "nearest" in prec or "nochunk" in prec else "-")
        ax.set(title=f"{m}: test error", xlabel="epoch", ylabel="test error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    out = run_dir / "curves.png"
    save(fig, out)
    return out


def plot_swamping(run_dir: Path) -> Path | None:
    import pandas as pd

    path = run_dir / "swamping.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    df = df[df.path == "exact"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for chunk, g in df.groupby("chunk", sort=False):
        ax.plot(g.n, g.rel_error, marker="o", lw=2.5 if str(chunk) == "none" else 1.2,
                label="sequential" if str(chunk) == "none" else f"CL={chunk}")
    ax.set(xscale="log", yscale="log", xlabel="dot-product length N", ylabel="relative error vs float64",
           title="FP16 1-6-9 accumulation of FP8 products")
    ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    out = run_dir / "swamping.png"
    save(fig, out)
    return out


def plot_fp8_run(run_dir: Path) -> list[Path]:
    return [p for p in (plot_curves(run_dir), plot_swamping(run_dir)) if p is not None]

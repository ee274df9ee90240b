"""Figures of `dlx reproduce fp8`, drawn from its CSVs alone: test error per epoch (log scale), the final
test error per precision against fp32, and FP16 accumulation swamping."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import band, figure, integer_ticks, plain_log_ticks, read_table, save, style


def plot_curves(run_dir: Path) -> Path | None:
    df = read_table(run_dir / "curves.csv")
    if df is None:
        return None
    models = list(dict.fromkeys(df.model))
    fig, axes = figure(len(models), size=(5.5, 4))
    for ax, m in zip(axes, models, strict=True):
        for prec, g in df[df.model == m].groupby("precision", sort=False):
            dashed = "nearest" in prec or "nochunk" in prec
            e = g.groupby("epoch").test_error.agg(["mean", "min", "max", "count"])  # over seeds
            seeds = f" ({int(e['count'].max())} seeds)" if e["count"].max() > 1 else ""
            lo, hi = (100 * e["min"], 100 * e["max"]) if seeds else (None, None)
            band(ax, e.index, 100 * e["mean"], lo, hi, label=f"{prec}{seeds}", ms=6,
                 style=".--" if dashed else ".-")
        style(ax, title=f"{m}: test error", xlabel="epoch", ylabel="test error (%, log scale)", logy=True)
        plain_log_ticks(ax)
        integer_ticks(ax)
    return save(fig, run_dir / "curves.png")


def seed_means(df):
    """One row per (model, precision): the mean test error of its finished seeds, its status 'completed'
    when any seed finished (else the first seed's status)."""
    import pandas as pd

    if "seed" not in df or not df.duplicated(["model", "precision"]).any():
        return df
    rows = []
    for (m, prec), g in df.groupby(["model", "precision"], sort=False):
        done = g[(g.status == "completed") & g.test_error.notna()]
        rows.append({"model": m, "precision": prec, "status": "completed" if len(done) else g.status.iloc[0],
                     "test_error": done.test_error.mean() if len(done) else None, "seeds": len(done)})
    return pd.DataFrame(rows)


def plot_final(run_dir: Path) -> Path | None:
    """Final test error per precision, a panel per model: the fp32 value as a reference line, the difference
    to it on each bar, a precision that did not finish (skipped on this device, failed) as a labelled empty
    slot."""
    df = read_table(run_dir / "results.csv")
    if df is None:
        return None
    df = seed_means(df)
    models = list(dict.fromkeys(df.model))
    widest = max(int((df.model == m).sum()) for m in models)
    fig, axes = figure(len(models), cols=3, size=(max(3.5, 0.8 * widest + 1.5), 3.8))
    for ax, m in zip(axes, models, strict=True):
        sub = df[df.model == m].reset_index(drop=True)
        err = 100 * sub.test_error
        done = (sub.status == "completed") & err.notna()
        fp32 = err[done & (sub.precision == "fp32")]
        ref = fp32.iloc[0] if len(fp32) else None
        top = max(err[done].max() if done.any() else 1.0, ref or 0.0)
        ax.bar(sub.index[done], err[done],
               color=["#888" if p == "fp32" else "C0" for p in sub.precision[done]])
        if ref is not None:
            ax.axhline(ref, color="k", ls=":", lw=1, label=f"fp32: {ref:.2f}%")
        for i, r in sub.iterrows():
            if not done[i]:
                ax.text(i, 0.03 * top, str(r.status), ha="center", va="bottom", rotation=90, color="#777",
                        fontsize=8)
            else:
                diff = ref is not None and r.precision != "fp32"
                ax.text(i, err[i] + 0.02 * top, f"{err[i] - ref:+.2f} pp" if diff else f"{err[i]:.2f}%",
                        ha="center", va="bottom", fontsize=8)
        ticks = [f"{r.precision} ({r.seeds} seeds)" if r.get("seeds", 1) > 1 else r.precision
                 for _, r in sub.iterrows()]
        ax.set_xticks(range(len(sub)), ticks, rotation=30, ha="right", fontsize=8)
        style(ax, title=f"{m}: final test error", ylabel="test error (%)", ylim=(0, 1.25 * top),
              xlim=(-0.6, len(sub) - 0.4))
    title = "final test error per precision; on each bar its difference to fp32 (percentage points)"
    if "seeds" in df and df.seeds.max() > 1:
        title = "final test error per precision (mean over seeds where several ran); on each bar its " \
                "difference to fp32 (percentage points)"
    return save(fig, run_dir / "final_error.png", title=title)


def plot_swamping(run_dir: Path) -> Path | None:
    df = read_table(run_dir / "swamping.csv")
    if df is None:
        return None
    fig, (ax,) = figure(1, size=(6, 4.2))
    for chunk, g in df[df.path == "exact"].groupby("chunk", sort=False):
        seq = str(chunk) == "none"
        ax.plot(g.n, g.rel_error, marker="o", lw=2.5 if seq else 1.2,
                label="sequential" if seq else f"CL={chunk}")
    style(ax, title="FP16 1-6-9 accumulation of FP8 products", xlabel="dot-product length N",
          ylabel="relative error vs float64", logy=True, legend_size=8)
    ax.set_xscale("log", base=2)
    return save(fig, run_dir / "swamping.png")


def plot_updates(run_dir: Path) -> Path | None:
    """The small-update cells: test error per epoch per precision, mean +- std over seeds."""
    df = read_table(run_dir / "updates_curves.csv")
    if df is None:
        return None
    fig, (ax,) = figure(1, size=(6.5, 4.2))
    for prec, g in df.groupby("precision", sort=False):
        m = g.groupby("epoch").test_error.agg(["mean", "std"]).fillna(0)
        band(ax, m.index, 100 * m["mean"], 100 * (m["mean"] - m["std"]), 100 * (m["mean"] + m["std"]),
             label=prec, style="--o" if "nearest" in prec else "-o")
    seeds = df.seed.nunique()
    style(ax, title=f"small updates (SGD, constant small lr): test error, mean +- std over {seeds} seeds",
          xlabel="epoch", ylabel="test error (%)")
    integer_ticks(ax)
    return save(fig, run_dir / "updates.png")


def plot_fp8_run(run_dir: Path) -> list[Path]:
    run_dir = Path(run_dir)
    made = (plot_curves(run_dir), plot_final(run_dir), plot_swamping(run_dir), plot_updates(run_dir))
    return [p for p in made if p is not None]

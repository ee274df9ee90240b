"""DeepState figures, drawn from the sweep's tables alone: quantile loss vs training range per model, fan
charts of the shortest range's forecasts, DeepState's learned components, and the recovery of a known
ISSM's noise scale."""

from __future__ import annotations

from pathlib import Path

from dlx.forecast.plots import components_plot, fan_chart
from dlx.papers.deepstate.analysis import LABELS, MODELS
from dlx.plots import band, figure, read_table, save, style

COLORS = {m: f"C{i}" for i, m in enumerate(MODELS)}


def ql_vs_range(results, path: Path, title: str) -> Path:
    """p50 and p90 QL (seed mean, band min..max over seeds) vs training range, one line per model."""
    ok = results[results.status == "completed"]
    x = "train_days" if ok.train_days.notna().all() else "range_steps"
    fig, axes = figure(3, size=(4.6, 3.6))
    panels = (("ql50", "p50 quantile loss (ND)"), ("ql90", "p90 quantile loss"),
              ("coverage", "p10-p90 coverage"))
    for ax, (metric, what) in zip(axes, panels, strict=True):
        for model in MODELS:
            g = ok[ok.model == model]
            if not len(g):
                continue
            s = g.groupby(x)[metric].agg(["mean", "min", "max"]).sort_index()
            band(ax, s.index, s["mean"], s["min"], s["max"], label=LABELS[model], color=COLORS[model], ms=4)
        if metric == "coverage":
            ax.axhline(0.8, color="k", ls=":", lw=0.8, label="nominal 0.8")
        xlabel = "training range (days)" if x == "train_days" else "training range (steps)"
        style(ax, title=what, xlabel=xlabel, ylabel=metric, legend=metric == "ql50", legend_size=7)
    return save(fig, path, title=title)


def recovery_plot(rec, path: Path, title: str) -> Path:
    """Learned vs true noise sd per series (each DeepState run), and the seasonal-pattern correlations."""
    import numpy as np

    fig, (a1, a2) = figure(2, size=(4.4, 3.8))
    for i, (rng, g) in enumerate(rec.groupby("train_range", sort=False)):
        a1.scatter(g.sigma_true, g.sigma_learned, s=10, alpha=0.6, color=f"C{i}", label=f"range {rng}")
    lim = [float(rec[["sigma_true", "sigma_learned"]].min().min()) * 0.8,
           float(rec[["sigma_true", "sigma_learned"]].max().max()) * 1.2]
    a1.plot(lim, lim, "k:", lw=0.8)
    style(a1, title="noise sd: learned vs true", xlabel="true σ", ylabel="learned σ_t (mean)", logx=True,
          logy=True, legend_size=7)
    cols = [c for c in ("daily_corr", "weekly_corr") if c in rec]
    data = [rec[c].dropna().to_numpy() for c in cols]
    if data:
        a2.boxplot(data, tick_labels=[c.replace("_corr", "") for c in cols])
        a2.set_ylim(min(-0.05, float(np.nanmin(np.concatenate(data))) - 0.05), 1.02)
    style(a2, title="seasonal pattern: correlation learned vs true", ylabel="correlation", legend=False)
    return save(fig, path, title=title)


def plot_all(run_dir: Path) -> list[Path]:
    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    data = read_summary(run_dir).get("data") or ""
    out = []
    results = read_table(run_dir / "results.csv")
    if results is not None and (results.status == "completed").any():
        out.append(ql_vs_range(results, run_dir / "ql_vs_range.png",
                               f"DeepState vs baselines on {data}: quantile loss by training range"))
    fan, actuals = read_table(run_dir / "fan.csv"), read_table(run_dir / "actuals.csv")
    if fan is not None:
        items = list(dict.fromkeys(actuals.item_id if actuals is not None else fan.item_id))[:3]
        models = [m for m in ("deepstate", "deepar", "ets") if m in set(fan.model)] or \
            list(dict.fromkeys(fan.model))
        rng = fan.train_range.iloc[0]
        out.append(fan_chart(fan, actuals, run_dir / "fan_chart.png", items,
                             title=f"{data}, training range {rng}: median, p10-p90 and p5-p95 bands vs truth",
                             models=models))
    comp = read_table(run_dir / "components.csv")
    if comp is not None:
        item = comp.item_id.iloc[0]
        out.append(components_plot(comp, run_dir / "components.png", item,
                                   title=f"DeepState's learned components, {item} (range "
                                         f"{comp.train_range.iloc[0]}; dashed: forecast start)"))
    rec = read_table(run_dir / "recovery.csv")
    if rec is not None:
        out.append(recovery_plot(rec, run_dir / "recovery.png",
                                 f"DeepState's components vs the generator's truth ({data})"))
    return out

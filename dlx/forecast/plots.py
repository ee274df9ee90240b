"""Forecast figures from a run's tables (never retraining): fan charts of quantile forecasts against the
truth, and DeepState's learned components over time."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import band, figure, read_table, save, style

BANDS = (("p5", "p95", 0.15, "p5-p95"), ("p10", "p90", 0.3, "p10-p90"))


def _dates(s):
    import pandas as pd

    return pd.to_datetime(s)


def date_axis(ax) -> None:
    """Concise date ticks (no overlapping full timestamps)."""
    import warnings

    import matplotlib.dates as mdates

    # a few points over decades: the locator falls back to a fine interval and says so at every draw
    warnings.filterwarnings("ignore", message="AutoDateLocator was unable", category=UserWarning)

    loc = mdates.AutoDateLocator(maxticks=7)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.tick_params(axis="x", labelsize=7)


def fan(ax, forecast, actual=None, label: str = "", color: str = "C0") -> None:
    """One series: history and truth in black, the median forecast and its p10-p90 / p5-p95 bands."""
    if actual is not None and len(actual):
        ax.plot(_dates(actual.timestamp), actual.target, color="k", lw=0.8, label="truth")
    x = _dates(forecast.timestamp)
    for lo, hi, alpha, name in BANDS:
        if lo in forecast and hi in forecast:
            ax.fill_between(x, forecast[lo], forecast[hi], color=color, alpha=alpha, lw=0, label=name)
    band(ax, x, forecast["p50"], label=f"{label} median".strip(), color=color, style="-", ms=0, lw=1.0)
    if actual is None and "target" in forecast:
        ax.plot(x, forecast.target, color="k", lw=0.8, label="truth")
    date_axis(ax)


def fan_chart(forecasts, actuals, path: Path, items: list[str], title: str = "",
              models: list[str] | None = None) -> Path:
    """Rows of series, columns of models (``forecasts`` has a ``model`` column when ``models`` is given)."""
    models = models or [None]
    fig, axes = figure(len(items) * len(models), cols=len(models), size=(5.2, 2.6))
    for r, item in enumerate(items):
        act = actuals[actuals.item_id == item] if actuals is not None else None
        for c, model in enumerate(models):
            ax = axes[r * len(models) + c]
            f = forecasts[forecasts.item_id == item]
            if model is not None:
                f = f[f.model == model]
            fan(ax, f.sort_values("timestamp"), act, label=model or "", color=f"C{c}")
            style(ax, title=f"{item}" + (f" — {model}" if model else ""), ylabel="target",
                  legend=r == 0, legend_size=6)
    return save(fig, path, title=title)


def components_plot(comp, path: Path, item: str, title: str = "") -> Path:
    """Target and one-step mean, then each learned component, then σ_t, over context and forecast."""
    d = comp[comp.item_id == item]
    x = _dates(d.timestamp)
    parts = [c for c in d.columns if c.startswith("component_")]
    fig, axes = figure(2 + len(parts), cols=1, size=(9.0, 1.9))
    boundary = x[d.phase.to_numpy() == "forecast"].min() if (d.phase == "forecast").any() else None
    axes[0].plot(x, d.target, color="k", lw=0.7, label="target")
    axes[0].plot(x, d["mean"], color="C0", lw=0.9, label="one-step mean (context) / forecast mean")
    style(axes[0], title=f"{item}: target and model mean", legend_size=6)
    for ax, c in zip(axes[1:], parts, strict=False):
        ax.plot(x, d[c], color="C1", lw=0.9)
        style(ax, title=c.removeprefix("component_").replace("_", " ") + " (contribution to the mean)",
              legend=False)
    ax = axes[-1]
    ax.plot(x, d["sigma"], color="C3", lw=0.9, label="noise sd σ_t")
    for c in (c for c in d.columns if c.startswith("innovation_")):
        ax.plot(x, d[c], lw=0.8, label=c.replace("_", " "))
    style(ax, title="learned noise and innovation scales", logy=True, legend_size=6)
    for ax in axes:
        if boundary is not None:
            ax.axvline(boundary, color="#888", ls="--", lw=0.8)
        date_axis(ax)
    return save(fig, path, title=title)


def plot_forecast_run(run_dir: Path) -> list[Path]:
    from dlx.plots.curves import plot_train_run, run_title
    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    out = []
    forecasts, actuals = read_table(run_dir / "forecasts.csv"), read_table(run_dir / "actuals.csv")
    items = list(dict.fromkeys(actuals.item_id)) if actuals is not None else []
    title = run_title(run_dir)
    if forecasts is not None and items:
        out.append(fan_chart(forecasts, actuals, run_dir / "fan_chart.png", items, title=title))
    comp = read_table(run_dir / "components.csv")
    if comp is not None:
        out.append(components_plot(comp, run_dir / "components.png", comp.item_id.iloc[0], title=title))
    metrics = read_table(run_dir / "metrics.csv")
    if metrics is not None and len(metrics) > 1 and read_summary(run_dir).get("params"):
        out.extend(plot_train_run(run_dir))
    return out

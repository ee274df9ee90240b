"""A tune run's figures, from its tables alone: the optimization history (each trial's validation metric
and the best so far) and the parameters' importances (Optuna's fANOVA, importances.csv)."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import figure, integer_ticks, metric_axis, need_table, read_table, save, style


def draw(run_dir: Path) -> list[Path]:
    import numpy as np
    import pandas as pd

    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    trials = need_table(run_dir / "trials.csv", ("trial", "state"))
    summary = read_summary(run_dir)
    metric = str(summary.get("metric") or next(c for c in trials.columns if c.startswith("val_")))
    higher = bool(summary.get("higher_is_better"))
    label, scale = metric_axis(metric.removeprefix("val_"))
    fig, axes = figure(1, size=(6.5, 4.0))
    ax = axes[0]
    done = trials[trials["state"] == "complete"].sort_values("trial")
    y = pd.to_numeric(done[metric], errors="coerce") * scale
    ax.plot(done["trial"], y, "o", color="tab:blue", alpha=0.7, label="trial")
    best = np.maximum.accumulate(y.to_numpy()) if higher else np.minimum.accumulate(y.to_numpy())
    ax.step(done["trial"], best, where="post", color="tab:red", label="best so far")
    others = trials[trials["state"].isin(["pruned", "failed"])]
    for state, marker in (("pruned", "x"), ("failed", "s")):
        rows = others[others["state"] == state]
        if len(rows):
            ax.plot(rows["trial"], [np.nanmin(y) if len(y) else 0] * len(rows), marker, color="grey",
                    label=f"{state} (drawn at the minimum)")
    integer_ticks(ax)
    style(ax, xlabel="trial", ylabel=f"validation {label}")
    out = [save(fig, run_dir / "history.png", title=f"dlx tune: {len(trials)} trials, "
                f"{'higher' if higher else 'lower'} is better")]
    imp = read_table(run_dir / "importances.csv")  # empty when fewer than two trials completed
    if imp is not None and len(imp) and {"param", "importance"} <= set(imp.columns):
        imp = imp.sort_values("importance")
        fig, axes = figure(1, size=(6.5, max(2.0, 0.5 + 0.4 * len(imp))))
        axes[0].barh(imp["param"].astype(str), imp["importance"], color="tab:blue")
        style(axes[0], xlabel="importance (fANOVA, sums to 1)", legend=False)
        out.append(save(fig, run_dir / "importances.png", title="which settings mattered"))
    return out

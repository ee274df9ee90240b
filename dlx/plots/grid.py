"""Grid sweep figure: final test (and train) error per child, grouped by the first axis."""

from __future__ import annotations

import json
from pathlib import Path

from dlx.plots import pyplot, save


def plot_grid(run_dir: Path) -> list[Path]:
    import pandas as pd

    results = pd.read_csv(run_dir / "results.csv")
    cfg_axes = json.loads((run_dir / "summary.json").read_text()).get("axes") or []
    axes = [a for a in cfg_axes if a in results.columns] or [results.columns[0]]
    ok = results[results.status == "completed"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    x = axes[0]
    groups = ok.groupby(axes[1:]) if len(axes) > 1 else [("", ok)]
    for key, g in groups:
        m = g.groupby(x)[["test_error", "train_error"]].mean().sort_index()
        label = ", ".join(f"{a}={v}" for a, v in zip(axes[1:], key if isinstance(key, tuple) else (key,),
                                                     strict=False)) if len(axes) > 1 else "test"
        xs = [str(v) for v in m.index]
        ax.plot(xs, 100 * m.test_error, marker="o", label=label or "test")
    ax.set(xlabel=x, ylabel="test error (%)", title=f"dlx sweep grid: {run_dir.name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    path = run_dir / "grid.png"
    save(fig, path)
    return [path]

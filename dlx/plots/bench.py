"""Benchmark figures from results.csv."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import pyplot, save


def plot_bench_run(run_dir: Path) -> list[Path]:
    import pandas as pd

    df = pd.read_csv(Path(run_dir) / "results.csv")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(df["runner"], df["median_s"], yerr=df["std_s"], color=["#888", "#3b7dd8"][: len(df)], capsize=4)
    for i, r in enumerate(df["ratio_to_hand"]):
        ax.text(i, df["median_s"].iloc[i], f"x{r:.3f}", ha="center", va="bottom")
    ax.set(ylabel="seconds (median)", title=f"{df['model'].iloc[0]} on {df['data'].iloc[0]}: "
           f"{df['steps'].iloc[0]} steps")
    path = Path(run_dir) / "overhead.png"
    save(fig, path)
    return [path]

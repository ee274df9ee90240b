"""Learning curves of a train run: loss and error per split vs epoch, from metrics.csv."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import pyplot, save


def learning_curves(df, path: Path, title: str = "") -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for split, style in (("train", "-"), ("val", ":"), ("test", "--")):
        for ax, metric, scale in ((axes[0], "loss", 1.0), (axes[1], "error", 100.0)):
            col = f"{split}_{metric}"
            if col in df:
                ax.plot(df["epoch"], df[col] * scale, style, marker="o", ms=3, label=split)
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[1].set(xlabel="epoch", ylabel="error (%)", title="error")
    if "train_loss" in df and (df["train_loss"] > 0).all():
        axes[0].set_yscale("log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    save(fig, path)
    return Path(path)


def plot_train_run(run_dir: Path) -> list[Path]:
    import pandas as pd

    from dlx.errors import DlxError

    run_dir = Path(run_dir)
    csv = run_dir / "metrics.csv"
    if not csv.is_file():
        raise DlxError(f"{csv} not found: nothing to plot (did the run finish an evaluation?)")
    df = pd.read_csv(csv)
    return [learning_curves(df, run_dir / "learning_curves.png", title=run_dir.name)]

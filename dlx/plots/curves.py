"""Learning curves of a train run from metrics.csv: the loss and the task's primary metric per split vs
epoch."""

from __future__ import annotations

from pathlib import Path

from dlx.plots import (
    band,
    figure,
    integer_ticks,
    metric_axis,
    need_table,
    plain_log_ticks,
    save,
    style,
)

SPLITS = (("train", "-"), ("val", ":"), ("test", "--"))


def learning_curves(df, path: Path, title: str = "", loss: str = "cross-entropy loss",
                    primary: str = "error") -> Path:
    fig, (loss_ax, metric_ax) = figure(2, size=(5, 3.8))
    label, scale = metric_axis(primary)
    for split, ls in SPLITS:
        for ax, col, k in ((loss_ax, f"{split}_loss", 1.0), (metric_ax, f"{split}_{primary}", scale)):
            if col in df:
                band(ax, df["epoch"], df[col] * k, label=split, style=f"{ls}o")
    positive = "train_loss" in df and (df["train_loss"] > 0).all()
    style(loss_ax, title="loss", xlabel="epoch", ylabel=loss, logy=positive)
    style(metric_ax, title=primary, xlabel="epoch", ylabel=label)
    if positive:
        plain_log_ticks(loss_ax)
    for ax in (loss_ax, metric_ax):
        integer_ticks(ax)
    return save(fig, path, title=title)


def run_title(run_dir: Path) -> str:
    """'mlp on digits, fp32 — <run name>' from the run's resolved config.yaml (what it lacks is left out)."""
    import yaml

    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        cfg = {}
    name = {k: (cfg.get(k) or {}).get("name") for k in ("model", "data", "precision")}
    what = " on ".join(str(name[k]) for k in ("model", "data") if name[k])
    what = ", ".join(str(s) for s in (what, name["precision"]) if s)
    return f"{what} — {run_dir.name}" if what else run_dir.name


def plot_train_run(run_dir: Path) -> list[Path]:
    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    df = need_table(run_dir / "metrics.csv", ("epoch",))
    summary = read_summary(run_dir)  # runs older than tasks say nothing of it: classification
    loss, primary = summary.get("loss_name") or "cross-entropy loss", summary.get("primary") or "error"
    return [learning_curves(df, run_dir / "learning_curves.png", title=run_title(run_dir), loss=loss,
                            primary=primary)]

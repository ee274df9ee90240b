"""`dlx train` and `dlx eval`: build data, model, task and precision from a config, fit, write the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dlx.errors import DlxError
from dlx.runs import Run, write_csv, write_json


@dataclass
class Parts:
    data: object
    model: torch.nn.Module
    task: object
    precision: object
    device: str
    params: int


def build(cfg) -> Parts:
    """Config -> objects, in the order that makes seeding reproducible (data, then model init)."""
    from dlx.data import build_data
    from dlx.device import resolve_device, seed_everything
    from dlx.models import build_model, count_params
    from dlx.precision import build_precision
    from dlx.tasks import build_task
    from dlx.train.distributed import device_for_rank

    device = device_for_rank(resolve_device(cfg.get("device", "auto")))
    if cfg.trainer.get("threads"):
        torch.set_num_threads(int(cfg.trainer.threads))
    seed_everything(cfg.seed, bool(cfg.trainer.get("deterministic", False)))
    data = build_data(cfg.data, device=device)
    model = build_model(cfg.model, data.meta).to(device)
    task = build_task(cfg.task, data.meta)
    precision = build_precision(cfg.precision, device)
    return Parts(data, model, task, precision, device, count_params(model))


def final_metrics(rows: list[dict]) -> dict:
    if not rows:
        return {}
    out = {k: v for k, v in rows[-1].items() if k != "wall_s"}
    tests = [r["test_error"] for r in rows if "test_error" in r]
    if tests:
        out["best_test_error"] = min(tests)
    return out


def save_label_noise(run: Run, data) -> None:
    if data.noise_mask is None or not data.noise_mask.any():
        return
    import pandas as pd

    noisy = data.train.y.cpu().numpy()
    write_csv(run.path("label_noise.csv"), pd.DataFrame(
        {"index": range(len(noisy)), "clean_label": data.train_clean_y, "label": noisy,
         "changed": data.noise_mask.astype(int)}))


def run(cfg, run: Run, draw: bool = True) -> dict:
    """Train one model; everything lands in run.dir. Returns the summary written to summary.json.
    Under torchrun (trainer.strategy=ddp) every rank trains and rank 0 alone writes."""
    from dlx.train import distributed, fit
    from dlx.train.callbacks import Checkpointer, CsvLogger, Progress

    main = distributed.is_main()
    try:
        parts = build(cfg)
    except DlxError as err:  # bad data or model settings: the run directory still says what happened
        if main:
            run.summary("failed", error=str(err))
        raise

    def summary(status, metrics=None, **extra):
        return run.summary(status, metrics, device=parts.device, **extra) if main else {"status": status}

    info = {"params": parts.params, "precision": parts.precision.note, "model": cfg.model.name,
            "data": cfg.data.name, "n_train": len(parts.data.train), "world_size": distributed.world()}
    summary("running", **info)
    ckpt = run.path("checkpoint.pt")
    resume_from = ckpt if cfg.trainer.get("resume") and ckpt.is_file() else None
    callbacks = []
    if main:
        save_label_noise(run, parts.data)
        callbacks = [CsvLogger(run.path("metrics.csv")),
                     Checkpointer(ckpt, cfg.trainer.get("checkpoint_every", 0)),
                     Progress(cfg.trainer.get("progress", "auto"), label=run.dir.name)]
    try:
        hist = fit(parts.model, parts.task, parts.data, parts.precision, cfg.trainer, cfg.optimizer,
                   seed=cfg.seed, callbacks=callbacks, resume_from=resume_from)
    except KeyboardInterrupt:
        summary("interrupted")
        raise
    except DlxError as err:
        summary("failed", error=str(err))
        raise
    except Exception as err:  # a bug or a torch error: the traceback is for us, the summary for the user
        summary("failed", error=f"{type(err).__name__}: {err}"[:500])
        raise
    extra = {"epochs": hist.epoch, "steps": hist.step, "train_wall_s": round(hist.wall_s, 3),
             "resumed": resume_from is not None}
    if hist.status == "diverged":
        from dlx.train.loop import plan_steps

        # 1-based like metrics.csv: the epoch in which the loss blew up (from the step: exact even when
        # the check was buffered and ran at an epoch end)
        spe = plan_steps(len(parts.data.train), cfg.trainer)[0]
        extra.update(diverged_step=hist.diverged_step, diverged_epoch=hist.diverged_step // spe + 1)
    result = summary(hist.status, final_metrics(hist.rows), **extra)
    if draw and hist.rows and main:
        plot(run.dir)
    return result


def plot(run_dir: Path) -> list[Path]:
    from dlx.plots.curves import plot_train_run

    return plot_train_run(run_dir)


def evaluate_run(run_dir: Path, overrides: list[str], split: str = "test") -> dict:
    """Rebuild a finished run's model from its config, load its checkpoint, evaluate one split."""
    from dlx.config import compose
    from dlx.runs import read_json, read_overrides
    from dlx.train import evaluate
    from dlx.train.checkpoint import load_weights, read_checkpoint

    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json")
    kind = summary.get("kind")
    if kind != "train":
        raise DlxError(f"{run_dir} is a '{kind}' run; dlx eval takes a train run directory")
    ckpt_path = run_dir / "checkpoint.pt"
    ckpt = read_checkpoint(ckpt_path)
    # sweep children were composed from their sweep's config, which summary.json names
    cfg = compose(summary.get("config", "train"), read_overrides(run_dir) + list(overrides))
    parts = build(cfg)
    load_weights(parts.model, ckpt["model"], ckpt_path)
    metrics = evaluate(parts.model, parts.task, parts.data.split(split), int(cfg.trainer.eval_batch_size),
                       parts.precision)
    result = {"split": split, "data": cfg.data.name, "overrides": list(overrides), "metrics": metrics,
              "n": len(parts.data.split(split)), "params": parts.params}
    write_json(run_dir / "eval.json", result)
    return result

"""The life of one train run, in the three steps every path shares: ``start`` (build, check, record what
will train), ``callbacks`` (what a run writes while it trains), ``finish`` (summary, predictions, figure).

`dlx train` (dlx/kinds/train), sweep children and the members of a stack (dlx/sweep/stack.py) all go
through these; a stack differs only in the fit it calls between ``start`` and ``finish``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv


@dataclass
class Started:
    """A run built and recorded as running: its parts, where it resumes from, and its setup time."""

    parts: object  # dlx.build.Parts
    resume_from: Path | None
    setup_s: float


def start(cfg, run: Run, after_build=None, check_resume: bool = True) -> Started:
    """Build data, model, task and precision; check the settings (and a resume's checkpoint) before the
    run's first write, so a refused config changes nothing; record the run as running.
    ``after_build(parts)`` runs right after the build (a stack member takes its RNG state and shares its
    inputs there)."""
    from dlx.build import build
    from dlx.train import distributed
    from dlx.train.loop import check_settings

    parts = build(cfg)
    if after_build is not None:
        after_build(parts)
    check_settings(cfg.trainer, cfg.optimizer, len(parts.data.train))
    run.device = parts.device
    run.env["threads_rule"] = parts.threads
    resume_from = None
    if cfg.trainer.get("resume"):
        resume_from = run.dir / "checkpoint.pt"
        if not resume_from.is_file():  # never start over silently over the run being resumed
            raise DlxError(f"trainer.resume=true but there is no checkpoint at {resume_from} (give the "
                           "--name of an interrupted or finished train run)")
        if check_resume:
            check_checkpoint(resume_from, parts.model)  # before the first write: a refusal changes nothing
    run.summary("running", params=parts.params, precision=parts.precision.note, model=cfg.model.name,
                data=cfg.data.name, n_train=len(parts.data.train), world_size=distributed.world(),
                **parts.task.describe())
    if run.writes:
        save_label_noise(run, parts.data)
    return Started(parts, resume_from, round(time.time() - run.t0, 3))  # data, model, imports: not training


def callbacks(cfg, run: Run) -> list:
    """The metrics log, checkpoints and progress of a run that writes (DDP rank 0), and its trackers."""
    from dlx.train.callbacks import Checkpointer, CsvLogger, Progress, Tracking

    out = []
    if run.writes:
        out = [CsvLogger(run.path("metrics.csv")),
               Checkpointer(run.path("checkpoint.pt"), cfg.trainer.get("checkpoint_every", 0),
                            cfg.trainer.get("checkpoint_minutes")),
               Progress(cfg.trainer.get("progress", "auto"), label=run.dir.name)]
    if run.trackers:
        out.append(Tracking(run.trackers))
    return out + list(run.callbacks)


def finish(cfg, run: Run, started: Started, hist, extra: dict | None = None, model=None,
           draw: bool = True) -> dict:
    """The summary (with the diverged step, if any), the predictions and the learning curves of a run
    that has trained; returns the summary. ``model``: the trained weights when they are not the parts'
    own (a stack member's)."""
    from dlx.build import final_metrics
    from dlx.plots.curves import plot_train_run
    from dlx.train.evaluate import save_predictions
    from dlx.train.loop import plan_steps

    p = started.parts
    out = {"epochs": hist.epoch, "steps": hist.step, "setup_s": started.setup_s,
           "train_wall_s": round(hist.wall_s, 3), "resumed": started.resume_from is not None, **(extra or {})}
    if hist.status == "diverged":
        # 1-based like metrics.csv: the epoch in which the loss blew up (from the step: exact even when the
        # check was buffered and ran at an epoch end)
        spe = plan_steps(len(p.data.train), cfg.trainer)[0]
        out.update(diverged_step=hist.diverged_step, diverged_epoch=hist.diverged_step // spe + 1)
    if run.writes and hist.status == "completed":
        splits = [s for s in cfg.task.get("save_predictions") or [] if s != "test" or evaluates_test(cfg)]
        save_predictions(run, model if model is not None else p.model, p.task, p.data, splits,
                         int(cfg.trainer.get("eval_batch_size", 2048)), p.precision)
    result = run.summary(hist.status, final_metrics(hist.rows, p.task), **out)
    if draw and hist.rows and run.writes and cfg.trainer.get("figures", True):
        plot_train_run(run.dir)
    return result


def evaluates_test(cfg) -> bool:
    """trainer.eval_test: false in a tune trial, which must never read the test split."""
    return bool(cfg.trainer.get("eval_test", True))


def save_label_noise(run: Run, data) -> None:
    """label_noise.csv: which training labels classification prep changed (and to what)."""
    noise = data.notes.get("label_noise")
    if noise is None:
        return
    import pandas as pd

    noisy = data.train.y.cpu().numpy()
    write_csv(run.path("label_noise.csv"), pd.DataFrame(
        {"index": range(len(noisy)), "clean_label": noise.clean, "label": noisy,
         "changed": noise.mask.astype(int)}))


def check_checkpoint(path: Path, model) -> None:
    """The checkpoint can be read and its weights fit ``model`` (loaded into a copy: the model is left
    as built, so training from it is unchanged)."""
    import copy

    from dlx.train.checkpoint import load_weights, read_checkpoint

    ckpt = read_checkpoint(path)
    load_weights(copy.deepcopy(model), ckpt.get("model") if isinstance(ckpt, dict) else None, path)

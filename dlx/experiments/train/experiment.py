"""`dlx train` and `dlx eval`: build data, model, task and precision from a config, fit, write the run."""

from __future__ import annotations

import time
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv, write_json


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


def run(cfg, run: Run, draw: bool = True) -> dict:
    """Train one model; everything lands in run.dir. Returns the summary written to summary.json.
    Under torchrun (trainer.strategy=ddp) every rank trains and rank 0 alone writes."""
    from dlx.build import build, final_metrics
    from dlx.train import distributed, fit
    from dlx.train.callbacks import Checkpointer, CsvLogger, Progress, Tracking
    from dlx.train.evaluate import save_predictions
    from dlx.train.loop import check_settings

    main = distributed.is_main()
    run.writes = main
    # settings are checked before the first write, so a refused config leaves no run directory; from the
    # first write on, a failure, a bug or Ctrl-C is recorded in it
    with run.recording():
        parts = build(cfg)
        check_settings(cfg.trainer, cfg.optimizer, len(parts.data.train))
        run.device = parts.device
        run.env["threads_rule"] = parts.threads
        info = {"params": parts.params, "precision": parts.precision.note, "model": cfg.model.name,
                "data": cfg.data.name, "n_train": len(parts.data.train), "world_size": distributed.world(),
                **parts.task.describe()}
        resume_from = None
        if cfg.trainer.get("resume"):
            resume_from = run.dir / "checkpoint.pt"
            if not resume_from.is_file():  # never start over silently over the run being resumed
                raise DlxError(f"trainer.resume=true but there is no checkpoint at {resume_from} (give the "
                               "--name of an interrupted or finished train run)")
            check_checkpoint(resume_from, parts.model)  # before the first write: a refusal changes nothing
        run.summary("running", **info)
        ckpt = run.path("checkpoint.pt")
        callbacks = []
        if main:
            save_label_noise(run, parts.data)
            callbacks = [CsvLogger(run.path("metrics.csv")),
                         Checkpointer(ckpt, cfg.trainer.get("checkpoint_every", 0),
                                      cfg.trainer.get("checkpoint_minutes")),
                         Progress(cfg.trainer.get("progress", "auto"), label=run.dir.name)]
        if run.trackers:
            callbacks.append(Tracking(run.trackers))
        setup_s = round(time.time() - run.t0, 3)  # data, model, imports: not training
        hist = fit(parts.model, parts.task, parts.data, parts.precision, cfg.trainer, cfg.optimizer,
                   seed=cfg.seed, callbacks=callbacks, resume_from=resume_from)
        extra = {"epochs": hist.epoch, "steps": hist.step, "setup_s": setup_s,
                 "train_wall_s": round(hist.wall_s, 3), "resumed": resume_from is not None}
        if hist.status == "diverged":
            from dlx.train.loop import plan_steps

            # 1-based like metrics.csv: the epoch in which the loss blew up (from the step: exact even when
            # the check was buffered and ran at an epoch end)
            spe = plan_steps(len(parts.data.train), cfg.trainer)[0]
            extra.update(diverged_step=hist.diverged_step, diverged_epoch=hist.diverged_step // spe + 1)
        if main and hist.status == "completed":
            save_predictions(run, parts.model, parts.task, parts.data, cfg.task.get("save_predictions"),
                             int(cfg.trainer.get("eval_batch_size", 2048)), parts.precision)
        result = run.summary(hist.status, final_metrics(hist.rows, parts.task), **extra)
        if draw and hist.rows and main:
            plot(run.dir)
    return result


RESUME_FIXED = ("model", "data", "task", "optimizer", "precision", "seed")  # what a resume may not change


def resume_config(run_dir: Path, given: list[str]):
    """The (overrides, cfg) a resume of ``run_dir`` trains with: its recorded overrides, then the new ones
    (e.g. more trainer.epochs). A new override that would change what was trained (model, data, task,
    optimizer, precision, seed), or ask for fewer epochs than were done, is refused before anything is
    written, so config.yaml stays true to the weights beside it."""
    from omegaconf import OmegaConf

    from dlx.config import compose, flatten
    from dlx.runs import read_overrides, read_summary

    if not (run_dir / "overrides.yaml").is_file() or not (run_dir / "config.yaml").is_file():
        return given, compose("train", given)  # refused later: there is no checkpoint to resume

    def key(o: str) -> str:
        return o.split("=", 1)[0].lstrip("+~")

    keys = {key(o) for o in given}
    merged = [o for o in read_overrides(run_dir) if key(o) not in keys] + given
    cfg = compose("train", merged)
    old = flatten(OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=False))
    new = flatten(cfg)
    fixed = sorted({k for k in (*old, *new) if k.split(".")[0] in RESUME_FIXED},
                   key=lambda k: (not k.endswith(".name"), k))  # a changed choice is named first
    for k in fixed:
        if old.get(k) != new.get(k):
            raise DlxError(f"trainer.resume=true cannot change {k} (the run was trained with {old.get(k)!r}, "
                           f"this asks {new.get(k)!r}): a resume continues {run_dir} as it was started; "
                           "drop that override, or train a new run")
    done = read_summary(run_dir).get("epochs")
    target = cfg.trainer.get("epochs")
    if cfg.trainer.get("steps") is None and isinstance(done, int) and target is not None and \
            int(target) < done:
        raise DlxError(f"trainer.epochs={target} is fewer than the {done} epochs {run_dir} has trained; a "
                       "resume trains on (give more epochs, or leave trainer.epochs out)")
    return merged, cfg


def check_checkpoint(path: Path, model) -> None:
    """The checkpoint can be read and its weights fit ``model`` (loaded into a copy: the model is left
    as built, so training from it is unchanged)."""
    import copy

    from dlx.train.checkpoint import load_weights, read_checkpoint

    ckpt = read_checkpoint(path)
    load_weights(copy.deepcopy(model), ckpt.get("model") if isinstance(ckpt, dict) else None, path)


def plot(run_dir: Path) -> list[Path]:
    from dlx.plots.curves import plot_train_run

    return plot_train_run(run_dir)


def evaluate_run(run_dir: Path, overrides: list[str], split: str = "test") -> dict:
    """Rebuild a finished run's model from its config, load its checkpoint, evaluate one split."""
    from dlx.build import build
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
              "n": len(parts.data.split(split)), "params": parts.params, **parts.task.describe()}
    write_json(run_dir / f"eval_{split}.json", result)  # per split: evaluating one never hides another
    return result

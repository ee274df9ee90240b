"""`dlx train` and `dlx eval`: build data, model, task and precision from a config, fit, write the run."""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_json


def run(cfg, run: Run, draw: bool = True) -> dict:
    """Train one model; everything lands in run.dir. Returns the summary written to summary.json.
    Under torchrun (trainer.strategy=ddp) every rank trains and rank 0 alone writes."""
    from dlx.train import distributed, fit, lifecycle

    run.writes = distributed.is_main()
    # settings are checked before the first write, so a refused config leaves no run directory; from the
    # first write on, a failure, a bug or Ctrl-C is recorded in it
    with run.recording():
        started = lifecycle.start(cfg, run)
        p = started.parts
        hist = fit(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer, seed=cfg.seed,
                   callbacks=lifecycle.callbacks(cfg, run), resume_from=started.resume_from)
        return lifecycle.finish(cfg, run, started, hist, draw=draw)


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


def cost(exp, cfg, overrides=(), say=None):
    """The `--estimate` hook: a few real steps timed, scaled to the run (dlx/estimate.py)."""
    from dlx.estimate import time_train, train_cost

    return train_cost(cfg, time_train(cfg))


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

"""Callbacks of fit(): the evaluation schedule, divergence guard, CSV log, checkpoints and progress."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlx.train.evaluate import evaluate


class Callback:
    """Hooks of fit(). A callback that keeps state across epochs returns it from ``state_dict`` (plain
    values and tensors: checkpoints load with weights_only=True); resume hands it back."""

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...

    def on_start(self, state) -> None: ...

    def on_batch_end(self, state) -> None: ...

    def on_epoch_end(self, state) -> None: ...

    def on_end(self, state, status: str) -> None: ...


def eval_epochs(epochs: int, every: int = 1, points: int = 0) -> set[int]:
    """Epochs after which to evaluate: every N, or ~`points` log-spaced ones; the last always."""
    if points and points > 0:
        chosen = {int(round(e)) for e in np.geomspace(1, max(epochs, 1), int(points))}
    else:
        chosen = set(range(max(int(every), 1), epochs + 1, max(int(every), 1)))
    return {e for e in chosen if 1 <= e <= epochs} | {epochs}


class Evaluator(Callback):
    """Measure train/val/test metrics on the schedule and append a row to state.history."""

    def on_start(self, state):
        cfg = state.cfg
        self.epochs = eval_epochs(state.epochs, cfg.get("eval_every", 1), cfg.get("eval_points", 0))
        self.bs = int(cfg.get("eval_batch_size", 2048))
        self.splits = (["train"] if cfg.get("eval_train", True) else []) + \
            (["val"] if state.data.val is not None else []) + (["test"] if cfg.get("eval_test", True) else [])

    def on_epoch_end(self, state):
        if state.stop or (state.epoch not in self.epochs and not state.done):
            return
        row = {"epoch": state.epoch, "step": state.step, "lr": state.optimizer.param_groups[0]["lr"]}
        for name in self.splits:
            split = state.data.split(name)
            for k, v in evaluate(state.model, state.task, split, self.bs, state.precision).items():
                row[f"{name}_{k}"] = v
        row["wall_s"] = round(state.wall_s, 3)
        state.history.append(row)
        state.evaluated = True


class DivergenceGuard(Callback):
    """A NaN/inf loss, or one above `factor` x the first, ends training as 'diverged' at that step.

    Reading a loss forces the host to wait for the device, so on an accelerator the losses are
    buffered and checked every `every` steps (and at each epoch end): the recorded step stays exact,
    training just runs at most every-1 steps past it. On CPU `every` is 1."""

    def __init__(self, factor: float | None = None, every: int = 1):
        self.factor = float(factor) if factor else None
        self.every = max(1, int(every))
        self.buffer: list = []

    def on_batch_end(self, state):
        if self.every == 1:
            self._check(state, [float(state.loss)], state.step)
            return
        self.buffer.append((state.step, state.loss))
        if len(self.buffer) >= self.every:
            self.flush(state)

    def on_epoch_end(self, state):
        self.flush(state)

    def flush(self, state):
        if self.buffer and not state.stop:
            import torch

            losses = torch.stack([loss for _, loss in self.buffer]).float().cpu().tolist()
            self._check(state, losses, self.buffer[0][0])  # buffered steps are consecutive
        self.buffer = []

    def _check(self, state, losses: list[float], first_step: int):
        for i, loss in enumerate(losses):
            if state.first_loss is None:
                state.first_loss = loss
            if not math.isfinite(loss) or (self.factor and loss > self.factor * max(state.first_loss, 1e-12)):
                state.stop, state.diverged_step = "diverged", first_step + i
                return


class CsvLogger(Callback):
    """metrics.csv rewritten atomically after every evaluation: a crash never loses finished rows.
    Not fsynced (the checkpoint and summary.json are): a power cut may lose the last rows, a kill cannot."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_epoch_end(self, state):
        if state.evaluated:
            import pandas as pd

            from dlx.runs import write_csv

            write_csv(self.path, pd.DataFrame(state.history), durable=False)


class Tracking(Callback):
    """Each evaluation row to the run's trackers (TensorBoard, MLflow), at its optimizer step."""

    def __init__(self, trackers):
        self.trackers = trackers

    def on_epoch_end(self, state):
        if state.evaluated:
            self.trackers.metrics(state.history[-1], state.step)


class Checkpointer(Callback):
    """Save every `every` epochs, at the first epoch end `minutes` after the last save (so a killed run
    loses at most that much), at the end of training, and when Ctrl-C stopped training at a step
    boundary (atomic; the last one wins). A hard interrupt (a second Ctrl-C) may land mid-update, so
    nothing is saved then."""

    def __init__(self, path: Path, every: int = 0, minutes: float | None = None):
        import time

        self.path, self.every = Path(path), int(every or 0)
        self.seconds = 60.0 * float(minutes) if minutes else None
        self.clock, self.last = time.monotonic, time.monotonic()

    def save(self, state):
        from dlx.train.checkpoint import save_checkpoint

        save_checkpoint(self.path, state)
        self.last = self.clock()

    def on_epoch_end(self, state):
        due = self.seconds is not None and self.clock() - self.last >= self.seconds
        if state.done or due or (self.every and state.epoch % self.every == 0):
            self.save(state)

    def on_end(self, state, status):
        if state.stop == "interrupted":
            self.save(state)


class Progress(Callback):
    """Epochs on the one progress display, with the task's primary metric per split at each evaluation."""

    def __init__(self, mode: str = "auto", label: str = "train"):
        self.mode, self.label = mode, label

    def on_start(self, state):
        from dlx.progress import ProgressLine

        # a run bounded by trainer.steps counts steps (its "epochs" are only where evaluations fall)
        spe = state.steps_per_epoch
        self.by_steps = state.total_steps != state.epochs * spe or spe == 1
        total, done = (state.total_steps, state.step) if self.by_steps else (state.epochs, state.epoch)
        unit = "steps" if self.by_steps else "epochs"
        self.line = ProgressLine(self.label, total, unit, self.mode, done=done)

    def _info(self, state) -> str:
        from dlx.tables import fmt_metric

        row, primary = state.history[-1], state.task.primary
        parts = [f"loss {row.get('train_loss', float(state.loss)):.4f}" if state.loss is not None else ""]
        for split in ("train", "val", "test"):
            if f"{split}_{primary}" in row:
                parts.append(f"{split} {primary} {fmt_metric(primary, row[f'{split}_{primary}'])}")
        return "  ".join(p for p in parts if p)

    def on_epoch_end(self, state):
        info = self._info(state) if state.evaluated else ""
        if self.by_steps:
            self.line.update(state.step, f"epoch {state.epoch}  {info}" if info else "", line=state.evaluated)
        else:
            self.line.update(state.epoch, f"step {state.step}  {info}" if info else "", line=state.evaluated)

    def on_end(self, state, status):
        if status == "diverged":
            self.line.say(f"{self.label}: diverged at step {state.diverged_step} (loss {float(state.loss)})")
        self.line.close()

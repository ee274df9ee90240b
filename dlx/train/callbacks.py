"""Callbacks of fit(): the evaluation schedule, divergence guard, CSV log, checkpoints and progress."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from dlx.train.evaluate import evaluate


class Callback:
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
            (["val"] if state.data.val is not None else []) + ["test"]

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


class Checkpointer(Callback):
    """Save every `every` epochs and at the end of training (atomic; the last one wins)."""

    def __init__(self, path: Path, every: int = 0):
        self.path, self.every = Path(path), int(every or 0)

    def on_epoch_end(self, state):
        if state.done or (self.every and state.epoch % self.every == 0):
            from dlx.train.checkpoint import save_checkpoint

            save_checkpoint(self.path, state)


class Progress(Callback):
    """A rich progress bar on a terminal, one plain line per evaluation otherwise."""

    def __init__(self, mode: str = "auto", label: str = "train"):
        if mode == "auto":
            mode = "rich" if sys.stderr.isatty() else "plain"
        self.mode = mode
        self.label = label

    def on_start(self, state):
        self.t0 = time.perf_counter()
        if self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("epochs"), TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                                transient=False)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=state.epochs, completed=state.epoch, info="")

    def _info(self, state) -> str:
        row = state.history[-1]
        parts = [f"loss {row.get('train_loss', float(state.loss)):.4f}" if state.loss is not None else ""]
        for split in ("train", "val", "test"):
            if f"{split}_error" in row:
                parts.append(f"{split} err {100 * row[f'{split}_error']:.2f}%")
        return "  ".join(p for p in parts if p)

    def on_epoch_end(self, state):
        if self.mode == "rich":
            self.bar.update(self.task, completed=state.epoch,
                            info=self._info(state) if state.evaluated else None)
        elif self.mode == "plain" and state.evaluated:
            print(f"{self.label} epoch {state.epoch}/{state.epochs} step {state.step}  {self._info(state)}  "
                  f"({time.perf_counter() - self.t0:.1f}s)", file=sys.stderr, flush=True)

    def on_end(self, state, status):
        if self.mode == "rich":
            self.bar.stop()
        if status == "diverged" and self.mode != "none":
            print(f"{self.label}: diverged at step {state.diverged_step} (loss {float(state.loss)})",
                  file=sys.stderr, flush=True)

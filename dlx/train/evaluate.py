"""evaluate(): a task's per-batch quantities over a split, accumulated (sums and concatenations) and
reduced once."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from dlx.tasks.base import accumulate, finish


@torch.no_grad()
def evaluate(model, task, split, batch_size: int = 2048, precision=None) -> dict[str, float]:
    was_training = model.training
    model.eval()
    acc: dict = {}
    ctx = precision.autocast if precision is not None else nullcontext
    try:
        for batch in split.batches(batch_size):
            with ctx():
                accumulate(acc, task.metrics(model, batch))
    finally:
        model.train(was_training)
    return task.reduce(finish(acc))

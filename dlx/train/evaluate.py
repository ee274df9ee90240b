"""evaluate(): a task's metric sums over a split, reduced once."""

from __future__ import annotations

from contextlib import nullcontext

import torch


@torch.no_grad()
def evaluate(model, task, split, batch_size: int = 2048, precision=None) -> dict[str, float]:
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    ctx = precision.autocast if precision is not None else nullcontext
    for batch in split.batches(batch_size):
        with ctx():
            for k, v in task.metrics(model, batch).items():
                v = v.detach().to(torch.float64)
                sums[k] = sums[k] + v if k in sums else v
    model.train(was_training)
    return task.reduce({k: float(v) for k, v in sums.items()})

"""evaluate(): a task's per-batch quantities over a split, accumulated (sums and concatenations) and
reduced once."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from dlx.tasks.base import accumulate, finish


@torch.no_grad()
def evaluate(model, task, split, batch_size: int = 2048, precision=None, per_example: dict | None = None
             ) -> dict[str, float]:
    """The task's metrics over ``split``. Pass a dict as ``per_example`` to also get the per-example
    arrays the task emitted (scores, labels, groups) in it, in split order."""
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
    done = finish(acc)
    if per_example is not None:
        per_example.update({k: v for k, v in done.items() if not isinstance(v, float)})
    return task.reduce(done)


def save_predictions(run, model, task, data, splits, batch_size: int = 2048, precision=None) -> list:
    """predictions_<split>.csv: the per-example outputs of the task (e.g. binary: score, label) for each
    split in ``splits`` (the ``task.save_predictions`` setting); tasks that emit none write nothing."""
    written = []
    for name in splits or []:
        arrays: dict = {}
        evaluate(model, task, data.split(str(name)), batch_size, precision, per_example=arrays)
        path = write_predictions(run, str(name), arrays)
        if path is not None:
            written.append(path)
    return written


def write_predictions(run, name: str, arrays: dict):
    """predictions_<name>.csv from the per-example arrays of an evaluation (None when it emitted none)."""
    import pandas as pd

    from dlx.runs import write_csv

    return write_csv(run.path(f"predictions_{name}.csv"), pd.DataFrame(arrays)) if arrays else None

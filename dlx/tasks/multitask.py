"""Multi-task learning: a batch is ``{task: sub_batch}``; each task keeps its own Task (regress, classify,
lm, ... chosen by its data's family, or by ``task.tasks.<name>``).

* ``loss``: the sum over the tasks in the batch of each task's own mean loss (joint training: one batch per
  task per step, as MUiR trains).
* ``metrics``: each task's own quantities, prefixed ``<task>.``.
* ``reduce``: every task's metrics as ``<task>.<metric>``, ``loss`` = the mean of the tasks' losses, and,
  when all tasks share a headline metric (e.g. rmse), its mean over tasks under that name, which is then
  the headline (otherwise ``loss`` is).

The model must offer ``forward_tasks({task: input}) -> {task: output}`` (dlx/models/hyper.py): a task's
input is its sub-batch's first tensor (``x`` of a dict batch), and its Task scores the given output.
"""

from __future__ import annotations

import functools

import torch

from dlx.data.multitask import TaskBatch
from dlx.errors import DlxError
from dlx.tasks.base import Task
from dlx.tasks.registry import TASKS, register_task
from dlx.tasks.regress import Regress


class Given:
    """Stands in for a model whose output for this batch is already computed (a plain callable: built
    once per task per step, so it must cost nothing)."""

    __slots__ = ("out",)

    def __init__(self, out):
        self.out = out

    def __call__(self, x):
        return self.out


class _class_or_instance:
    """A method that sees the instance when called on one, else the class (the Task protocol calls
    ``describe`` and ``best`` on classes; a multitask instance's headline depends on its tasks)."""

    def __init__(self, fn):
        self.fn = fn

    def __get__(self, obj, cls):
        return functools.partial(self.fn, cls if obj is None else obj)


def inputs_of(batch):
    return batch["x"] if isinstance(batch, dict) else batch[0]


@register_task("multitask")
class MultiTask(Task):
    name = "multitask"
    primary = "loss"
    higher_is_better = False
    accepts = ("multitask",)
    loss_name = "sum of the tasks' losses"

    def __init__(self, cfg=None, meta=None):
        super().__init__(cfg, meta)
        metas = (meta.extra or {}).get("tasks") if meta is not None else None
        if not metas:
            raise DlxError("task 'multitask' needs a multi-task dataset (its meta lists the tasks)")
        given = (cfg.get("tasks") if cfg is not None else None) or {}
        self.tasks: dict[str, Task] = {}
        for name, m in metas.items():
            sub = given.get(name) or {"name": m.task}
            kind = sub.get("name")
            if kind not in TASKS or kind == "multitask":
                raise DlxError(f"task.tasks.{name}: unknown task '{kind}'")
            if m.task not in TASKS[kind].accepts:
                raise DlxError(f"task.tasks.{name}: task '{kind}' does not fit '{m.name}', a '{m.task}' "
                               "dataset")
            self.tasks[name] = TASKS[kind](sub, m)
        primaries = {t.primary for t in self.tasks.values()}
        self.primary = primaries.pop() if len(primaries) == 1 else "loss"
        first = next(iter(self.tasks.values()))
        self.higher_is_better = first.higher_is_better if self.primary != "loss" else False

    @_class_or_instance
    def describe(self) -> dict:
        """As every task's, but an instance reports its own headline (the tasks' shared one, or loss)."""
        return {"task": self.name, "primary": self.primary, "higher_is_better": self.higher_is_better,
                "loss_name": self.loss_name}

    @_class_or_instance
    def best(self, values) -> float:
        vals = [float(v) for v in values if v == v]
        return (max if self.higher_is_better else min)(vals) if vals else float("nan")

    def _outputs(self, model, batch) -> dict:
        unknown = [t for t in batch if t not in self.tasks]
        if unknown:
            raise RuntimeError(f"batch has tasks {unknown} that the multitask task does not know")
        inputs = {t: inputs_of(b) for t, b in batch.items()}
        if isinstance(batch, TaskBatch):  # tasks of one shape, sampled together: their inputs stay stacked
            inputs = TaskBatch(inputs, batch.joined[0])
        return model.forward_tasks(inputs)

    def loss(self, model, batch) -> torch.Tensor:
        outs = self._outputs(model, batch)
        if self._same_regression(batch):  # many regression tasks of one batch shape: the same sum of MSEs
            y = batch.joined[1] if isinstance(batch, TaskBatch) else \
                torch.stack([b[1] for b in batch.values()])
            pred = outs.joined if isinstance(outs, TaskBatch) and list(outs) == list(batch) else \
                torch.stack([outs[t] for t in batch])
            y = y.float()
            return ((pred.float().reshape(y.shape) - y) ** 2).flatten(1).mean(1).sum()
        return sum(self.tasks[t].loss(Given(outs[t]), b) for t, b in batch.items())

    def _same_regression(self, batch) -> bool:
        if len(batch) < 2 or any(type(self.tasks[t]) is not Regress for t in batch):
            return False
        shapes = {tuple(b[1].shape) if isinstance(b, tuple) and len(b) == 2 else None for b in batch.values()}
        return len(shapes) == 1 and None not in shapes

    def task_losses(self, model, batch) -> dict[str, torch.Tensor]:
        """Each task's loss on its sub-batch (what a generation's soft weights are trained on)."""
        outs = self._outputs(model, batch)
        return {t: self.tasks[t].loss(Given(outs[t]), b) for t, b in batch.items()}

    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        outs = self._outputs(model, batch)
        out = {}
        for t, b in batch.items():
            out.update({f"{t}.{k}": v for k, v in self.tasks[t].metrics(Given(outs[t]), b).items()})
        return out

    def reduce(self, acc: dict) -> dict[str, float]:
        res: dict[str, float] = {}
        losses, heads = [], []
        for t, task in self.tasks.items():
            sub = {k[len(t) + 1:]: v for k, v in acc.items() if k.startswith(f"{t}.")}
            if not sub:
                continue
            got = task.reduce(sub)
            res.update({f"{t}.{k}": v for k, v in got.items()})
            losses.append(got["loss"])
            heads.append(got[task.primary])
        res["loss"] = sum(losses) / max(len(losses), 1)
        if self.primary != "loss" and heads:
            res[self.primary] = sum(heads) / len(heads)
        return res

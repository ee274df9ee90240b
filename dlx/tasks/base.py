"""The Task protocol: what a batch means. A task turns a model and a batch into a training loss and into
evaluation quantities, and reduces those into named metrics with one headline (``primary``).

``metrics(model, batch)`` returns tensors of two kinds, and ``accumulate`` treats them differently:
0-d tensors are summed over the batches of a split (counts, loss sums), tensors with a leading example
axis are concatenated (scores and labels for AUC, group ids for ranking metrics). ``reduce`` then sees
one value per name (a float for sums, a 1-d numpy array for concatenations).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Task(ABC):
    name: str = "task"
    primary: str = "loss"  # the headline metric: summaries keep best_<split>_<primary>, sweeps compare it
    higher_is_better: bool = False
    accepts: tuple[str, ...] = ()  # data families (Meta.task) this task can train on
    loss_name: str = "loss"  # the training loss as a figure labels it

    def __init__(self, cfg=None, meta=None):
        self.cfg = cfg
        self.meta = meta

    @abstractmethod
    def loss(self, model, batch) -> torch.Tensor:
        """The scalar training loss of one batch."""

    @abstractmethod
    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        """Per-batch quantities: 0-d tensors are summed over batches, per-example tensors concatenated."""

    @abstractmethod
    def reduce(self, acc: dict) -> dict[str, float]:
        """Accumulated quantities -> named metrics (always including ``primary`` and ``loss``)."""

    @classmethod
    def best(cls, values) -> float:
        """The best of ``values`` in the task's direction (NaN never wins; all NaN gives NaN)."""
        vals = [float(v) for v in values if v == v]
        return (max if cls.higher_is_better else min)(vals) if vals else float("nan")

    @classmethod
    def describe(cls) -> dict:
        """What summary.json records of the task, so tables and figures need not import it."""
        return {"task": cls.name, "primary": cls.primary, "higher_is_better": cls.higher_is_better,
                "loss_name": cls.loss_name}


def accumulate(acc: dict, out: dict[str, torch.Tensor]) -> None:
    """Fold one batch's ``metrics`` into ``acc``: sum 0-d tensors, collect the others for concatenation."""
    for k, v in out.items():
        v = v.detach()
        if v.dim() == 0:
            v = v.to(torch.float64)
            acc[k] = acc[k] + v if k in acc else v
        else:
            acc.setdefault(k, []).append(v.cpu())


def finish(acc: dict) -> dict:
    """``accumulate``'s result as plain values: floats for sums, numpy arrays for concatenations."""
    return {k: torch.cat(v).numpy() if isinstance(v, list) else float(v) for k, v in acc.items()}

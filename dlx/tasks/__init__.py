"""Tasks say what a batch means: the loss, the evaluation quantities, and the headline metric.
``build_task(cfg, meta)`` picks the task named by the ``task`` config group."""

from __future__ import annotations

from dlx.errors import DlxError
from dlx.tasks.base import Task, accumulate, finish
from dlx.tasks.binary import Binary
from dlx.tasks.classify import Classify
from dlx.tasks.regress import Regress

TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator (or call): make ``cls`` available as ``task=<cls.name>``."""
    if cls.name in TASKS:
        raise ValueError(f"task '{cls.name}' registered twice")
    TASKS[cls.name] = cls
    return cls


for _cls in (Classify, Binary, Regress):
    register_task(_cls)

# tasks in modules of their own register themselves on import (explicit, after register_task exists)
from dlx.tasks import forecast, lm, multitask, rank  # noqa: E402, F401


def build_task(cfg, meta=None) -> Task:
    name = cfg.get("name")
    if name not in TASKS:
        raise DlxError(f"unknown task '{name}' (choose from: {', '.join(sorted(TASKS))})")
    cls = TASKS[name]
    if meta is not None and meta.task not in cls.accepts:
        fits = [n for n, c in sorted(TASKS.items()) if meta.task in c.accepts]
        hint = f"; use task={fits[0]}" if fits else ""
        raise DlxError(f"task '{name}' does not fit data '{meta.name}', which is a '{meta.task}' "
                       f"dataset{hint}")
    return cls(cfg, meta)


__all__ = ["TASKS", "Task", "accumulate", "build_task", "finish", "register_task"]

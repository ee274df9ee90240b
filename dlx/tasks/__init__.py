"""Tasks say what a batch means: the loss, the evaluation quantities, and the headline metric.
``build_task(cfg, meta)`` picks the task named by the ``task`` config group. The registry is
dlx/tasks/registry.py; importing this package registers every built-in task."""

from __future__ import annotations

# Explicit imports (no discovery): each module registers its task on import, so the registry is complete and
# an import error is loud.
from dlx.tasks import binary, classify, forecast, lm, multitask, rank, regress  # noqa: F401
from dlx.tasks.base import Task, accumulate, finish
from dlx.tasks.registry import ENTRY_POINTS, TASKS, build_task, register_task

__all__ = ["ENTRY_POINTS", "TASKS", "Task", "accumulate", "build_task", "finish", "register_task"]

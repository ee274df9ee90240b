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

ENTRY_POINTS = "dlx.tasks"  # [project.entry-points."dlx.tasks"] name = "package.module:TaskClass"


def _entry_point(name) -> type[Task] | None:
    """A Task subclass an installed package registers under ``name`` (read only when ``name`` is not built
    in), registered here on first use; None when there is none."""
    from importlib.metadata import entry_points

    if not isinstance(name, str):
        return None
    found = [ep for ep in entry_points(group=ENTRY_POINTS) if ep.name == name]
    if not found:
        return None
    try:
        cls = found[0].load()
    except Exception as err:
        msg = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        raise DlxError(f"task '{name}': loading entry point {found[0].value} failed: {msg}") from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise DlxError(f"task '{name}': entry point {found[0].value} is not a dlx.tasks.Task subclass")
    TASKS[name] = cls
    return cls


def build_task(cfg, meta=None) -> Task:
    name = cfg.get("name")
    if name not in TASKS and _entry_point(name) is None:
        from importlib.metadata import entry_points

        known = sorted(set(TASKS) | {ep.name for ep in entry_points(group=ENTRY_POINTS)})
        raise DlxError(f"unknown task '{name}' (choose from: {', '.join(known)})")
    cls = TASKS[name]
    if meta is not None and meta.task not in cls.accepts:
        fits = [n for n, c in sorted(TASKS.items()) if meta.task in c.accepts]
        hint = f"; use task={fits[0]}" if fits else ""
        raise DlxError(f"task '{name}' does not fit data '{meta.name}', which is a '{meta.task}' "
                       f"dataset{hint}")
    return cls(cfg, meta)


__all__ = ["TASKS", "Task", "accumulate", "build_task", "finish", "register_task"]

"""The task registry: ``@register_task(name)`` on a Task class, ``build_task`` (built-ins and the
``dlx.tasks`` entry points) and the lookups over them. It imports no task module (they import it), so it
loads without them; ``dlx.tasks`` imports them all."""

from __future__ import annotations

from dlx.errors import DlxError
from dlx.tasks.base import Task

TASKS: dict[str, type[Task]] = {}
ENTRY_POINTS = "dlx.tasks"  # [project.entry-points."dlx.tasks"] name = "package.module:TaskClass"


def register_task(name: str):
    """Class decorator: make the Task subclass available as ``task=<name>`` (its ``name`` attribute, which
    summary.json records, must agree)."""

    def deco(cls: type[Task]) -> type[Task]:
        if name in TASKS:
            raise ValueError(f"task '{name}' registered twice")
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise ValueError(f"task '{name}': {cls!r} is not a dlx.tasks.Task subclass")
        if cls.name != name:
            raise ValueError(f"task '{name}': its class says name = '{cls.name}'")
        TASKS[name] = cls
        return cls

    return deco


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
    """The task ``cfg.name`` for data ``meta`` (refused when the task does not fit the data's family)."""
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

"""Tasks say what a batch means: loss(model, batch) and metrics(model, batch) -> sums to reduce."""

from __future__ import annotations

from dlx.errors import DlxError
from dlx.tasks.classify import Classify

TASKS = {"classify": Classify}


def build_task(cfg, meta=None):
    name = cfg.get("name")
    if name not in TASKS:
        raise DlxError(f"unknown task '{name}' (choose from: {', '.join(sorted(TASKS))})")
    if meta is not None and meta.task != name:
        raise DlxError(f"task '{name}' does not fit data '{meta.name}', which is a '{meta.task}' dataset")
    return TASKS[name](cfg)

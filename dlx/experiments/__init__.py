"""Experiment kinds. `PLOTTERS` maps the `kind` in summary.json to the function that redraws its
figures from its tables (module path strings, so `dlx plot` imports only what it needs)."""

from __future__ import annotations

import importlib
from pathlib import Path

from dlx.errors import DlxError

PLOTTERS: dict[str, str] = {
    "train": "dlx.plots.curves:plot_train_run",
    "bench": "dlx.plots.bench:plot_bench_run",
}


def plot_run(run_dir: Path) -> list[Path]:
    from dlx.runs import read_json

    kind = read_json(Path(run_dir) / "summary.json").get("kind")
    if kind not in PLOTTERS:
        raise DlxError(f"don't know how to plot kind '{kind}' (known: {', '.join(sorted(PLOTTERS))})")
    module, func = PLOTTERS[kind].split(":")
    return getattr(importlib.import_module(module), func)(Path(run_dir))

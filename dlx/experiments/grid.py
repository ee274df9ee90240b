"""`dlx sweep grid key=v1,v2 key2=a,b [--zip]`: any train overrides crossed (or paired) into child
runs, on the same machinery as every other sweep. results.csv holds a row per child with its whole
config flattened into columns."""

from __future__ import annotations

import sys
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv

CONFIG = "sweep_grid"


def split_axis(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: 'a,[1,2],b' -> ['a', '[1,2]', 'b']."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    return [*parts, cur]


def is_axis(override: str) -> bool:
    key, sep, value = override.partition("=")
    return bool(sep) and len(split_axis(value)) > 1


def parse_axes(axes) -> dict[str, list]:
    import yaml

    grid = {}
    for axis in axes:
        key, sep, value = str(axis).partition("=")
        if not sep or not value:
            raise DlxError(f"sweep axis '{axis}' is not KEY=V1,V2,...")
        grid[key] = [yaml.safe_load(v) for v in split_axis(value)]
    return grid


def children(cfg):
    from dlx.sweep import expand

    if not cfg.sweep.axes:
        raise DlxError("the sweep is empty: give at least one KEY=V1,V2 axis, e.g. model.width=4,8")
    return expand(parse_axes(cfg.sweep.axes), zipped=bool(cfg.sweep.zip))


def run(cfg, run: Run):
    from dlx.config import compose
    from dlx.runs import read_overrides
    from dlx.sweep.driver import run_sweep

    kids = children(cfg)
    compose(CONFIG, [*read_overrides(run.dir), *kids[0].overrides])  # a bad axis fails before any work
    return run_sweep(cfg, run, sys.modules[__name__])


def finalize(cfg, run: Run, kids):
    from dlx.sweep import collect
    from dlx.sweep.execute import DONE

    results, curves = collect(run.dir, kids, with_config=True)
    write_csv(run.path("results.csv"), results)
    if not curves.empty:
        write_csv(run.path("curves.csv"), curves)
    done = results.status.isin(DONE).all()
    best = results.loc[results.test_error.idxmin()] if results.test_error.notna().any() else None
    metrics = {} if best is None else {"best_run": best.run_id, "best_test_error": float(best.test_error)}
    counts = results.status.value_counts().to_dict()
    axes = [k.split(".")[-1] for k in parse_axes(cfg.sweep.axes)]
    run.summary("completed" if done else "failed", metrics, statuses=counts, n_children=len(kids), axes=axes)
    plot(run.dir)
    shown = [*axes, "params", "train_error", "test_error", "status", "wall_s"]
    return results[[c for c in shown if c in results.columns]]


def plot(run_dir: Path) -> list[Path]:
    from dlx.plots.grid import plot_grid

    return plot_grid(Path(run_dir))

"""`dlx sweep grid key=v1,v2 key2=a,b [--zip]`: any overrides crossed (or paired) into child runs, on
the same machinery as every other sweep. Children are train runs, or baseline fits with
``sweep.child=fit``. results.csv holds a row per child with its whole config flattened into columns;
the best child is picked by the task's primary metric on the test split."""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run

CHILD_KINDS = ("train", "fit")
FIT_UNUSED = ("params", "epochs", "train_loss", "test_loss", "diverged_step", "best_test_error")  # when empty


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
    kind = str(cfg.sweep.child)
    if kind not in CHILD_KINDS:
        raise DlxError(f"sweep.child must be one of {', '.join(CHILD_KINDS)}, got '{kind}'")
    return expand(parse_axes(cfg.sweep.axes), zipped=bool(cfg.sweep.zip), kind=kind)


def finalize(cfg, run: Run, kids):
    from dlx.sweep import collect
    from dlx.sweep.driver import finish
    from dlx.tasks import TASKS

    task = TASKS[cfg.task.name]
    results, curves = collect(run.dir, kids, with_config=True)
    if str(cfg.sweep.child) == "fit":  # a baseline fit reads no model, optimizer or trainer settings
        unused = ("model.", "optimizer.", "trainer.", "precision.", "logger.")
        results = results[[c for c in results.columns if not str(c).startswith(unused)
                           and not (c in FIT_UNUSED and results[c].isna().all())]]
    col = f"test_{task.primary}"
    metrics = {"primary": col}
    if col in results and results[col].notna().any():
        best = results.loc[results[col].idxmax() if task.higher_is_better else results[col].idxmin()]
        metrics.update(best_run=best.run_id, **{f"best_{col}": float(best[col])})
    axes = [k.split(".")[-1] for k in parse_axes(cfg.sweep.axes)]
    finish(run, results, metrics, curves=curves if not curves.empty else None,
           n_children=len(kids), axes=list(parse_axes(cfg.sweep.axes)), **task.describe())
    shown = [*axes, "params", f"train_{task.primary}", col, "status", "wall_s"]
    return results[[c for c in dict.fromkeys(shown) if c in results.columns]]


def plot(run_dir: Path) -> list[Path]:
    from dlx.kinds.grid.plots import plot_grid

    return plot_grid(Path(run_dir))

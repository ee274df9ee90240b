"""Grid sweep figure: each child's final test value of the task's primary metric, the first axis along x,
a line per combination of the other axes, the settings the user fixed in the title."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dlx.plots import band, figure, metric_axis, need_table, save, style


def full_key(axis: str, columns) -> str:
    """An axis's full override key: as given when dotted (new summaries), else the one flattened config
    column ending in '.<axis>' (old summaries kept short names), else the name itself."""
    if "." in axis:
        return axis
    dotted = [c for c in columns if str(c).endswith(f".{axis}")]
    return dotted[0] if len(dotted) == 1 else axis


def fixed_overrides(overrides: list[str], axes: list[str]) -> list[str]:
    """What the user typed that is neither an axis nor sweep machinery (sweep.*)."""
    keys = {a.split(".")[-1] for a in axes} | set(axes)
    return [o for o in overrides
            if not o.startswith("sweep.") and o.partition("=")[0].lstrip("+~") not in keys]


def plot_grid(run_dir: Path) -> list[Path]:
    import pandas as pd

    from dlx.runs import read_overrides, read_summary

    run_dir = Path(run_dir)
    results = need_table(run_dir / "results.csv", ("status",))
    summary = read_summary(run_dir)
    primary = str(summary.get("primary") or "error").removeprefix("test_")
    keys = [full_key(a, results.columns) for a in summary.get("axes") or []]
    # each axis as a column: its full name first, then the short grid column
    cols = {k: k if k in results else k.split(".")[-1] for k in keys}
    cols = {k: c for k, c in cols.items() if c in results} or {results.columns[0]: results.columns[0]}
    keys, x = list(cols), list(cols.values())[0]
    ok = results[results.status == "completed"]
    metric = f"test_{primary}"
    label, scale = metric_axis(primary)
    fig, (ax,) = figure(1, size=(7, 4))
    groups = ok.groupby([cols[k] for k in keys[1:]]) if len(keys) > 1 else [((), ok)]
    for key, g in groups if metric in ok else []:  # no child finished: an empty, titled figure
        values = key if isinstance(key, tuple) else (key,)
        name = ", ".join(f"{k}={v}" for k, v in zip(keys[1:], values, strict=False)) or "test"
        m = g.groupby(x)[metric].mean().sort_index()
        numeric = pd.api.types.is_numeric_dtype(m.index) and not pd.api.types.is_bool_dtype(m.index)
        # categories (baselines, model names) are points, not a curve: no line joins them
        band(ax, [str(v) for v in m.index], scale * m, label=name, style="-o" if numeric else "o", ms=6)
    fixed = " ".join(fixed_overrides(read_overrides(run_dir), keys))
    title = f"dlx sweep grid: test {primary}" + (f" — fixed: {fixed}" if fixed else f" — {run_dir.name}")
    style(ax, title=textwrap.fill(title, 80), xlabel=keys[0], ylabel=f"test {label}")
    ax.title.set_fontsize(10)
    return [save(fig, run_dir / "grid.png")]

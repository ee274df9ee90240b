"""The one table renderer of dlx: a dict of metrics or a DataFrame -> a rich Table that fits a standard
80-column terminal, with numbers formatted the way a reader expects (counts as integers, rates as
percentages in the metrics table, at most 4 significant digits elsewhere)."""

from __future__ import annotations

import math
from numbers import Integral, Real

PERCENT = ("error", "accuracy")  # metric names (or suffixes) shown as percentages


def is_percent(name: str) -> bool:
    """Is metric ``name`` (e.g. test_error, accuracy) a rate shown as a percentage?"""
    return str(name).split(".")[-1].endswith(PERCENT)


def fmt_metric(name: str, value) -> str:
    """One metric value for a human: errors and accuracies as %, the rest with 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if not math.isfinite(value):
        return str(value)
    if is_percent(name):
        return f"{100 * value:.2f}%"
    return fmt_number(value)


def fmt_number(value) -> str:
    """Integers plainly (params as 85002, not 8.5e+04); floats with 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    value = float(value)
    if value != value:
        return "-"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def metrics_table(title: str, rows: dict):
    """A two-column metric | value table."""
    from rich.table import Table

    table = Table(title=title, show_header=True, title_justify="left")
    table.add_column("metric", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    for k, v in rows.items():
        table.add_row(str(k), fmt_metric(k, v))
    return table


def frame_table(title: str, df, columns: list[str] | None = None):
    """A DataFrame's rows under its (or the given) columns. Columns that hold one value in every row move
    into the title (they are the sweep's fixed settings), rates print as percentages, and long cells fold
    instead of being cut, so the table fits a standard 80-column terminal."""
    from rich.table import Table

    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    fixed = {c: df[c].iloc[0] for c in cols if len(df) > 1 and df[c].astype(str).nunique() == 1}
    if fixed:
        title = f"{title} ({', '.join(f'{c}={fmt_number(v)}' for c, v in fixed.items())})".strip()
        cols = [c for c in cols if c not in fixed]
    table = Table(title=title, title_justify="left")
    for col in cols:
        table.add_column(str(col), justify="right", overflow="fold")
    for r in df[cols].itertuples(index=False):  # itertuples keeps each column's type (ints stay ints)
        table.add_row(*[fmt_metric(c, v) if is_percent(c) else fmt_number(v) for c, v in zip(cols, r,
                                                                                               strict=True)])
    return table

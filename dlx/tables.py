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

    table = Table(show_header=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", overflow="fold")
    for k, v in rows.items():
        table.add_row(str(k), fmt_metric(k, v))
    return titled(title, table)


def titled(title: str, *tables):
    """A title line above the table(s): plain text, so it is not padded with spaces to the table's width."""
    from rich.console import Group
    from rich.text import Text

    title = str(title).strip()
    return Group(*([Text(title)] if title else []), *tables)


def console_width() -> int:
    """The terminal's width (80 when piped, as rich assumes; $COLUMNS wins)."""
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)


def frame_table(title: str, df, columns: list[str] | None = None, width: int | None = None):
    """A DataFrame's rows under its (or the given) columns, fitted to the terminal (80 columns when piped):
    names and numbers are never split. Columns that hold one value in every row move into the title (they
    are the sweep's fixed settings); a one-row table is shown as name | value lines; a table too wide for
    the terminal is shown in parts, each repeating the first column. Rates print as percentages."""
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    title = str(title).strip()
    cells = {c: [fmt_metric(c, v) if is_percent(c) else fmt_number(v) for v in df[c].tolist()] for c in cols}
    if len(df) == 1:
        return metrics_table(title, {c: df[c].iloc[0] for c in cols})
    fixed = {c: df[c].iloc[0] for c in cols if len(df) > 1 and df[c].astype(str).nunique() == 1}
    if fixed:
        title = f"{title} ({', '.join(f'{c}={fmt_number(v)}' for c, v in fixed.items())})".strip()
        cols = [c for c in cols if c not in fixed]
    width = width or console_width()
    need = {c: max([len(str(c)), *(len(x) for x in cells[c])]) + 3 for c in cols}  # an empty table too
    parts, part, used = [], [], 1
    for c in cols:
        if part and used + need[c] > width:
            parts.append(part)
            part, used = [cols[0]], 1 + need[cols[0]]
        part.append(c)
        used += need[c]
    parts.append(part)
    return titled(title, *[_table(p, cells, len(df)) for p in parts if p])


def _table(cols, cells: dict, n: int):
    from rich.table import Table

    table = Table()
    for col in cols:
        table.add_column(str(col), justify="right", no_wrap=True)
    for i in range(n):
        table.add_row(*[cells[c][i] for c in cols])
    return table

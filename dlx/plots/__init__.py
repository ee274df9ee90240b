"""The plot kit every figure of dlx is drawn with: a table in, a PNG out, never retraining.

``figure`` lays out panels, ``band`` draws a line with a shaded band (mean +- std, or min..max),
``roc`` a ROC curve, ``heatmap`` a labelled matrix, ``style`` finishes an axis (labels, log scales,
grid, legend) and ``save`` writes the PNG atomically and closes the figure.
"""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers or in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(panels: int = 1, cols: int | None = None, size: tuple[float, float] = (6.5, 4.0)):
    """(fig, [axes]) with ``panels`` axes in rows of at most ``cols`` (default: all in one row); ``size`` is
    one panel's (width, height). Cells left over in the last row are hidden."""
    plt = pyplot()
    cols = max(1, min(panels, cols or panels))
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:panels])


def band(ax, x, mean, lo=None, hi=None, label: str | None = None, color=None, style: str = "-o",
         ms: float = 3, alpha: float = 0.15, **kw):
    """A line through ``mean`` with the area between ``lo`` and ``hi`` shaded (none when they are None)."""
    line, = ax.plot(x, mean, style, color=color, ms=ms, label=label, **kw)
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=alpha, lw=0)
    return line


def roc(ax, y_true, score, label: str | None = None, **kw):
    """The ROC curve of ``score`` against binary ``y_true``, with the chance diagonal."""
    import numpy as np
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y_true), np.asarray(score, dtype=np.float64))
    line, = ax.plot(fpr, tpr, lw=1.4, label=label, **kw)
    ax.plot([0, 1], [0, 1], ":", color="#999", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    return line


def heatmap(ax, table, label: str = "", cmap: str = "viridis", xlabel: str = "", ylabel: str = ""):
    """A DataFrame as a colour matrix (index down the y axis, columns along x) with a colour bar."""
    import numpy as np

    mesh = ax.pcolormesh(np.arange(table.shape[1] + 1), np.arange(table.shape[0] + 1), table.to_numpy(),
                         cmap=cmap, shading="flat")
    ax.set_xticks(np.arange(table.shape[1]) + 0.5, [_tick(c) for c in table.columns], rotation=90, fontsize=7)
    ax.set_yticks(np.arange(table.shape[0]) + 0.5, [_tick(i) for i in table.index], fontsize=7)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.figure.colorbar(mesh, ax=ax, label=label)
    return mesh


def _tick(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def style(ax, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
          logx: bool = False, logy: bool = False, legend: bool = True, legend_size: float = 7, **kw):
    """Labels, log axes, a light grid and (when anything is labelled) a legend."""
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(**{k: v for k, v in (("title", title), ("xlabel", xlabel), ("ylabel", ylabel)) if v is not None},
           **kw)
    ax.grid(alpha=0.3, which="both" if logx or logy else "major")
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=legend_size)
    return ax


def integer_ticks(ax, axis: str = "x") -> None:
    """Only whole-number ticks (epochs, layers, counts)."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def metric_axis(metric: str) -> tuple[str, float]:
    """(axis label, scale) of a metric: error and accuracy in %, anything else (auc, rmse) raw."""
    from dlx.tables import is_percent

    return (f"{metric} (%)", 100.0) if is_percent(metric) else (metric, 1.0)


def plain_log_ticks(ax, axis: str = "y") -> None:
    """A log axis labelled with plain numbers (0.5, 2, 30) instead of 5x10^-1, with labels between the
    powers of ten while it spans up to two decades. Call it after the axis is made logarithmic."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    which = ax.yaxis if axis == "y" else ax.xaxis
    which.set_major_formatter(Plain())
    which.set_minor_formatter(Plain(minor_thresholds=(2, 0.5)))


def save(fig, path, title: str | None = None, title_size: float = 10) -> Path:
    """Give the figure its title, lay it out, write the PNG atomically and close the figure."""
    import io

    from dlx.runs import write_bytes

    if title:
        fig.suptitle(title, fontsize=title_size)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    write_bytes(path, buf.getvalue())
    pyplot().close(fig)
    return Path(path)


def read_table(path):
    """A CSV as a DataFrame, or None when it is missing or empty (a sweep that has nothing to show yet)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file() or path.stat().st_size < 2:
        return None
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        from dlx.errors import DlxError

        raise DlxError(f"{path} is not a readable CSV table ({type(err).__name__}): damaged, or not written "
                       "by dlx") from None
    return df if len(df) else None


def need_table(path, columns=()):
    """read_table for the table a figure cannot do without: missing, empty, damaged, or lacking one of
    ``columns`` is one clear error that says which."""
    from dlx.errors import DlxError

    path = Path(path)
    df = read_table(path)
    if df is None:
        if not path.is_file():
            raise DlxError(f"{path} not found: nothing to plot yet (has the run finished?)")
        raise DlxError(f"{path} holds no rows: nothing to plot (damaged, or the run stopped before its "
                       "first row)")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DlxError(f"{path} lacks the column(s) {', '.join(missing)}: damaged, or not written by dlx")
    return df

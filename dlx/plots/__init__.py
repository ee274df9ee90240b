"""One function per figure kind: a table in, a PNG out. Never retrains."""

from __future__ import annotations


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers or in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path) -> None:
    """Write a figure atomically, then close it."""
    import io

    from dlx.runs import write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    write_bytes(path, buf.getvalue())
    pyplot().close(fig)

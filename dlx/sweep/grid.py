"""Grid expansion and deterministic run ids."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass

from dlx.errors import DlxError


@dataclass(frozen=True)
class Child:
    run_id: str
    overrides: tuple[str, ...]  # only what distinguishes this child; the sweep's own overrides come first
    params: dict  # the grid values, for tables
    kind: str = "train"  # the registered experiment that runs it: train, or fit for a non-torch baseline


def _fmt(value) -> str:
    return "null" if value is None else str(value)


def run_id(params: dict) -> str:
    """Readable and deterministic: 'width=8,label_noise=0.1,seed=0' -> 'width8_label_noise0.1_seed0-1a2b3c'.
    The hash covers the full keys, so two grids that differ only in a key's prefix never collide."""
    text = ",".join(f"{k}={_fmt(v)}" for k, v in params.items())
    # the readable part leaves out null values (n_train=null means "all"); the hash keeps every key
    short = "_".join(f"{k.split('.')[-1]}{_fmt(v)}" for k, v in params.items() if v is not None)
    short = re.sub(r"[^A-Za-z0-9_.+-]", "", short)[:80]
    return f"{short or 'run'}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def expand(grid: dict[str, list], zipped: bool = False, kind: str = "train") -> list[Child]:
    """{'model.width': [4, 8], 'seed': [0, 1]} -> 4 children (Cartesian) or 2 (zipped)."""
    if not grid:
        raise DlxError("the sweep is empty: give at least one key with values")
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise DlxError(f"sweep key '{key}' has no values")
    keys = list(grid)
    if zipped:
        lengths = {len(v) for v in grid.values()}
        if len(lengths) != 1:
            sizes = ", ".join(f"{k}: {len(grid[k])}" for k in keys)
            raise DlxError(f"--zip needs lists of equal length, got {sizes}")
        combos = list(zip(*grid.values(), strict=True))
    else:
        combos = list(itertools.product(*grid.values()))
    children = []
    for combo in combos:
        params = dict(zip(keys, combo, strict=True))
        children.append(Child(run_id(params), tuple(f"{k}={_fmt(v)}" for k, v in params.items()), params,
                              kind))
    return children

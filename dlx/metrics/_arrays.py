"""Input checks shared by the metrics: array-likes (lists, numpy arrays, torch tensors) to numpy,
scalars to float, every problem a one-line :class:`~dlx.errors.DlxError`. Never imports torch."""

from __future__ import annotations

import math
import numbers

import numpy as np

from dlx.errors import DlxError


def to_numpy(x) -> np.ndarray:
    """``x`` as a numpy array; a torch tensor (duck-typed, so torch is never imported here) is detached
    and moved to the CPU first, and bfloat16, which numpy lacks, is widened to float32."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) == "torch.bfloat16":
            x = x.float()
    return np.asarray(x)


def as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array of finite numbers (any shape, not empty)."""
    arr = to_numpy(x)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise DlxError(f"{name} must be numeric, got dtype {arr.dtype}") from None
    arr = arr.astype(np.float64, copy=False)
    if arr.size == 0:
        raise DlxError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise DlxError(f"{name} contains NaN or infinite values")
    return arr


def as_vector(x, name: str) -> np.ndarray:
    """``x`` as a 1-D, non-empty, finite float64 array."""
    arr = as_float_array(x, name)
    if arr.ndim != 1:
        raise DlxError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def same_length(**arrays: np.ndarray) -> None:
    """Raise unless the given 1-D arrays all have the same length."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DlxError("length mismatch: " + ", ".join(f"{n}={m}" for n, m in lengths.items()))


def paired_flat(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Targets and predictions flattened to 1-D. Shapes must match, up to size-1 axes (so ``(n,)`` pairs
    with ``(n, 1)``), which rules out the silent ``(n,) - (n, 1) -> (n, n)`` broadcast."""
    t, p = as_float_array(y_true, "y_true"), as_float_array(y_pred, "y_pred")
    if t.shape != p.shape and np.squeeze(t).shape != np.squeeze(p).shape:
        raise DlxError(f"shape mismatch: y_true {t.shape} vs y_pred {p.shape}")
    return t.ravel(), p.ravel()


def as_scalar(x, name: str) -> float:
    """``x`` (a Python/numpy number or a one-element array or tensor) as a finite float."""
    if isinstance(x, bool | np.bool_):
        raise DlxError(f"{name} must be a number, got {x!r}")
    if not isinstance(x, numbers.Real):
        arr = to_numpy(x)
        if arr.size != 1 or arr.dtype.kind not in "iuf":
            raise DlxError(f"{name} must be a single number, got {type(x).__name__} of shape {arr.shape}")
        x = arr.reshape(())
    value = float(x)
    if not math.isfinite(value):
        raise DlxError(f"{name} must be finite, got {value}")
    return value


def as_groups(groups, n: int) -> np.ndarray:
    """``groups`` as a sortable 1-D array of ``n`` group keys: numeric or string labels as they are, any
    other hashable labels (tuples, None, mixed types) as integer codes in first-seen order."""
    try:
        arr = to_numpy(groups)
    except ValueError:  # ragged, e.g. tuples of different lengths
        arr = None
    if arr is None or (arr.ndim > 1 and not isinstance(groups, np.ndarray)):
        try:
            arr = np.fromiter(groups, dtype=object, count=len(groups))  # e.g. a list of tuples
        except (TypeError, ValueError):
            raise DlxError("groups must be a 1-D sequence of hashable labels") from None
    if arr.ndim != 1:
        raise DlxError(f"groups must be 1-D, got shape {arr.shape}")
    if len(arr) != n:
        raise DlxError(f"length mismatch: scores={n}, groups={len(arr)}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DlxError("groups contains NaN")
    if arr.dtype.kind == "O":  # hashing is faster than sorting Python objects, and works for mixed types
        index: dict = {}
        codes = (index.setdefault(g, len(index)) for g in arr)
        try:
            arr = np.fromiter(codes, dtype=np.intp, count=n)
        except TypeError as err:
            raise DlxError(f"group labels must be hashable: {err}") from None
    return arr

"""Point and probabilistic forecast errors. Inputs of any shape are flattened (shapes must match)."""

from __future__ import annotations

import numpy as np

from dlx.errors import DlxError
from dlx.metrics._arrays import as_scalar, paired_flat


def rmse(y_true, y_pred) -> float:
    """Root mean squared error: ``sqrt(mean((y - ŷ)²))``."""
    t, p = paired_flat(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def quantile_loss(y_true, y_pred, q: float) -> float:
    """Weighted quantile loss of the ``q``-quantile forecast ``ŷ`` (DeepAR, DeepState):
    ``2 · Σ |(y - ŷ) · (1{y ≤ ŷ} - q)| / Σ |y|``, i.e. twice the summed pinball loss over the summed
    absolute target. At ``q = 0.5`` it is the normalized deviation ``Σ |y - ŷ| / Σ |y|`` (ND).

    ``q`` must lie in (0, 1) and ``Σ |y|`` must be positive.
    """
    q = as_scalar(q, "q")
    if not 0.0 < q < 1.0:
        raise DlxError(f"q must be in (0, 1), got {q}")
    t, p = paired_flat(y_true, y_pred)
    scale = np.abs(t).sum()
    if scale == 0:
        raise DlxError("quantile_loss is undefined when sum(|y_true|) is 0")
    return float(2.0 * np.abs((t - p) * ((t <= p) - q)).sum() / scale)

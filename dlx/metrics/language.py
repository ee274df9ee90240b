"""Language-model metrics."""

from __future__ import annotations

import math

from dlx.errors import DlxError
from dlx.metrics._arrays import as_scalar


def perplexity(total_nll: float, n_tokens: int) -> float:
    """``exp(total_nll / n_tokens)``: the exponentiated mean negative log-likelihood per token, in nats
    (natural log). A model uniform over ``V`` tokens has perplexity ``V``. ``n_tokens`` must be > 0;
    an overflowing result is ``inf``.
    """
    nll, n = as_scalar(total_nll, "total_nll"), as_scalar(n_tokens, "n_tokens")
    if n <= 0:
        raise DlxError(f"n_tokens must be > 0, got {n_tokens}")
    try:
        return math.exp(nll / n)
    except OverflowError:
        return math.inf

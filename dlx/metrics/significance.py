"""Discovery significance of a counting experiment (particle physics)."""

from __future__ import annotations

import math

from dlx.errors import DlxError
from dlx.metrics._arrays import as_scalar


def asimov_z(s: float, b: float, sigma_b: float = 0.0) -> float:
    """Median discovery significance for ``s`` signal over ``b`` background events whose expectation is
    uncertain by ``sigma_b`` events (absolute), from the Asimov data set (Cowan, Cranmer, Gross & Vitells
    2011, Eur. Phys. J. C 71:1554)::

        Z = sqrt(2 ((s+b) ln[(s+b)(b+σ²) / (b² + (s+b)σ²)] - (b²/σ²) ln[1 + σ² s / (b (b+σ²))]))

    which at ``σ = 0`` is ``sqrt(2 ((s+b) ln(1 + s/b) - s))`` and for ``s ≪ b`` about ``s / sqrt(b + σ²)``.
    Requires ``b > 0``, ``s ≥ 0`` and ``sigma_b ≥ 0``.
    """
    s, b, sigma_b = as_scalar(s, "s"), as_scalar(b, "b"), as_scalar(sigma_b, "sigma_b")
    if b <= 0:
        raise DlxError(f"b (expected background) must be > 0, got {b}")
    if s < 0:
        raise DlxError(f"s (expected signal) must be >= 0, got {s}")
    if sigma_b < 0:
        raise DlxError(f"sigma_b (background uncertainty) must be >= 0, got {sigma_b}")
    if sigma_b == 0:
        q = (s + b) * math.log1p(s / b) - s
    else:
        v = sigma_b * sigma_b
        if math.isinf(v):
            return 0.0  # unbounded background uncertainty: no sensitivity (the σ -> ∞ limit)
        # Rewritten so no term divides by σ² (which would overflow or cancel as σ -> 0):
        #   ln[(s+b)(b+σ²) / (b² + (s+b)σ²)] = ln(1 + s·b / (b² + (s+b)σ²))
        #   (b²/σ²) ln(1 + x) = s·b/(b+σ²) · ln(1 + x)/x,  with x = σ² s / (b (b+σ²))
        x = v * s / (b * (b + v))
        log1p_over_x = math.log1p(x) / x if x > 0 else 1.0
        q = (s + b) * math.log1p(s * b / (b * b + (s + b) * v)) - s * b / (b + v) * log1p_over_x
    return math.sqrt(2.0 * max(q, 0.0))

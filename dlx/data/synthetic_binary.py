"""``synthetic_binary``: a seeded signal-vs-background table for binary detection.

Each event has ``features`` (10) features; its label is signal with probability ``signal_fraction``
(0.5). Background is a standard normal in every feature. Signal differs in the first ``informative``
(4) features only: their mean is shifted by ``separation`` (1.0) standard deviations along a fixed
random direction, and the first two are narrower (standard deviation 0.5), so the best boundary is
curved — a linear score separates the classes, a nonlinear one does better. ``n`` (2000) training and
``n_test`` (1000) test events, all drawn from ``seed`` (0)."""

from __future__ import annotations

import numpy as np

from dlx.data.bundle import DataBundle, Meta
from dlx.data.prep import opt
from dlx.data.registry import register_data
from dlx.data.tabular import table_bundle
from dlx.errors import DlxError


def events(m: int, d: int, direction: np.ndarray, frac: float, sep: float, rng):
    """``m`` events and labels; ``direction`` (a unit vector over the informative features) is the signal's
    mean shift."""
    k = len(direction)
    y = (rng.random(m) < frac).astype(np.int64)
    x = rng.normal(size=(m, d))
    sig = y == 1
    x[sig, :2] *= 0.5
    x[sig, :k] += sep * direction
    return x.astype(np.float32), y


@register_data("synthetic_binary")
def build(cfg) -> DataBundle:
    n, n_test = int(opt(cfg, "n", 2000)), int(opt(cfg, "n_test", 1000))
    d, k = int(opt(cfg, "features", 10)), int(opt(cfg, "informative", 4))
    frac, sep = float(opt(cfg, "signal_fraction", 0.5)), float(opt(cfg, "separation", 1.0))
    if n < 4 or n_test < 2 or not 2 <= k <= d or not 0.0 < frac < 1.0 or sep < 0:
        raise DlxError(f"data synthetic_binary needs n>=4, n_test>=2, 2<=informative<=features, "
                       f"signal_fraction in (0, 1) and separation>=0; got n={n} n_test={n_test} "
                       f"informative={k} features={d} signal_fraction={frac} separation={sep}")
    rng = np.random.default_rng(int(opt(cfg, "seed", 0)))
    direction = rng.normal(size=k)
    direction /= np.linalg.norm(direction)
    x, y = events(n, d, direction, frac, sep, rng)
    xt, yt = events(n_test, d, direction, frac, sep, rng)
    if y.min() == y.max() or yt.min() == yt.max():
        raise DlxError("data synthetic_binary drew only one class; raise n, n_test or signal_fraction")
    meta = Meta("synthetic_binary", "binary", (d,), class_names=["background", "signal"], num_outputs=1,
                feature_names=[f"x{i}" for i in range(d)])
    return table_bundle(cfg, x, y, meta, xt, yt)

"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes, no download)."""

from __future__ import annotations

import numpy as np

from dlx.data.bundle import Meta
from dlx.data.prep import Raw, opt, stratified_pick
from dlx.data.registry import register_data
from dlx.errors import DlxError


@register_data("digits")
def build(cfg) -> Raw:
    """Pixels scaled to [0, 1] as (1, 8, 8); stratified test split of ``test_fraction`` by ``split_seed``."""
    frac = float(opt(cfg, "test_fraction", 0.25))
    if not 0.0 < frac < 1.0:
        raise DlxError(f"data.test_fraction must be in (0, 1), got {frac}")
    from sklearn.datasets import load_digits  # lazily: importing scikit-learn costs ~1 s every process

    d = load_digits()
    x = (d.data / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    test_idx, train_idx = stratified_pick(y, int(round(frac * len(y))), int(opt(cfg, "split_seed", 0)))
    meta = Meta("digits", "classify", (1, 8, 8), 10, [str(i) for i in range(10)])
    return Raw(x[train_idx], y[train_idx], x[test_idx], y[test_idx], meta)

"""``synthetic``: seeded Gaussian class clusters of any shape, for fast tests.

Keys: ``n`` (512 train), ``n_test`` (256), ``classes`` (4), ``shape`` ([16]; e.g. [1, 8, 8] images,
[1, 32] sequences), ``seed`` (0), ``separation`` (2.0). Class means are drawn once per seed, about
``separation * sqrt(2)`` noise standard deviations apart; each example is its class mean plus unit Gaussian
noise, so classes overlap: learnable, but not perfectly separable.
"""

from __future__ import annotations

import numpy as np

from dlx.data.bundle import Meta
from dlx.data.prep import Raw, opt
from dlx.data.registry import register_data
from dlx.errors import DlxError


@register_data("synthetic")
def build(cfg) -> Raw:
    """Balanced labels; train and test share the class means but not the noise."""
    n, n_test, k = int(opt(cfg, "n", 512)), int(opt(cfg, "n_test", 256)), int(opt(cfg, "classes", 4))
    shape = tuple(int(s) for s in opt(cfg, "shape", [16]))
    if k < 2 or n < k or n_test < 1 or not shape or min(shape) < 1:
        raise DlxError(f"data synthetic needs classes>=2, n>=classes, n_test>=1 and a positive shape; "
                       f"got classes={k} n={n} n_test={n_test} shape={list(shape)}")
    rng = np.random.default_rng(int(opt(cfg, "seed", 0)))
    dim = int(np.prod(shape))
    # scaled by 1/sqrt(dim) so the difficulty does not depend on the input size
    means = rng.normal(size=(k, dim)) * (float(opt(cfg, "separation", 2.0)) / np.sqrt(dim))

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(m) % k).astype(np.int64)
        x = means[y] + rng.normal(size=(m, dim))
        return x.reshape((m,) + shape), y

    x, y = draw(n)
    xt, yt = draw(n_test)
    meta = Meta("synthetic", "classify", shape, k, [f"class{i}" for i in range(k)])
    return Raw(x, y, xt, yt, meta)

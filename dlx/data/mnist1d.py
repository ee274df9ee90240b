"""``mnist1d``: the MNIST-1D benchmark generated offline by the ``mnist1d`` package, 10 classes."""

from __future__ import annotations

import functools
import random

import numpy as np

from dlx.data.bundle import Meta
from dlx.data.prep import Raw, opt
from dlx.data.registry import register_data


@functools.lru_cache(maxsize=4)
def generate(num_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """(x, y, x_test, y_test), read-only; generation takes seconds, so it is cached per process and on
    disk (dlx/data/generated.py).

    ``make_dataset`` reseeds the global numpy and ``random`` RNGs, so both states are restored afterwards.
    """
    from importlib.metadata import version

    from dlx.data.generated import cached

    def make():
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed, args.url = int(num_samples), int(seed), None
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            d = make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return (d["x"][:, None, :], d["y"].astype(np.int64), d["x_test"][:, None, :],
                d["y_test"].astype(np.int64))

    key = {"num_samples": int(num_samples), "seed": int(seed), "mnist1d": version("mnist1d")}
    out = cached("mnist1d", key, make)
    for a in out:
        a.flags.writeable = False  # shared by every caller of the cache
    return out


@register_data("mnist1d")
def build(cfg) -> Raw:
    """``num_samples`` (default 5000, 80% train) generated with ``seed`` (default 42); inputs (1, 40)."""
    x, y, xt, yt = generate(int(opt(cfg, "num_samples", 5000)), int(opt(cfg, "seed", 42)))
    meta = Meta("mnist1d", "classify", tuple(x.shape[1:]), 10, [str(i) for i in range(10)])
    return Raw(x, y, xt, yt, meta)

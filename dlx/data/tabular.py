"""Shared steps for feature tables that are not multi-class image data (regression targets, binary
labels): a seeded test split, validation carve-out, a training subset, standardization with
training-split statistics, tensors. Regression targets are standardized too; ``meta.extra['target_std']``
lets the task report errors in the target's own units. A table that is not numbers yet (a user's file with
text columns or empty cells) passes an ``encode``r, fitted on the final training rows like the
standardization (dlx/data/table_file.py)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from dlx.data.bundle import DataBundle, Meta
from dlx.data.prep import norm_stats, opt, stratified_pick, to_split
from dlx.errors import DlxError


def pick(n: int, k: int, seed: int, strata: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(picked, rest) index arrays with ``k`` picked: stratified by ``strata`` (binary labels) if given."""
    if strata is not None:
        return stratified_pick(strata, k, seed)
    picked = np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
    return picked, np.setdiff1d(np.arange(n), picked)


def refuse_class_keys(cfg, name: str) -> None:
    """The classification-only keys of data/_common.yaml mean nothing for a feature table."""
    if float(opt(cfg, "label_noise", 0.0)) != 0.0:
        raise DlxError(f"data.label_noise is for classification data; '{name}' has none")
    if opt(cfg, "augment", False):
        raise DlxError(f"data.augment is for images; '{name}' is a feature table")


class Encoder(Protocol):
    """Turns raw table rows into a float matrix: ``fit(train_rows)`` learns what it needs (categories,
    medians), ``transform(rows)`` applies it to any split, ``names`` are the output columns."""

    names: list[str]

    def fit(self, rows) -> Encoder: ...

    def transform(self, rows) -> np.ndarray: ...


def rows_of(x, idx):
    """Rows ``idx`` of an array or a pandas DataFrame."""
    return x.iloc[idx] if hasattr(x, "iloc") else x[idx]


def table_bundle(cfg, x, y: np.ndarray, meta: Meta, x_test=None, y_test=None,
                 encode: Encoder | None = None) -> DataBundle:
    """Split (when no test set is given), subset, standardize and tensorize one table (CPU tensors).
    With ``encode``, ``x`` and ``x_test`` are raw rows (a DataFrame): the encoder is fitted on the training
    rows left after the validation carve-out and subset, every split is encoded with it, and
    ``meta.input_shape``/``feature_names`` are set from its output."""
    refuse_class_keys(cfg, meta.name)
    binary = meta.task == "binary"
    x, y = (x if encode is not None else np.asarray(x, np.float32)), np.asarray(y)
    if x_test is None:
        frac = float(opt(cfg, "test_fraction", 0.25))
        if not 0.0 < frac < 1.0:
            raise DlxError(f"data.test_fraction must be in (0, 1), got {frac}")
        split_seed = int(opt(cfg, "split_seed", 0))
        te, tr = pick(len(y), int(round(frac * len(y))), split_seed, y if binary else None)
        x, y, x_test, y_test = rows_of(x, tr), y[tr], rows_of(x, te), y[te]
    seed = int(opt(cfg, "subset_seed", 0))
    frac = float(opt(cfg, "val_fraction", 0.0))
    if not 0.0 <= frac < 1.0:
        raise DlxError(f"data.val_fraction must be in [0, 1), got {frac}")
    x_val = y_val = None
    if round(frac * len(y)) > 0:
        va, tr = pick(len(y), int(round(frac * len(y))), seed, y if binary else None)
        x, y, x_val, y_val = rows_of(x, tr), y[tr], rows_of(x, va), y[va]
    n_train = opt(cfg, "n_train")
    if n_train is not None:
        if not 2 <= int(n_train) <= len(y):
            raise DlxError(f"data.n_train={int(n_train)} must be between 2 and the {len(y)} training rows")
        keep, _ = pick(len(y), int(n_train), seed, y if binary else None)
        x, y = rows_of(x, keep), y[keep]
    if encode is not None:
        encode.fit(x)
        x, x_test = encode.transform(x), encode.transform(x_test)
        x_val = None if x_val is None else encode.transform(x_val)
        meta.input_shape, meta.feature_names = (x.shape[1],), list(encode.names)
    if opt(cfg, "normalize", True):
        mean, std = norm_stats(x)
        x, x_test = (x - mean) / std, (np.asarray(x_test, np.float32) - mean) / std
        x_val = None if x_val is None else (x_val - mean) / std
        meta.extra.update(norm_mean=mean.ravel().tolist(), norm_std=std.ravel().tolist())
    y_dtype = torch.int64 if binary else torch.float32
    if not binary:
        y, y_test = y.astype(np.float64), np.asarray(y_test, np.float64)
        t_mean, t_std = float(y.mean()), float(y.std()) or 1.0
        y, y_test = (y - t_mean) / t_std, (y_test - t_mean) / t_std
        y_val = None if y_val is None else (y_val - t_mean) / t_std
        meta.extra.update(target_mean=t_mean, target_std=t_std)
    return DataBundle(train=to_split(x, y, "cpu", y_dtype), test=to_split(x_test, y_test, "cpu", y_dtype),
                      val=None if x_val is None else to_split(x_val, y_val, "cpu", y_dtype), meta=meta)

"""Steps every classification dataset goes through after loading: val carve-out, subset, label noise,
normalization, tensor conversion and (for images) a batch augmentation. Builders of other data families
return a finished DataBundle instead (dlx/data/tabular.py has the shared steps for feature tables)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlx.data.bundle import Augment, DataBundle, Meta, TensorSplit
from dlx.errors import DlxError


@dataclass
class LabelNoise:
    """Which training labels label noise changed: ``clean`` labels and a bool ``mask`` per example."""

    clean: np.ndarray
    mask: np.ndarray


@dataclass
class Raw:
    """What a dataset builder loads: numpy arrays (examples first) plus metadata."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    meta: Meta


def opt(cfg, key: str, default=None):
    """``cfg[key]``, or ``default`` when the key is missing or null (works for dicts and DictConfig)."""
    value = cfg.get(key, None) if cfg is not None else None
    return default if value is None else value


def stratified_pick(y: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (picked, rest) with ``k`` picked, class counts proportional to ``y``'s.

    Largest-remainder allocation, so balanced classes stay balanced within 1; ties and the
    examples within each class are drawn from ``default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (k / n)
    take = np.floor(quota).astype(int)
    short = k - int(take.sum())
    if short > 0:
        # random tie-break so low class ids are not favoured when remainders are equal
        jitter = rng.random(len(classes)) * 1e-9
        take[np.argsort(-(quota - take + jitter), kind="stable")[:short]] += 1
    picked = []
    for c, t in zip(classes, take, strict=True):
        idx = np.flatnonzero(y == c)
        picked.append(rng.permutation(idx)[:t])
    picked_idx = np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=int)
    rest = np.setdiff1d(np.arange(n), picked_idx)
    return picked_idx, rest


def carve_val(x, y, fraction: float, seed: int, num_classes: int):
    """Hold out a stratified ``fraction`` of the training set; returns (x_tr, y_tr, x_val, y_val)."""
    if not 0.0 <= fraction < 1.0:
        raise DlxError(f"data.val_fraction must be in [0, 1), got {fraction}")
    k = int(round(fraction * len(y)))
    if k == 0:
        return x, y, None, None
    if len(y) - k < num_classes:
        raise DlxError(f"data.val_fraction={fraction} leaves {len(y) - k} training examples "
                       f"for {num_classes} classes")
    val_idx, tr_idx = stratified_pick(y, k, seed)
    return x[tr_idx], y[tr_idx], x[val_idx], y[val_idx]


def subset(x, y, n_train, seed: int, num_classes: int):
    """Stratified seeded subset of ``n_train`` examples; ``None`` or ``n_train == len`` keeps all."""
    if n_train is not None and int(n_train) > len(y):
        raise DlxError(f"data.n_train={int(n_train)} is more than the {len(y)} training examples available")
    if n_train is None or int(n_train) == len(y):
        return x, y
    n_train = int(n_train)
    if n_train < num_classes:
        raise DlxError(f"data.n_train={n_train} is smaller than the number of classes ({num_classes})")
    idx, _ = stratified_pick(y, n_train, seed)
    return x[idx], y[idx]


def add_label_noise(y: np.ndarray, p: float, num_classes: int, seed: int):
    """Replace exactly ``round(p*n)`` labels, chosen by ``seed``, with a uniformly random wrong label.

    Returns (noisy labels, clean labels, bool mask of changed examples).
    """
    if not 0.0 <= p < 1.0:
        raise DlxError(f"data.label_noise must be in [0, 1), got {p}")
    clean = np.asarray(y, dtype=np.int64).copy()
    noisy = clean.copy()
    mask = np.zeros(len(clean), dtype=bool)
    k = int(round(p * len(clean)))
    if k == 0:
        return noisy, clean, mask
    if num_classes < 2:
        raise DlxError("data.label_noise needs at least 2 classes")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(clean), size=k, replace=False)
    # a shift in 1..C-1 modulo C is uniform over the C-1 wrong labels and never the true one
    noisy[idx] = (clean[idx] + rng.integers(1, num_classes, size=k)) % num_classes
    mask[idx] = True
    return noisy, clean, mask


def norm_stats(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 mean/std per channel (axis 1) of the training split, shaped to broadcast over a batch.

    For flat (N, D) inputs every feature is its own channel.
    """
    if x_train.ndim >= 3:
        # one channel at a time keeps the float64 temporaries small for CIFAR-sized arrays
        mean = np.array([x_train[:, c].mean(dtype=np.float64) for c in range(x_train.shape[1])])
        std = np.array([x_train[:, c].std(dtype=np.float64) for c in range(x_train.shape[1])])
    else:
        mean, std = x_train.mean(axis=0, dtype=np.float64), x_train.std(axis=0, dtype=np.float64)
    std[std < 1e-8] = 1.0  # constant channels (e.g. blank image borders) stay finite
    shape = (1, -1) + (1,) * (x_train.ndim - 2)
    return mean.astype(np.float32).reshape(shape), std.astype(np.float32).reshape(shape)


def to_split(x: np.ndarray, y: np.ndarray, device, y_dtype: torch.dtype = torch.int64) -> TensorSplit:
    """Float32 inputs and (by default int64) targets as an (x, y) split on ``device``."""
    return TensorSplit((tensor(x, torch.float32, device), tensor(y, y_dtype, device)))


def tensor(a: np.ndarray, dtype: torch.dtype, device) -> torch.Tensor:
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        a = a.copy()  # read-only arrays are cached loader output; the tensor must not alias them
    return torch.as_tensor(a, dtype=dtype, device=device)


def on_inputs(fn) -> Augment:
    """An image transform ``fn(x, generator) -> x`` as a batch augmentation of (x, y) batches."""

    def augment(batch, generator=None):
        x, *rest = batch
        return (fn(x, generator), *rest)

    return augment


def make_augment(crop_pad: int = 4, flip: bool = True, fill=None):
    """Batch augmentation for (N, C, H, W): random crop from a padded image plus random h-flip.

    The padding is a black (zero) pixel of the *raw* image: after normalization that is ``fill``
    = -mean/std per channel, so padding looks like background rather than grey ink.
    Randomness comes only from the CPU ``generator``, so equal generator states give equal outputs.
    """
    pad = int(crop_pad)
    if pad < 0:
        raise DlxError(f"data.crop_pad must be >= 0, got {crop_pad}")

    def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        oy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
        ox = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
        cols = torch.arange(w).expand(n, w)
        if flip:
            flipped = torch.rand(n, 1, generator=generator) < 0.5
            cols = torch.where(flipped, w - 1 - cols, cols)
        rows = (oy + torch.arange(h)).to(x.device)
        cols = (ox + cols).to(x.device)
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad)) if pad else x
        if pad and fill is not None:
            border = torch.ones(h, w, dtype=torch.bool, device=x.device)
            border = torch.nn.functional.pad(border, (pad, pad, pad, pad), value=False).logical_not()
            value = torch.as_tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
            xp = torch.where(border, value, xp)
        # one gather: batch, channel, row, col index grids broadcast to (n, c, h, w)
        bi = torch.arange(n, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        return xp[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]

    return augment


def prepare(cfg, raw: Raw, device="cpu") -> DataBundle:
    """Run the shared steps on ``raw`` in order and return the bundle with tensors on ``device``."""
    meta = raw.meta
    c = int(meta.num_classes)
    x_tr, y_tr, x_val, y_val = carve_val(raw.x_train, raw.y_train, float(opt(cfg, "val_fraction", 0.0)),
                                         int(opt(cfg, "subset_seed", 0)), c)
    x_tr, y_tr = subset(x_tr, y_tr, opt(cfg, "n_train"), int(opt(cfg, "subset_seed", 0)), c)
    y_noisy, y_clean, mask = add_label_noise(y_tr, float(opt(cfg, "label_noise", 0.0)), c,
                                             int(opt(cfg, "noise_seed", 0)))
    x_te = raw.x_test
    fill = None
    if opt(cfg, "normalize", True):
        mean, std = norm_stats(x_tr)
        x_tr, x_te = (x_tr.astype(np.float32) - mean) / std, (x_te.astype(np.float32) - mean) / std
        x_val = None if x_val is None else (x_val.astype(np.float32) - mean) / std
        meta.extra["norm_mean"] = mean.ravel().tolist()
        meta.extra["norm_std"] = std.ravel().tolist()
        if x_tr.ndim == 4:
            fill = (-mean / std).reshape(-1)[: x_tr.shape[1]].astype(np.float32)
    augment = None
    if opt(cfg, "augment", False):
        if x_tr.ndim != 4:
            raise DlxError(f"data.augment needs image inputs (C, H, W); '{meta.name}' has shape "
                           f"{tuple(x_tr.shape[1:])}")
        augment = on_inputs(make_augment(opt(cfg, "crop_pad", 4), bool(opt(cfg, "flip", True)), fill))
    return DataBundle(
        train=to_split(x_tr, y_noisy, device),
        test=to_split(x_te, raw.y_test, device),
        val=None if x_val is None else to_split(x_val, y_val, device),
        meta=meta,
        augment=augment,
        notes={"label_noise": LabelNoise(y_clean, mask)} if mask.any() else {},
    )

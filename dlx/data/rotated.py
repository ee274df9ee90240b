"""Rotated digits for the symmetry-network experiments (Gens & Domingos, NIPS 2014).

``digits_rot`` (embedded, no download): scikit-learn's 8 x 8 digits upsampled to a ``digit_size`` square
in the middle of a ``size`` x ``size`` frame (so a rotation never cuts a corner off), each training-pool and
test image turned once by a seeded random angle, uniform over ``angles`` (degrees, default [0, 360)) and,
with ``scale: [lo, hi]``, scaled by a log-uniform factor -- the way MNIST-rot was made from MNIST. The
test split is fixed by ``split_seed`` and ``rotation_seed``; ``n_train`` draws a stratified subset of the
training pool (``subset_seed``).

``label`` says what the class is. ``digit`` (the default): the digit, whatever the angle -- the premise a
symmetry network exploits, that turning an image never changes its class, so pooling over rotations loses
nothing the label needs. ``digit_plus_angle`` (the negative control): the class is the digit shifted by
the angle's bin, ``(digit + floor(angle / 36 degrees)) mod 10``. It keeps everything else of the default:
the very same images (the same digits, the same drawn angles and scales, the same test split), ten classes
that are as balanced as before (the angle is uniform and independent of the digit), the same training
subsets' sizes. What it removes is the invariance: turning a digit by 36 degrees moves it to the next class,
and the digit alone (all a rotation-invariant network can see) says nothing about the class (the label is
uniform given the digit), so pooling over the rotation group must hurt. Upright (``rotate: false``: every
angle is 0, bin 0) the control's data is the default's upright data.

``mnist_rot``: the rotated-MNIST benchmark (Larochelle et al., 2007) in its ``.amat`` text format under
``data.root``: ``mnist_all_rotation_normalized_float_train_valid.amat`` (12,000 lines: the first 10,000
train, the last 2,000 validation) and ``mnist_all_rotation_normalized_float_test.amat`` (50,000 lines);
each line is 784 pixel values (28 x 28, row by row, in [0, 1]) then the label, whitespace separated. The
files may also sit inside ``mnist_rotation_new.zip`` as distributed.

Both return a finished bundle: the shared subset, label noise and normalization steps of dlx.data.prep,
then, with ``rotate_augment: true``, every training batch turned by fresh random angles (and scales) drawn
from the training loop's generator, so a resumed run replays the same draws. ``meta.extra['fill']`` is the
normalized background value that rotated-in corners take.
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlx.data.bundle import DataBundle, Meta
from dlx.data.prep import (
    LabelNoise,
    add_label_noise,
    carve_val,
    make_augment,
    norm_stats,
    on_inputs,
    opt,
    stratified_pick,
    subset,
    to_split,
)
from dlx.data.registry import register_data
from dlx.errors import DlxError

DIGITS = [str(i) for i in range(10)]
LABELS = ("digit", "digit_plus_angle")  # data.label: the default, and the negative control
AMAT_TRAIN = "mnist_all_rotation_normalized_float_train_valid.amat"
AMAT_TEST = "mnist_all_rotation_normalized_float_test.amat"
AMAT_ZIP = "mnist_rotation_new.zip"


# ---------------------------------------------------------------------------------------------- warping
def warp_matrices(angles, scales=None) -> torch.Tensor:
    """(N, 2, 2) float64 matrices s R(theta) for angles in radians (and optional scale factors)."""
    th = torch.as_tensor(angles, dtype=torch.float64).reshape(-1)
    c, s = torch.cos(th), torch.sin(th)
    mats = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    if scales is not None:
        mats = mats * torch.as_tensor(scales, dtype=torch.float64).reshape(-1, 1, 1)
    return mats


def rotate_images(x: torch.Tensor, angles, scales=None, fill: float = 0.0) -> torch.Tensor:
    """Turn (N, C, H, W) images about their centre by ``angles`` (radians, one per image or one for all),
    optionally scaling by ``scales``: out(p) = in(A^-1 p) with A = s R(theta), bilinear, the uncovered
    corners set to ``fill`` (the background). The same convention as the symnet's warped filters."""
    n = x.shape[0]
    mats = warp_matrices(angles, scales)
    if len(mats) == 1:
        mats = mats.expand(n, 2, 2)
    if len(mats) != n:
        raise ValueError(f"{len(mats)} angles for {n} images")
    inv = torch.linalg.inv(mats)
    theta = torch.cat([inv, torch.zeros(n, 2, 1, dtype=torch.float64)], 2).to(x.dtype).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def scale_range(cfg) -> tuple[float, float] | None:
    """``data.scale`` as (lo, hi) with 0 < lo <= hi, or None."""
    s = opt(cfg, "scale")
    if s is None:
        return None
    try:
        lo, hi = (float(v) for v in s)
    except (TypeError, ValueError):
        raise DlxError(f"data.scale must be null or [low, high] scale factors, got {s!r}") from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise DlxError(f"data.scale must be [low, high] with 0 < low <= high, got {s!r}")
    return lo, hi


def angle_range(cfg) -> tuple[float, float]:
    """``data.angles`` in degrees as (lo, hi) radians; default the full circle."""
    a = opt(cfg, "angles", [0.0, 360.0])
    try:
        lo, hi = (float(v) for v in a)
    except (TypeError, ValueError):
        raise DlxError(f"data.angles must be [low, high] in degrees, got {a!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi and hi - lo <= 360):
        raise DlxError(f"data.angles must be [low, high] degrees with low <= high and a span <= 360, "
                       f"got {a!r}")
    return math.radians(lo), math.radians(hi)


def draw_transforms(n: int, angles: tuple[float, float], scale, generator: torch.Generator):
    """n angles uniform over ``angles`` and (with ``scale``) n log-uniform scales, from ``generator``."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    th = angles[0] + (angles[1] - angles[0]) * u
    if scale is None:
        return th, None
    v = torch.rand(n, generator=generator, dtype=torch.float64)
    return th, torch.exp(math.log(scale[0]) + (math.log(scale[1]) - math.log(scale[0])) * v)


def rotation_augment(angles, scale, fill: float):
    """Batch augmentation: each training image turned (and scaled) afresh from the loop's generator."""

    def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        th, sc = draw_transforms(x.shape[0], angles, scale, generator)
        return rotate_images(x, th, sc, fill)

    return augment


# ------------------------------------------------------------------------------------------ digits_rot
def angle_bins(angles, bins: int = 10) -> np.ndarray:
    """The bin of each angle (radians) among ``bins`` equal sectors of the full circle, from 0."""
    turn = np.mod(np.asarray(angles, dtype=np.float64), 2 * math.pi) / (2 * math.pi)
    return np.minimum((turn * bins).astype(np.int64), bins - 1)


def relabel(digits: np.ndarray, angles, label: str) -> np.ndarray:
    """The class of each image from its digit and the angle it was turned by (see the module docstring)."""
    if label == "digit":
        return digits
    return (digits + angle_bins(angles, len(DIGITS))) % len(DIGITS)


def label_kind(cfg) -> str:
    label = str(opt(cfg, "label", "digit"))
    if label not in LABELS:
        raise DlxError(f"data.label must be one of {', '.join(LABELS)}, got {label!r}")
    return label


@functools.lru_cache(maxsize=8)
def make_digits(size: int, digit_size: int, test_fraction: float, split_seed: int, rotate: bool,
                angles: tuple[float, float], scale: tuple[float, float] | None, rotation_seed: int,
                label: str = "digit"):
    """(x_pool, y_pool, x_test, y_test) in [0, 1], read-only: upsampled, framed and (once) rotated. The
    split is stratified by the digit whatever ``label`` is, so the control keeps the default's images."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.data.reshape(-1, 1, 8, 8) / 16.0, dtype=torch.float32)
    x = F.interpolate(x, size=(digit_size, digit_size), mode="bilinear", align_corners=False).clamp(0, 1)
    pad = size - digit_size
    x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    y = d.target.astype(np.int64)
    test_idx, pool_idx = stratified_pick(y, int(round(test_fraction * len(y))), split_seed)
    th = np.zeros(len(y))  # upright: every angle 0
    if rotate:
        gen = torch.Generator().manual_seed(int(rotation_seed))
        th, sc = draw_transforms(len(y), angles, scale, gen)  # one draw per original image
        x = rotate_images(x, th, sc).clamp(0, 1)
        th = th.numpy()
    y = relabel(y, th, label)
    x = x.numpy()
    out = (x[pool_idx], y[pool_idx], x[test_idx], y[test_idx])
    for a in out:
        a.flags.writeable = False
    return out


@register_data("digits_rot")
def build_digits_rot(cfg) -> DataBundle:
    size, digit = int(opt(cfg, "size", 24)), int(opt(cfg, "digit_size", 16))
    if not 8 <= digit <= size:
        raise DlxError(f"data.digit_size must be in [8, data.size={size}], got {digit}")
    frac = float(opt(cfg, "test_fraction", 0.3))
    if not 0.0 < frac < 1.0:
        raise DlxError(f"data.test_fraction must be in (0, 1), got {frac}")
    angles, scale = angle_range(cfg), scale_range(cfg)
    arrays = make_digits(size, digit, frac, int(opt(cfg, "split_seed", 0)), bool(opt(cfg, "rotate", True)),
                         angles, scale, int(opt(cfg, "rotation_seed", 0)), label_kind(cfg))
    meta = Meta("digits_rot", "classify", (1, size, size), 10, DIGITS)
    return finish(cfg, meta, *arrays)


# ------------------------------------------------------------------------------------------- mnist_rot
def parse_amat(text: str, name: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lines of 784 pixel values then a label -> ((N, 1, 28, 28) float32, (N,) int64). A malformed line
    (wrong count, not a number, a label that is not 0..9, a pixel outside [0, 1]) is one clear error
    naming the line."""
    try:
        vals = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2, max_rows=limit)
    except ValueError:
        vals = None
    if vals is None or vals.shape[1] != 785 or not _valid(vals):
        check_lines(text, name, limit)  # names the first bad line
        raise DlxError(f"{name}: not a MNIST-rot .amat file (785 numbers a line)")
    if not len(vals):
        raise DlxError(f"{name} has no data lines")
    return vals[:, :784].astype(np.float32).reshape(-1, 1, 28, 28).clip(0, 1), vals[:, 784].astype(np.int64)


def _valid(vals: np.ndarray) -> bool:
    label, pix = vals[:, -1], vals[:, :-1]
    return bool(np.isfinite(vals).all() and (label == np.round(label)).all() and (label >= 0).all()
                and (label <= 9).all() and (pix >= -1e-6).all() and (pix <= 1 + 1e-6).all())


def check_lines(text: str, name: str, limit: int | None = None) -> None:
    """Find the first malformed line and raise its one-line error."""
    seen = 0
    for i, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if limit is not None and seen >= limit:
            return
        seen += 1
        if len(parts) != 785:
            raise DlxError(f"{name} line {i}: expected 785 whitespace-separated numbers (784 pixels then the "
                           f"label), got {len(parts)}")
        bad = next((p for p in parts if not _is_number(p)), None)
        if bad is not None:
            raise DlxError(f"{name} line {i}: '{bad[:20]}' is not a number")
        vals = np.array(parts, dtype=np.float64)
        label = vals[-1]
        if not (np.isfinite(label) and label == round(label) and 0 <= label <= 9):
            raise DlxError(f"{name} line {i}: label {parts[-1]!r} is not a digit 0..9")
        if not np.isfinite(vals).all() or vals[:-1].min() < -1e-6 or vals[:-1].max() > 1 + 1e-6:
            raise DlxError(f"{name} line {i}: pixel values must be numbers in [0, 1] (normalized .amat)")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_amat(root: Path, name: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``root/name``, or the member ``name`` of ``root/mnist_rotation_new.zip``."""
    path = root / name
    if path.is_file():
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise DlxError(f"cannot read {path}: {e}") from None
        return parse_amat(text, str(path), limit)
    bundle = root / AMAT_ZIP
    if bundle.is_file():
        try:
            with zipfile.ZipFile(bundle) as z:
                member = next((m for m in z.namelist() if Path(m).name == name), None)
                if member is not None:
                    text = io.TextIOWrapper(z.open(member), encoding="ascii").read()
                    return parse_amat(text, f"{bundle}:{member}", limit)
        except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as e:
            raise DlxError(f"cannot read {bundle}: {e}") from None
    raise DlxError(f"missing {path}: data.root must hold the MNIST-rot files {AMAT_TRAIN} and {AMAT_TEST} "
                   f"(or {AMAT_ZIP})")


@functools.lru_cache(maxsize=2)
def load_mnist_rot(root: str, n_valid: int, test_limit: int | None):
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DlxError(f"data.root {base} is not a folder; mnist_rot needs a folder with {AMAT_TRAIN} and "
                       f"{AMAT_TEST}")
    x, y = read_amat(base, AMAT_TRAIN)
    xt, yt = read_amat(base, AMAT_TEST, test_limit)
    if n_valid >= len(y):
        raise DlxError(f"data.n_valid={n_valid} leaves no training lines in {AMAT_TRAIN} ({len(y)} lines)")
    out = (x[: len(y) - n_valid], y[: len(y) - n_valid], x[len(y) - n_valid:], y[len(y) - n_valid:], xt, yt)
    for a in out:
        a.flags.writeable = False
    return out


@register_data("mnist_rot", root="required")
def build_mnist_rot(cfg) -> DataBundle:
    if label_kind(cfg) != "digit":
        raise DlxError("data.label=digit_plus_angle needs the angle each image was turned by: only "
                       "data=digits_rot draws them (MNIST-rot's files do not record them)")
    if opt(cfg, "root") is None:
        raise DlxError(f"data.root is required for mnist_rot: a folder with {AMAT_TRAIN} and {AMAT_TEST}")
    n_valid = int(opt(cfg, "n_valid", 2000))
    if n_valid < 0:
        raise DlxError(f"data.n_valid must be >= 0, got {n_valid}")
    limit = opt(cfg, "test_limit")
    if limit is not None and int(limit) < 1:
        raise DlxError(f"data.test_limit must be >= 1 or null (the whole test file), got {limit}")
    limit = None if limit is None else int(limit)
    x, y, xv, yv, xt, yt = load_mnist_rot(str(opt(cfg, "root")), n_valid, limit)
    if bool(opt(cfg, "merge_valid", False)):
        x, y, xv, yv = np.concatenate([x, xv]), np.concatenate([y, yv]), xv[:0], yv[:0]
    meta = Meta("mnist_rot", "classify", (1, 28, 28), 10, DIGITS)
    return finish(cfg, meta, x, y, xt, yt, xv if len(xv) else None, yv if len(yv) else None)


# ---------------------------------------------------------------------------------------------- shared
def finish(cfg, meta: Meta, x, y, x_test, y_test, x_val=None, y_val=None) -> DataBundle:
    """The shared classification steps (val carve-out, stratified subset, label noise, normalization),
    then the bundle with its training-batch augmentations."""
    c = 10
    seed = int(opt(cfg, "subset_seed", 0))
    if x_val is None:
        x, y, x_val, y_val = carve_val(x, y, float(opt(cfg, "val_fraction", 0.0)), seed, c)
    x, y = subset(x, y, opt(cfg, "n_train"), seed, c)
    y_noisy, y_clean, mask = add_label_noise(y, float(opt(cfg, "label_noise", 0.0)), c,
                                             int(opt(cfg, "noise_seed", 0)))
    x = np.asarray(x, dtype=np.float32)
    fill = 0.0
    if opt(cfg, "normalize", True):
        mean, std = norm_stats(x)
        x, x_test = (x - mean) / std, (np.asarray(x_test, np.float32) - mean) / std
        x_val = None if x_val is None else (np.asarray(x_val, np.float32) - mean) / std
        meta.extra.update(norm_mean=mean.ravel().tolist(), norm_std=std.ravel().tolist())
        fill = float(-mean.ravel()[0] / std.ravel()[0])
    meta.extra["fill"] = fill
    steps = []
    if opt(cfg, "rotate_augment", False):
        steps.append(rotation_augment(angle_range(cfg), scale_range(cfg), fill))
    if opt(cfg, "augment", False):
        steps.append(make_augment(opt(cfg, "crop_pad", 4), bool(opt(cfg, "flip", False)), np.float32([fill])))
    augment = None
    if steps:
        def chain(x, generator=None):
            for step in steps:
                x = step(x, generator)
            return x

        augment = on_inputs(chain)
    return DataBundle(
        train=to_split(x, y_noisy, "cpu"),
        test=to_split(np.asarray(x_test, np.float32), y_test, "cpu"),
        val=None if x_val is None else to_split(np.asarray(x_val, np.float32), y_val, "cpu"),
        meta=meta, augment=augment,
        notes={"label_noise": LabelNoise(y_clean, mask)} if mask.any() else {},
    )

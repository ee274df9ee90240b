"""``smallnorb``: the small NORB data set (LeCun, Huang & Bottou, CVPR 2004) in its "binary matrix" files.

Six files under ``data.root``, each raw or gzipped (``.gz``)::

    smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat
    smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat

The format: an int32 little-endian magic number naming the element type (0x1E3D4C55 uint8, 0x1E3D4C54
int32; the format's float32 0x1E3D4C51, float64 0x1E3D4C53 and int16 0x1E3D4C56 never occur in small NORB and
are refused), an int32 ``ndim``, then ``max(3, ndim)`` int32 dimensions (the unused ones are 1), then the
elements in C order, little-endian. ``dat`` is uint8 (N, 2, 96, 96): each example a stereo pair (left
camera, right camera) of 96 x 96 grey images; ``cat`` is int32 (N,): the class 0..4 (animal, human,
airplane, truck, car); ``info`` is int32 (N, 4): instance, elevation (0..8), azimuth (0, 2, ..., 34) and
lighting (0..5). The real splits have N = 24,300 each; any N is read, and the three files of a split must
agree on it. Files are parsed with numpy from their bytes (never unpickled); every malformed input (a
missing file, a wrong magic number or shape, a truncated file, a label outside 0..4) is one clear line.

Options (conf/data/smallnorb.yaml): ``size`` (default 48), the images' side after downsampling from 96 by
area averaging (each output pixel the mean of an f x f block, f = 96 / size: any divisor of 96, e.g. 96,
48, 32, 24); ``channels``: ``left`` (1 channel, the left camera) or ``both`` (2 channels, the stereo pair);
``test_limit``: evaluate on the first N test examples only (null = all). Pixels are scaled to [0, 1];
inputs are (C, size, size). The builder returns ``Raw`` arrays, so the class-based prep shared by every
classification dataset (dlx.data.prep: stratified ``n_train`` subsets, label noise, per-channel
normalisation, the ``val_fraction`` validation split, augmentation) applies unchanged.
``meta.extra['test_info']`` holds the test split's info rows (read-only int32 (N_test, 4), columns
``meta.extra['info_columns']``); the training split's are not kept, since subsets reorder it.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from pathlib import Path

import numpy as np

from dlx.data.bundle import Meta
from dlx.data.prep import Raw, opt
from dlx.data.registry import register_data
from dlx.errors import DlxError

SIDE = 96  # the side of every small NORB image
CLASSES = ["animal", "human", "airplane", "truck", "car"]
INFO_COLUMNS = ["instance", "elevation", "azimuth", "lighting"]
SPLITS = {"train": "smallnorb-5x46789x9x18x6x2x96x96-training",
          "test": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
KINDS = ("dat", "cat", "info")
UINT8, INT32 = 0x1E3D4C55, 0x1E3D4C54
OTHER_TYPES = {0x1E3D4C51: "float32", 0x1E3D4C52: "packed", 0x1E3D4C53: "float64", 0x1E3D4C56: "int16"}
# kind -> (magic, element type, its name, ndim, the dimensions after N)
LAYOUT = {"dat": (UINT8, np.dtype(np.uint8), "uint8", 4, (2, SIDE, SIDE)),
          "cat": (INT32, np.dtype("<i4"), "int32", 1, ()),
          "info": (INT32, np.dtype("<i4"), "int32", 2, (4,))}
CHANNELS = ("left", "both")
SIZES = tuple(s for s in range(1, SIDE + 1) if SIDE % s == 0)
CHUNK = 1024  # images downsampled at a time (keeps the float temporaries small)
FORMAT = "the six small NORB files " + ", ".join(f"{SPLITS[s]}-{k}.mat[.gz]" for s in SPLITS for k in KINDS)


# ---------------------------------------------------------------------------------------------- options
def size_of(cfg) -> int:
    s = opt(cfg, "size", 48)
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or int(s) not in SIZES:
        raise DlxError(f"data.size must divide {SIDE} (the images are downsampled by area averaging): one of "
                       f"{', '.join(map(str, SIZES))}; got {s!r}")
    return int(s)


def channels_of(cfg) -> str:
    c = opt(cfg, "channels", "left")
    if c not in CHANNELS:
        raise DlxError(f"data.channels must be left (the left camera, 1 channel) or both (the stereo pair, "
                       f"2 channels), got {c!r}")
    return str(c)


def limit_of(cfg) -> int | None:
    n = opt(cfg, "test_limit")
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) < 1:
        raise DlxError(f"data.test_limit must be an integer >= 1 or null (the whole test split), got {n!r}")
    return int(n)


def root_of(cfg) -> Path:
    if opt(cfg, "root") is None:
        raise DlxError(f"data.root is required for smallnorb: a folder with {FORMAT}")
    root = Path(str(opt(cfg, "root"))).expanduser()
    if not root.is_dir():
        raise DlxError(f"data.root {root} is not a folder; smallnorb needs a folder with {FORMAT}")
    return root


def find(root: Path, name: str) -> Path:
    """``root/name`` or ``root/name.gz``."""
    for p in (root / name, root / f"{name}.gz"):
        if p.is_file():
            return p
    raise DlxError(f"missing {root / name}[.gz]: data.root must hold {FORMAT}")


def paths(root: Path) -> dict[str, dict[str, Path]]:
    return {s: {k: find(root, f"{SPLITS[s]}-{k}.mat") for k in KINDS} for s in SPLITS}


def check(cfg) -> None:
    """What data=smallnorb refuses before loading: its options and a missing file."""
    size_of(cfg), channels_of(cfg), limit_of(cfg)
    paths(root_of(cfg))


# --------------------------------------------------------------------------------------------- reading
def read_matrix(path: Path, kind: str) -> np.ndarray:
    """Parse one binary-matrix file of ``kind`` (dat, cat or info) into a read-only array of its layout."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DlxError(f"cannot read {path}: {e}") from None
    magic, dtype, tname, ndim, tail = LAYOUT[kind]
    if len(raw) < 8:
        raise DlxError(f"corrupt small NORB file {path}: only {len(raw)} bytes, shorter than a header")
    got, nd = (int(v) for v in np.frombuffer(raw, "<u4", 2))
    if got != magic:
        what = OTHER_TYPES.get(got)
        kind_of = f"a {what} matrix" if what else "not a binary-matrix magic number"
        raise DlxError(f"corrupt small NORB file {path}: magic {got:#010x} ({kind_of}), expected "
                       f"{magic:#010x} (a {tname} matrix)")
    if nd != ndim:
        raise DlxError(f"corrupt small NORB file {path}: header says {nd} dimensions, expected {ndim} "
                       f"(N{''.join(f' x {d}' for d in tail)})")
    head = 8 + 4 * max(3, ndim)
    if len(raw) < head:
        raise DlxError(f"corrupt small NORB file {path}: {len(raw)} bytes, shorter than its {head}-byte "
                       "header")
    dims = tuple(int(d) for d in np.frombuffer(raw, "<i4", ndim, 8))
    if dims[0] < 0 or dims[1:] != tail:
        want = " x ".join(["N", *map(str, tail)])
        raise DlxError(f"corrupt small NORB file {path}: dimensions {' x '.join(map(str, dims))}, expected "
                       f"{want}")
    need = int(np.prod(dims)) * dtype.itemsize
    have = len(raw) - head
    if have < need:
        raise DlxError(f"truncated small NORB file {path}: header says {' x '.join(map(str, dims))} = {need} "
                       f"bytes of data, found {have}")
    if have > need:
        raise DlxError(f"corrupt small NORB file {path}: {have - need} bytes after the "
                       f"{' x '.join(map(str, dims))} {tname} matrix the header describes")
    return np.frombuffer(raw, dtype, offset=head).reshape(dims)


def downsample(x: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, C, 96, 96) -> float32 (N, C, size, size) in [0, 1], each pixel an f x f block's mean
    (f = 96 / size). The block sums (at most 96 x 96 bytes) are exact in float32."""
    n, c = x.shape[:2]
    f = SIDE // size
    out = np.empty((n, c, size, size), np.float32)
    for i in range(0, n, CHUNK):
        blk = x[i:i + CHUNK]
        if f <= 4:  # a few strided adds beat numpy's reductions over short axes
            acc = np.zeros((len(blk), c, size, size), np.float32)
            for a in range(f):
                for b in range(f):
                    acc += blk[:, :, a::f, b::f]
        else:  # rows of blocks, then columns
            acc = blk.astype(np.float32).reshape(-1, c, size, f, SIDE).sum(axis=3)
            acc = acc.reshape(-1, c, size, size, f).sum(axis=4)
        acc /= np.float32(f * f * 255)
        out[i:i + CHUNK] = acc
    return out


def read_split(files: dict[str, Path], limit: int | None = None):
    """(dat uint8 (N, 2, 96, 96), labels int64 (N,), info int32 (N, 4)) of one split, checked to agree;
    ``limit``: the first ``limit`` examples only."""
    dat, cat, info = (read_matrix(files[k], k) for k in KINDS)
    if not (len(dat) == len(cat) == len(info)):
        raise DlxError(f"small NORB files disagree: {files['dat']} has {len(dat)} examples, {files['cat']} "
                       f"{len(cat)} and {files['info']} {len(info)}")
    if not len(dat):
        raise DlxError(f"small NORB file {files['dat']} has no examples")
    bad = np.flatnonzero((cat < 0) | (cat >= len(CLASSES)))
    if len(bad):
        raise DlxError(f"corrupt small NORB file {files['cat']}: label {int(cat[bad[0]])} at example "
                       f"{int(bad[0])} is outside 0..{len(CLASSES) - 1}")
    if limit is not None:
        dat, cat, info = dat[:limit], cat[:limit], info[:limit]
    return dat, cat.astype(np.int64), info


@functools.lru_cache(maxsize=1)
def load(files: tuple, stamps: tuple, size: int, channels: str, limit: int | None):
    """Both splits as read-only arrays (x, y, x_test, y_test, test_info); ``stamps`` (each file's size and
    modification time) keeps the cache from serving a file that has since changed."""
    del stamps
    out = []
    for group, n in zip(files, (None, limit), strict=True):
        dat, y, info = read_split(dict(zip(KINDS, group, strict=True)), n)
        out += [downsample(dat[:, :1] if channels == "left" else dat, size), y]
    out.append(info)  # the test split's
    for a in out:
        a.flags.writeable = False
    return tuple(out)


@register_data("smallnorb", root="required", check=check)
def build_smallnorb(cfg) -> Raw:
    """small NORB's 5 classes, (1 or 2, size, size) in [0, 1]."""
    size, channels, limit = size_of(cfg), channels_of(cfg), limit_of(cfg)
    found = paths(root_of(cfg))
    files = tuple(tuple(found[s][k] for k in KINDS) for s in SPLITS)
    stamps = tuple((p.stat().st_size, p.stat().st_mtime_ns) for group in files for p in group)
    x, y, xt, yt, info = load(files, stamps, size, channels, limit)
    meta = Meta("smallnorb", "classify", tuple(x.shape[1:]), len(CLASSES), list(CLASSES))
    meta.extra.update(test_info=info, info_columns=list(INFO_COLUMNS), channels=channels)
    return Raw(x, y, xt, yt, meta)

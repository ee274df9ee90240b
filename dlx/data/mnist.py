"""``mnist`` and ``fashion_mnist``: the four IDX files (raw or ``.gz``) under ``data.root``."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from dlx.data.bundle import Meta
from dlx.data.prep import Raw, opt
from dlx.data.registry import register_data
from dlx.errors import DlxError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FORMAT = "IDX files " + ", ".join(f"{f}[.gz]" for f in FILES)
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]


def find(root: Path, name: str) -> Path:
    """``root/name`` or ``root/name.gz``."""
    for p in (root / name, root / f"{name}.gz"):
        if p.is_file():
            return p
    raise DlxError(f"missing {root / name}[.gz]: data.root must hold the {FORMAT}")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file (magic 0x0000080<ndim>, big-endian uint32 dims) into an array."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DlxError(f"cannot read {path}: {e}") from None
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DlxError(f"corrupt IDX file {path}: only {len(raw)} bytes")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x800 + ndim:
        raise DlxError(f"corrupt IDX file {path}: magic {magic:#010x}, expected {0x800 + ndim:#010x}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    if len(raw) - head != int(np.prod(dims)):
        raise DlxError(f"corrupt IDX file {path}: header says {dims} = {int(np.prod(dims))} bytes of data, "
                       f"found {len(raw) - head}")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(dims)


def load_pair(root: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """Images scaled to [0, 1] as (N, 1, H, W) and int64 labels, checked to agree in count and range."""
    ipath, lpath = find(root, images), find(root, labels)
    x, y = read_idx(ipath, 3), read_idx(lpath, 1).astype(np.int64)
    if len(x) != len(y):
        raise DlxError(f"corrupt IDX pair: {ipath} has {len(x)} images but {lpath} has {len(y)} labels")
    if len(y) and y.max() > 9:
        raise DlxError(f"corrupt IDX file {lpath}: label {y.max()} outside 0..9")
    x = x[:, None].astype(np.float32)
    x /= 255.0
    return x, y


def load(cfg, name: str, class_names: list[str]) -> Raw:
    """Read ``cfg.root`` for dataset ``name``."""
    if opt(cfg, "root") is None:
        raise DlxError(f"data.root is required for {name}: a folder with the {FORMAT}")
    root = Path(str(opt(cfg, "root"))).expanduser()
    if not root.is_dir():
        raise DlxError(f"data.root {root} is not a folder; {name} needs a folder with the {FORMAT}")
    x, y = load_pair(root, FILES[0], FILES[1])
    xt, yt = load_pair(root, FILES[2], FILES[3])
    if x.shape[1:] != xt.shape[1:]:
        raise DlxError(f"{name}: train images are {x.shape[2:]} but test images are {xt.shape[2:]}")
    return Raw(x, y, xt, yt, Meta(name, "classify", tuple(x.shape[1:]), 10, class_names))


@register_data("mnist", root="required")
def build_mnist(cfg) -> Raw:
    """MNIST handwritten digits, (1, 28, 28) in [0, 1]."""
    return load(cfg, "mnist", [str(i) for i in range(10)])


@register_data("fashion_mnist", root="required")
def build_fashion(cfg) -> Raw:
    """Fashion-MNIST, same file format as MNIST."""
    return load(cfg, "fashion_mnist", list(FASHION))

"""``cifar10`` and ``cifar100``: the python-version pickled batches under ``data.root``.

The batches are pickles, so they are read only through ``SafeUnpickler``, which resolves nothing but
the numpy names an array needs; any other global (``os.system``, ``builtins.exec``...) is refused before
it can be called.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from dlx.data.bundle import Meta
from dlx.data.prep import Raw, opt
from dlx.data.registry import register_data
from dlx.errors import DlxError

NP_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"
# (module, name) as written in the pickle -> where to import it from; old numpy.core paths go to numpy._core
# on numpy 2 so its deprecation shim is not needed
ALLOWED = {("numpy", "ndarray"): ("numpy", "ndarray"), ("numpy", "dtype"): ("numpy", "dtype")}
for _pkg in ("numpy.core", "numpy._core"):
    for _mod, _name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")):
        ALLOWED[(f"{_pkg}.{_mod}", _name)] = (f"{NP_CORE}.{_mod}", _name)
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that only resolves numpy array reconstruction; everything else raises DlxError."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return self.latin1_bytes
        target = ALLOWED.get((module, name))
        if target is None:
            raise DlxError(f"refusing to unpickle {module}.{name} in {self.path}: CIFAR batches hold only "
                           "arrays, lists, dicts, strings and numbers")
        return super().find_class(*target)

    def latin1_bytes(self, text: str, encoding: str = "latin1") -> bytes:
        """Stand-in for ``_codecs.encode``, which protocol 0-2 pickles written by Python 3 use for bytes."""
        if not isinstance(text, str) or str(encoding).replace("-", "").lower() != "latin1":
            raise DlxError(f"refusing to unpickle _codecs.encode(..., {encoding!r}) in {self.path}: "
                           "CIFAR batches use only latin1 bytes")
        return text.encode("latin1")


def load_pickle(path: Path) -> dict:
    """Safely unpickle one batch file into a dict with str keys."""
    if not path.is_file():
        raise DlxError(f"missing {path}: data.root must hold the CIFAR python-version batches")
    try:
        with path.open("rb") as f:
            obj = SafeUnpickler(f, path).load()
    except DlxError:
        raise
    except Exception as e:  # any parse failure of a corrupt pickle is a data error, not a crash
        raise DlxError(f"corrupt CIFAR batch {path}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise DlxError(f"corrupt CIFAR batch {path}: expected a dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batch(path: Path, label_key: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) float32 in [0, 1] and int64 labels in 0..k-1; rows are 1024 R, then G, then B bytes."""
    d = load_pickle(path)
    data, labels = d.get("data"), d.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DlxError(f"corrupt CIFAR batch {path}: 'data' must be a uint8 array of shape (N, 3072)")
    try:
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        y = None
    if y is None or len(y) != len(data):
        raise DlxError(f"corrupt CIFAR batch {path}: '{label_key}' must list one label per row of 'data'")
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise DlxError(f"corrupt CIFAR batch {path}: '{label_key}' outside 0..{k - 1}")
    x = data.reshape(-1, 3, 32, 32).astype(np.float32)
    x /= 255.0  # in place: a float64 intermediate would double peak memory
    return x, y


def folder(cfg, name: str, marker: str, sub: str) -> Path:
    """``cfg.root`` itself if it holds ``marker``, else ``cfg.root/sub``."""
    if opt(cfg, "root") is None:
        raise DlxError(f"data.root is required for {name}: a folder with the python-version batches ({sub})")
    root = Path(str(opt(cfg, "root"))).expanduser()
    if not root.is_dir():
        raise DlxError(f"data.root {root} is not a folder; {name} needs a folder with the python-version "
                       f"batches ({sub})")
    return root if (root / marker).is_file() else root / sub


def names(path: Path, key: str, fallback: list[str]) -> list[str]:
    """Class names from a meta file when present, else ``fallback``."""
    if not path.is_file():
        return fallback
    got = load_pickle(path).get(key)
    if not isinstance(got, list) or len(got) != len(fallback):
        return fallback
    return [n.decode() if isinstance(n, bytes) else str(n) for n in got]


@register_data("cifar10", root="required")
def build_cifar10(cfg) -> Raw:
    """CIFAR-10: data_batch_1..5 for training, test_batch for testing."""
    root = folder(cfg, "cifar10", "data_batch_1", "cifar-10-batches-py")
    parts = [read_batch(root / f"data_batch_{i}", "labels", 10) for i in range(1, 6)]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    xt, yt = read_batch(root / "test_batch", "labels", 10)
    class_names = names(root / "batches.meta", "label_names", CIFAR10_NAMES)
    meta = Meta("cifar10", "classify", (3, 32, 32), 10, class_names)
    return Raw(x, y, xt, yt, meta)


@register_data("cifar100", root="required")
def build_cifar100(cfg) -> Raw:
    """CIFAR-100: ``train`` and ``test``; ``label_kind`` fine (100 classes, default) or coarse (20)."""
    kind = str(opt(cfg, "label_kind", "fine"))
    if kind not in ("fine", "coarse"):
        raise DlxError(f"data.label_kind must be fine or coarse, got '{kind}'")
    k = 100 if kind == "fine" else 20
    root = folder(cfg, "cifar100", "train", "cifar-100-python")
    x, y = read_batch(root / "train", f"{kind}_labels", k)
    xt, yt = read_batch(root / "test", f"{kind}_labels", k)
    fallback = [f"{kind}{i}" for i in range(k)]
    meta = Meta("cifar100", "classify", (3, 32, 32), k, names(root / "meta", f"{kind}_label_names", fallback))
    return Raw(x, y, xt, yt, meta)

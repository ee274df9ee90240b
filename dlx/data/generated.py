"""Generated datasets cached on disk: a generator that takes seconds (MNIST-1D's) runs once per machine
instead of once per process (a sweep's parent and each of its workers build the same data).

A dataset is ``<cache>/<name>-<hash of its arguments and generator version>.npz`` in ``$DLX_CACHE_DIR``,
else ``$XDG_CACHE_HOME/dlx``, else ``~/.cache/dlx``; written atomically (a temporary file, then a rename)
and read back with ``allow_pickle=False``. A file that does not read is generated again; where nothing can
be written, the data is generated each time as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    if os.environ.get("DLX_CACHE_DIR"):
        return Path(os.environ["DLX_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "dlx"


def cached(name: str, key: dict, make: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """``make()``'s arrays, from the cache when this ``key`` (everything the arrays depend on, the
    generator's version included) was generated before."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            return tuple(f[f"a{i}"] for i in range(len(f.files)))
    except (OSError, ValueError, KeyError, EOFError):  # absent, partial or foreign: generate it
        pass
    arrays = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **{f"a{i}": a for i, a in enumerate(arrays)})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:  # a read-only home, a full disk: the data is still here, only not kept
        pass
    return arrays

"""Atomic writes: every file dlx writes goes through here, so readers and a crash at any moment see the old
file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # mkstemp makes 0600 files; results should read like any other file


def _atomic(path: Path, write, durable: bool = True) -> Path:
    """Write to a temporary file beside `path`, then rename it into place: readers and a crash at any
    moment see the old file or the new one, never half of one. `durable` also fsyncs, so the new file
    survives a power loss too (skipped for logs rewritten every epoch, where it costs ~10 ms a time)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path, data: bytes, durable: bool = True) -> Path:
    return _atomic(path, lambda fh: fh.write(data), durable)


def write_text(path, text: str, durable: bool = True) -> Path:
    return write_bytes(path, text.encode(), durable)


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def write_csv(path, df, durable: bool = True) -> Path:
    return write_text(path, df.to_csv(index=False), durable)


def save_torch(path, obj) -> Path:
    import torch

    return _atomic(path, lambda fh: torch.save(obj, fh))


def _jsonable(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)

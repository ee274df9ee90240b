"""Dataset registry: ``build_data(cfg)`` loads the dataset named by ``cfg.name``. A builder returns either
``Raw`` arrays of a classification dataset, which go through the shared class-based prep (subset, label
noise, normalization, augmentation), or a finished ``DataBundle`` (other data families)."""

from __future__ import annotations

from collections.abc import Callable

from dlx.data.bundle import DataBundle
from dlx.data.prep import Raw, prepare
from dlx.errors import DlxError

DATASETS: dict[str, Callable[..., Raw | DataBundle]] = {}


def register_data(name: str):
    """Decorator: register ``fn(cfg) -> Raw | DataBundle`` as dataset ``name``."""

    def deco(fn):
        DATASETS[name] = fn
        return fn

    return deco


# datasets that exist only as the user's files (no embedded default): refused without data.root before any
# work starts, by a sweep as by a train run
NEEDS_ROOT = frozenset({"mnist", "fashion_mnist", "cifar10", "cifar100", "mnist_rot", "electricity",
                        "panel_csv"})


def check_data(cfg) -> None:
    """What a loader would refuse at once, checked without loading: a file-only dataset needs data.root,
    and a data.root must exist."""
    from pathlib import Path

    name = cfg.get("name") if cfg is not None else None
    root = cfg.get("root") if cfg is not None else None
    if name in NEEDS_ROOT and root is None:
        raise DlxError(f"data.root is required for {name}: it reads the user's files (give data.root=<the "
                       "folder or file holding them>)")
    if root is not None and not Path(str(root)).expanduser().exists():
        raise DlxError(f"data.root {root} does not exist")


def list_data() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def build_data(cfg, device="cpu") -> DataBundle:
    """Load dataset ``cfg.name`` with its splits on ``device``."""
    name = cfg.get("name") if cfg is not None else None
    if name not in DATASETS:
        raise DlxError(f"unknown data '{name}'; choose one of: {', '.join(list_data())}")
    built = DATASETS[name](cfg)
    if isinstance(built, Raw):
        return prepare(cfg, built, device)
    built.train, built.test = built.train.to(device), built.test.to(device)
    built.val = None if built.val is None else built.val.to(device)
    return built


# imported after the registry exists: each module registers its builders on import
from dlx.data import (  # noqa: E402, F401
    cifar,
    diabetes,
    digits,
    higgs,
    mnist,
    mnist1d,
    multitask,
    panel,
    rotated,
    synthetic,
    synthetic_binary,
    textpairs,
)

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

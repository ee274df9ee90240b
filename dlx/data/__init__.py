"""Dataset registry: ``build_data(cfg)`` loads the dataset named by ``cfg.name`` and runs the shared prep."""

from __future__ import annotations

from collections.abc import Callable

from dlx.data.bundle import DataBundle
from dlx.data.prep import Raw, prepare
from dlx.errors import DlxError

DATASETS: dict[str, Callable[..., Raw]] = {}


def register_data(name: str):
    """Decorator: register ``fn(cfg) -> Raw`` as dataset ``name``."""

    def deco(fn: Callable[..., Raw]) -> Callable[..., Raw]:
        DATASETS[name] = fn
        return fn

    return deco


def list_data() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def build_data(cfg, device="cpu") -> DataBundle:
    """Load dataset ``cfg.name`` and apply subset, label noise, normalization and augmentation settings."""
    name = cfg.get("name") if cfg is not None else None
    if name not in DATASETS:
        raise DlxError(f"unknown data '{name}'; choose one of: {', '.join(list_data())}")
    return prepare(cfg, DATASETS[name](cfg), device)


# imported after the registry exists: each module registers its builders on import
from dlx.data import cifar, digits, mnist, mnist1d, synthetic  # noqa: E402, F401

"""Datasets: ``build_data(cfg)`` loads the dataset named by ``cfg.name``. A builder returns either ``Raw``
arrays of a classification dataset, which go through the shared class-based prep (subset, label noise,
normalization, augmentation), or a finished ``DataBundle`` (other data families). The registry is
dlx/data/registry.py; importing this package registers every built-in dataset."""

from __future__ import annotations

# Explicit imports (no discovery): each module registers its builders on import, so the registry is complete
# and an import error is loud.
from dlx.data import (  # noqa: F401
    cifar,
    diabetes,
    digits,
    higgs,
    htautau,
    image_folder,
    mnist,
    mnist1d,
    multitask,
    panel,
    rotated,
    smallnorb,
    synthetic,
    synthetic_binary,
    table_file,
    textpairs,
)
from dlx.data.bundle import DataBundle
from dlx.data.prep import Raw
from dlx.data.registry import (
    DATASETS,
    NEEDS_ROOT,
    PRECHECKS,
    READS_ROOT,
    build_data,
    check_data,
    list_data,
    register_data,
)

__all__ = ["DATASETS", "NEEDS_ROOT", "PRECHECKS", "READS_ROOT", "DataBundle", "Raw", "build_data",
           "check_data", "list_data", "register_data"]

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
                        "panel_csv", "csv", "image_folder"})
# every dataset that reads data.root (the file-only ones, and those with an embedded default that read the
# user's files when given them); any other refuses a data.root rather than silently ignoring it
READS_ROOT = NEEDS_ROOT | {"higgs", "textpairs", "chars"}
# further checks of one dataset's keys, run without loading it (name -> fn(cfg) raising DlxError)
PRECHECKS: dict[str, Callable] = {}


def check_data(cfg) -> None:
    """What a loader would refuse at once, checked without loading: a file-only dataset needs data.root, a
    dataset that reads no files refuses one, a data.root must exist, and the dataset's own pre-checks."""
    from pathlib import Path

    name = cfg.get("name") if cfg is not None else None
    root = cfg.get("root") if cfg is not None else None
    if name in NEEDS_ROOT and root is None:
        raise DlxError(f"data.root is required for {name}: it reads the user's files (set data.root=<the "
                       "folder or file holding them>)")
    if root is not None and name in DATASETS and name not in READS_ROOT:
        raise DlxError(f"data={name} reads no files, so data.root={root} would be ignored: drop data.root "
                       "(for your own files: data=csv for a table, data=image_folder for images)")
    if root is not None and not Path(str(root)).expanduser().exists():
        raise DlxError(f"data.root {root} does not exist")
    if name in PRECHECKS:
        PRECHECKS[name](cfg)


def list_data() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def build_data(cfg, device="cpu") -> DataBundle:
    """Load dataset ``cfg.name`` with its splits on ``device``."""
    name = cfg.get("name") if cfg is not None else None
    if name not in DATASETS:
        raise DlxError(f"unknown data '{name}'; choose one of: {', '.join(list_data())}")
    check_data(cfg)
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
    image_folder,
    mnist,
    mnist1d,
    multitask,
    panel,
    rotated,
    synthetic,
    synthetic_binary,
    table_file,
    textpairs,
)

PRECHECKS["csv"] = table_file.check

"""The dataset registry: ``@register_data(name, root=..., check=...)`` and the lookups over it. It imports
no dataset module (they import it), so it loads without them; ``dlx.data`` imports them all."""

from __future__ import annotations

from collections.abc import Callable

from dlx.data.bundle import DataBundle
from dlx.data.prep import Raw, prepare
from dlx.errors import DlxError

DATASETS: dict[str, Callable[..., Raw | DataBundle]] = {}
# what each registration declares (filled by register_data only):
NEEDS_ROOT: set[str] = set()  # exists only as the user's files: refused without data.root before any work
READS_ROOT: set[str] = set()  # reads data.root when given (NEEDS_ROOT too); any other refuses a data.root
PRECHECKS: dict[str, Callable] = {}  # fn(cfg) raising DlxError: the dataset's keys checked without loading
ROOTS = (None, "optional", "required")


def register_data(name: str, root: str | None = None, check: Callable | None = None):
    """Decorator: register ``fn(cfg) -> Raw | DataBundle`` as dataset ``name``. ``root``: None (reads no
    files), "optional" (an embedded default, or the user's files under data.root) or "required" (the
    user's files only); ``check(cfg)``: what a loader would refuse, checked without loading."""
    if root not in ROOTS:
        raise ValueError(f"data '{name}': root must be one of {ROOTS}, got {root!r}")

    def deco(fn):
        if name in DATASETS:
            raise ValueError(f"data '{name}' registered twice")
        DATASETS[name] = fn
        if root is not None:
            READS_ROOT.add(name)
        if root == "required":
            NEEDS_ROOT.add(name)
        if check is not None:
            PRECHECKS[name] = check
        return fn

    return deco


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

"""``image_folder``: the user's own images for task=classify, a sub-folder per class, read with Pillow.

Layouts under ``data.root``:

- ``DIR/<class>/<image>``: every sub-folder is a class; a seeded, stratified ``data.test_fraction`` of each
  class is held out as the test split (``data.split_seed``);
- ``DIR/train/<class>/`` and ``DIR/test/<class>/`` (exactly these two sub-folders): the test folder is the
  test split; its class folders must be classes of the training folder.

Classes are the sorted class-folder names (``meta.class_names``). Files with an image extension (.png, .jpg,
.jpeg, .bmp, .gif, .tif, .tiff, .webp, .ppm, .pgm) are read; other files and hidden files are ignored; an
image Pillow cannot read is one error naming the file. Every image is converted to ``data.channels`` (3:
RGB, 1: grayscale), resized to ``data.size`` x ``data.size`` (bilinear, aspect ratio not kept) and scaled to
[0, 1]; the arrays then go through the shared class-based prep (dlx/data/prep.py: validation carve-out,
subsets, label noise, per-channel standardization from the training split, augmentation). All images are
held in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.data.bundle import Meta
from dlx.data.prep import Raw, opt, stratified_pick
from dlx.data.registry import register_data
from dlx.errors import DlxError

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def _subdirs(d: Path) -> list[Path]:
    return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _images(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in EXTENSIONS)


def class_folders(d: Path, what: str) -> dict[str, list[Path]]:
    """{class name: its image files} of the class folders under ``d``; empty classes are refused."""
    subs = _subdirs(d)
    if not subs:
        raise DlxError(f"{d} holds no class folders: data=image_folder reads {what}/<class>/<images> (a "
                       "sub-folder per class)")
    out = {}
    for s in subs:
        files = _images(s)
        if not files:
            inner = " (it holds folders, not images: a sub-folder per class directly under data.root, or "\
                    "exactly train/ and test/)" if _subdirs(s) else ""
            raise DlxError(f"class folder {s} holds no image files ({', '.join(sorted(EXTENSIONS))}){inner}")
        out[s.name] = files
    return out


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as float32 (channels, size, size) in [0, 1], or an error naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if channels == 3 else "L").resize((size, size), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DlxError(f"{path}: not a readable image ({why})") from None
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _classes(folders: dict, where: Path) -> list[str]:
    if len(folders) < 2:
        raise DlxError(f"{where} has a single class folder ({next(iter(folders))}): classification needs two "
                       "or more")
    return sorted(folders)


def _load(folders: dict[str, list[Path]], code: dict[str, int], size: int, channels: int):
    files = [(f, code[c]) for c, fs in folders.items() for f in fs]
    x = np.empty((len(files), channels, size, size), np.float32)
    for i, (f, _) in enumerate(files):
        x[i] = load_image(f, size, channels)
    return x, np.asarray([c for _, c in files], np.int64)


@register_data("image_folder", root="required")
def build(cfg) -> Raw:
    root = Path(str(opt(cfg, "root"))).expanduser()
    if not root.is_dir():
        raise DlxError(f"data.root {root} is not a folder; data=image_folder reads a folder with a "
                       "sub-folder per class")
    size, channels = opt(cfg, "size", 32), opt(cfg, "channels", 3)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4096:
        raise DlxError(f"data.size must be a whole number of pixels in [1, 4096], got {size!r}")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DlxError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    subs = {p.name for p in _subdirs(root)}
    if subs == {"train", "test"}:
        train = class_folders(root / "train", "data.root/train")
        test = class_folders(root / "test", "data.root/test")
        stray = sorted(set(test) - set(train))
        if stray:
            raise DlxError(f"{root / 'test'} has class folder(s) {', '.join(stray)} that "
                           f"{root / 'train'} lacks (its classes: {', '.join(sorted(train))})")
        names = _classes(train, root / "train")
        code = {c: i for i, c in enumerate(names)}
        x, y = _load(train, code, size, channels)
        xt, yt = _load(test, code, size, channels)
        layout = "train/ and test/ folders"
    else:
        folders = class_folders(root, "data.root")
        names = _classes(folders, root)
        code = {c: i for i, c in enumerate(names)}
        frac = float(opt(cfg, "test_fraction", 0.2))
        if not 0.0 < frac < 1.0:
            raise DlxError(f"data.test_fraction must be in (0, 1), got {frac}")
        n = sum(len(f) for f in folders.values())
        k = int(round(frac * n))
        if k < 1 or n - k < 1:
            raise DlxError(f"data.test_fraction={frac} of the {n} images under {root} leaves {k} test and "
                           f"{n - k} training images; add images, change the fraction, or use train/ and "
                           "test/ folders")
        xa, ya = _load(folders, code, size, channels)
        te, tr = stratified_pick(ya, k, int(opt(cfg, "split_seed", 0)))
        x, y, xt, yt = xa[tr], ya[tr], xa[te], ya[te]
        layout = f"test_fraction {frac}"
    meta = Meta("image_folder", "classify", (channels, size, size), len(names), names,
                extra={"source": str(root), "layout": layout})
    return Raw(x, y, xt, yt, meta)

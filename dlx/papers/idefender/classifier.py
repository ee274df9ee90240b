"""The classifier under attack: trained here as an ordinary dlx train run (classifier/) or loaded from an
existing train run directory. (The black-box attacker's substitute is in substitute.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlx.errors import DlxError
from dlx.runs import Run

TRAIN_KEYS = ("model", "data", "precision", "task", "optimizer", "trainer", "seed", "device")


def train_overrides(tcfg) -> list[str]:
    """Overrides that make `compose("train", ...)` rebuild ``tcfg`` exactly, so a child run we train
    here is itself a valid ``classifier.run`` (and `dlx eval` target)."""
    from omegaconf import OmegaConf

    from dlx.config import flatten

    out = [f"{g}={tcfg[g].name}" for g in ("model", "data", "precision", "task", "optimizer")]
    for key, value in flatten(OmegaConf.masked_copy(tcfg, list(TRAIN_KEYS))).items():
        out.append(f"{key}={'null' if value is None else value}")
    return out


def train_child(tcfg, run_dir: Path):
    """Train ``tcfg`` into ``run_dir`` (a normal dlx train run) and return it loaded, in eval mode."""
    from dlx.kinds.train.experiment import run as train

    child = Run(run_dir, "train")
    child.save_config(tcfg, train_overrides(tcfg))
    summary = train(tcfg, child, draw=False)
    if summary["status"] != "completed":
        raise DlxError(f"training the classifier in {run_dir} ended '{summary['status']}'")
    return load_run(run_dir)


def load_run(run_dir) -> tuple[object, object]:
    """(train cfg, Parts with the checkpoint's weights) of a dlx train run directory."""
    from dlx.build import build
    from dlx.config import compose
    from dlx.runs import read_overrides
    from dlx.train.checkpoint import load_weights, read_checkpoint

    run_dir = Path(str(run_dir)).expanduser()
    if not run_dir.is_dir():
        raise DlxError(f"classifier.run {run_dir} is not a directory (give a dlx train run directory)")
    ckpt = read_checkpoint(run_dir / "checkpoint.pt")
    tcfg = compose("train", read_overrides(run_dir))
    parts = build(tcfg)
    if tcfg.task.name != "classify":
        raise DlxError(f"classifier.run {run_dir} is a '{tcfg.task.name}' run; I-defender attacks "
                       "classifiers")
    load_weights(parts.model, ckpt["model"], run_dir / "checkpoint.pt")
    parts.model.eval()
    return tcfg, parts


def classifier(cfg, run: Run, check=None):
    """(train cfg, Parts) of the classifier to attack: ``classifier.run`` loaded, or one trained into
    classifier/. ``check(model)`` sees the model first (untrained, when it is trained here), so settings
    that do not fit it are refused before anything is written."""
    from omegaconf import OmegaConf

    from dlx.build import build

    if cfg.classifier.run:
        tcfg, parts = load_run(cfg.classifier.run)
        if check:
            check(parts.model)
        return tcfg, parts
    tcfg = OmegaConf.masked_copy(cfg, list(TRAIN_KEYS))
    if check:
        check(build(tcfg).model)
    return train_child(tcfg, run.path("classifier"))


@torch.no_grad()
def predict(model, x: torch.Tensor, bs: int = 1024) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + bs]).argmax(1).cpu() for i in range(0, len(x), bs)]).numpy() \
        if len(x) else np.zeros(0, np.int64)

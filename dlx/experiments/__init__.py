"""Experiment kinds. Each module in `EXPERIMENTS` has `run(cfg, run)` and `plot(run_dir) -> [png]`;
the `kind` in summary.json picks the module, so `dlx plot` redraws any run from its tables alone.
Module paths are strings so a command imports only what it needs (no torch for `dlx --help`)."""

from __future__ import annotations

import importlib
from pathlib import Path

from dlx.errors import DlxError

EXPERIMENTS: dict[str, str] = {
    "train": "dlx.experiments.train",
    "bench": "dlx.experiments.bench",
    "adversarial": "dlx.experiments.adversarial",
    "fp8": "dlx.experiments.fp8",
    "double_descent": "dlx.experiments.double_descent",
    "grid": "dlx.experiments.grid",
    "batchnorm": "dlx.experiments.batchnorm",
}

# `dlx reproduce <paper>`: paper -> the top-level config it composes (whose `kind` picks the module)
REPRODUCE: dict[str, str] = {
    "fp8": "fp8",
    "idefender": "detect_adversarial",
    "double-descent": "sweep_double_descent",
    "batchnorm": "batchnorm",
}


def module(kind: str):
    if kind not in EXPERIMENTS:
        raise DlxError(f"unknown experiment kind '{kind}' (known: {', '.join(sorted(EXPERIMENTS))})")
    return importlib.import_module(EXPERIMENTS[kind])


def plot_run(run_dir: Path) -> list[Path]:
    from dlx.runs import read_json

    kind = read_json(Path(run_dir) / "summary.json").get("kind")
    return module(kind).plot(Path(run_dir))

"""Experiments: one package per paper (and per generic kind of run), each registering one
``Experiment`` record (see registry.py). Imported explicitly, so the registry is always complete."""

from __future__ import annotations

from pathlib import Path

# each package's __init__ registers its record and imports nothing heavy
from dlx.experiments import (  # noqa: E402, F401, I001
    batchnorm,
    bench,
    deepmatch,
    deepstate,
    double_descent,
    fit,
    forecast,
    fp8,
    grid,
    higgs,
    idefender,
    muir,
    symnets,
    train,
)
from dlx.experiments.registry import EXPERIMENTS, Experiment, Sweep, get, papers, register


def plot_run(run_dir: Path) -> list[Path]:
    """Redraw any run directory's figures from its tables, by the kind its summary.json names."""
    from dlx.runs import read_json

    kind = read_json(Path(run_dir) / "summary.json").get("kind")
    return get(kind).plot(Path(run_dir))


__all__ = ["EXPERIMENTS", "Experiment", "Sweep", "get", "papers", "plot_run", "register"]

"""The experiment registry: one ``Experiment`` record per kind of run, registered by its package.

One name per experiment: it is the ``dlx reproduce <name>`` key, the top-level config ``conf/<name>.yaml``,
the ``kind`` in summary.json, the package ``dlx/experiments/<name>/`` and the prefix of its presets
``conf/experiment/<name>_*.yaml``. A record names its implementation module instead of importing it, so
listing experiments (``dlx --help``, ``dlx list experiments``) never loads torch.

The implementation module defines ``run(cfg, run)`` and ``plot(run_dir) -> [Path]``; a sweep
(``sweep=Sweep(...)``) also ``children(cfg) -> [Child]`` and ``finalize(cfg, run, children) -> DataFrame``.
A paper's experiment writes its claims into summary.json (dlx/experiments/claims.py); its headline is
derived from them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from dlx.errors import DlxError


@dataclass(frozen=True)
class Sweep:
    """An experiment whose work is child runs (resumable by --name, parallel, SLURM-ready)."""

    swept_by: dict[str, str] = field(default_factory=dict)  # swept key -> how to change it instead


@dataclass(frozen=True)
class Experiment:
    name: str
    impl: str  # module path of run/plot/... (imported on first use)
    title: str  # the paper (or what the kind is), one line
    cite: str = ""  # short reference, e.g. "Bjorck et al., NeurIPS 2018"
    claim: str = ""  # what the experiment checks, one line
    table_columns: tuple[str, ...] = ()  # the terminal table's columns (results.csv keeps them all)
    headline: bool = False
    sweep: Sweep | None = None
    paper: bool = True  # a paper reproduction: listed by `dlx reproduce`
    estimate: bool = False  # a non-sweep run whose module prices itself: estimate(cfg) -> dlx.estimate.Cost
    command: str = "reproduce"  # the CLI command that runs it, e.g. "sweep double-descent"
    # the negative control (dlx/experiments/controls.py): overrides that keep everything of the default
    # but the premise the paper's method exploits, and that premise in one line; () for data not generated
    control: tuple[str, ...] = ()
    control_note: str = ""

    def module(self):
        return importlib.import_module(self.impl)

    def run(self, cfg, run):
        return self.module().run(cfg, run)

    def plot(self, run_dir: Path) -> list[Path]:
        return self.module().plot(Path(run_dir))

    def headline_of(self, summary: dict) -> str | None:
        """One line from the claims in summary.json (a module's own headline() only where it has none)."""
        if summary.get("claims") or self.paper:
            from dlx.experiments.claims import headline

            return headline(self.name, summary)
        return self.module().headline(summary) if self.headline else None

    def children(self, cfg):
        return self.module().children(cfg)

    def finalize(self, cfg, run, children):
        return self.module().finalize(cfg, run, children)

    def cost(self, cfg, overrides: list[str], say=None):
        """`--estimate`: the expected cost of running ``cfg`` (dlx/estimate.py); nothing is written."""
        from dlx.errors import DlxError
        from dlx.estimate import sweep_cost, time_train, train_cost

        if self.sweep is not None:
            return sweep_cost(self, cfg, [*overrides, "trainer.progress=none"], say)[0]
        if self.name == "train":
            return train_cost(cfg, time_train(cfg))
        if self.estimate:
            return self.module().estimate(cfg)
        raise DlxError(f"--estimate is not available for {self.name} runs")


EXPERIMENTS: dict[str, Experiment] = {}
# kinds and reproduce keys written by earlier versions of dlx: their run directories still plot
RENAMED = {"adversarial": "idefender"}


def register(exp: Experiment) -> Experiment:
    if exp.name in EXPERIMENTS:
        raise ValueError(f"experiment '{exp.name}' registered twice")
    EXPERIMENTS[exp.name] = exp
    return exp


def canonical(name: str) -> str:
    """'double-descent' (CLI spelling) -> 'double_descent'; old kinds -> their new names."""
    name = str(name).replace("-", "_")
    return RENAMED.get(name, name)


def get(name: str) -> Experiment:
    exp = EXPERIMENTS.get(canonical(name))
    if exp is None:
        raise DlxError(f"unknown experiment '{name}' (known: {', '.join(sorted(EXPERIMENTS))})")
    return exp


def papers() -> list[Experiment]:
    return [e for _, e in sorted(EXPERIMENTS.items()) if e.paper]

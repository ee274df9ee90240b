"""The experiment registry: one ``Experiment`` record per kind of run, registered by its package.

One name per experiment: it is the ``dlx reproduce <name>`` key, the top-level config ``conf/<name>.yaml``,
the ``kind`` in summary.json, the package (``dlx/papers/<name>/`` or, for a generic kind of run,
``dlx/kinds/<name>/``) and the prefix of its presets ``conf/experiment/<name>_*.yaml``.

A record names its implementation module instead of importing it, so listing experiments (``dlx --help``,
``dlx list experiments``) never loads torch, and nothing below the papers imports one: the platform
(dlx/launch.py, the sweep) reaches a paper only through its record. The records themselves are filled in
by dlx/catalog.py, which this module loads on the first lookup.

The hooks an implementation module defines (the platform runs them; a paper never calls itself):

- ``run(cfg, run)``: one run of this kind (for a sweep experiment: one of its own children, if its
  children are of its own kind);
- a sweep (``sweep=Sweep(...)``): ``children(cfg) -> [Child]`` and ``finalize(cfg, run, children)``
  (collect, analyse, write tables and claims through dlx.sweep.driver.finish; returns the table), and
  optionally ``check(cfg, overrides)`` (refuse bad settings before anything is written) and
  ``prepare(cfg, run)`` (in-process work before the children start);
- ``plot(run_dir) -> [Path]``: the figures, from the tables alone;
- optionally ``cost(exp, cfg, overrides, say) -> dlx.estimate.Cost`` for ``--estimate``; a sweep without
  one is priced by the generic sweep estimate;
- optionally, for a kind (a paper's line comes from its claims), ``headline(summary) -> str`` printed after
  its table (dlx tune: the best trial);
- optionally, for a paper, ``tunables(cfg) -> [dlx.sweep.tuning.Tunable]``: the models it compares that
  `dlx reproduce <paper> tune=true` tunes (one study each, equal budget) before its children;
- optionally, for a paper whose children are its own kind of run and are tuned (MUiR), what a tune trial of
  that kind needs: ``tune_objective(cfg)``, ``tune_validation(cfg, overrides, fraction)`` and
  ``tune_trial_overrides()`` (dlx/kinds/tune/experiment.py ``trial_kind``).
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
    report_table: str = "results.csv"  # the run's table `dlx report` shows (e.g. a per-cell table.csv)
    sweep: Sweep | None = None
    paper: bool = True  # a paper reproduction: listed by `dlx reproduce`
    # the CLI commands that run it; the first names its output tree (`<out>/<tree>/<name>`), so every
    # spelling of one experiment writes to one tree, e.g. ("reproduce", "sweep double-descent")
    commands: tuple[str, ...] = ("reproduce",)
    # the negative control (dlx/claims/controls.py): overrides that keep everything of the default but the
    # premise the paper's method exploits, and that premise in one line; () for data not generated
    control: tuple[str, ...] = ()
    control_note: str = ""
    cost_impl: str = ""  # the module holding the ``cost`` hook, when not ``impl`` (it may import ``impl``)
    resumable: bool = False  # not a sweep, yet `--name` of an existing run continues it (a tune study)
    # the claims' numeric lines in ``<name>.rules`` and their bounds, {key: (lo, hi) or (lo, hi, "int")}:
    # dlx/launch.py refuses a line out of bounds before anything runs (dlx.config.numbers)
    rules: dict = field(default_factory=dict, compare=False)

    @property
    def tree(self) -> str:
        """The folder under --out that every command running this experiment writes into."""
        return self.commands[0].split()[0]

    def module(self):
        return importlib.import_module(self.impl)

    def rules_of(self, cfg) -> dict[str, float | int]:
        """``cfg.<name>.rules`` checked against the record's table: {key: number}."""
        from dlx.config import numbers

        return numbers((cfg.get(self.name) or {}).get("rules"), self.rules, f"{self.name}.rules")

    def hook(self, name: str):
        """The implementation module's ``name`` hook, or None when it has none."""
        return getattr(self.module(), name, None)

    def run(self, cfg, run):
        return self.module().run(cfg, run)

    def plot(self, run_dir: Path) -> list[Path]:
        return self.module().plot(Path(run_dir))

    def headline_of(self, summary: dict) -> str | None:
        """One line from the claims in summary.json (papers; other kinds have none)."""
        if summary.get("claims") or self.paper:
            from dlx.claims import headline

            return headline(self.name, summary)
        own = self.hook("headline")  # a kind's own line (dlx tune: the best trial)
        return own(summary) if own is not None else None

    def children(self, cfg):
        return self.module().children(cfg)

    def finalize(self, cfg, run, children):
        return self.module().finalize(cfg, run, children)

    def cost(self, cfg, overrides: list[str], say=None):
        """`--estimate`: the expected cost of running ``cfg`` (dlx/estimate.py); nothing is written. The
        module's ``cost`` hook, else for a sweep the generic estimate of its children."""
        hook = importlib.import_module(self.cost_impl).cost if self.cost_impl else self.hook("cost")
        if hook is None and self.sweep is not None:
            hook = importlib.import_module("dlx.estimate").sweep_hook
        if hook is None:
            raise DlxError(f"--estimate is not available for {self.name} runs")
        return hook(self, cfg, list(overrides), say)


_EXPERIMENTS: dict[str, Experiment] = {}
# kinds and reproduce keys written by earlier versions of dlx: their run directories still plot
RENAMED = {"adversarial": "idefender"}


def register(exp: Experiment) -> Experiment:
    if exp.name in _EXPERIMENTS:
        raise ValueError(f"experiment '{exp.name}' registered twice")
    if not exp.commands:
        raise ValueError(f"experiment '{exp.name}' names no command")
    _EXPERIMENTS[exp.name] = exp
    return exp


def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name (dlx/catalog.py is imported on first use: it registers them)."""
    importlib.import_module("dlx.catalog")
    return _EXPERIMENTS


def canonical(name: str) -> str:
    """'double-descent' (CLI spelling) -> 'double_descent'; old kinds -> their new names."""
    name = str(name).replace("-", "_")
    return RENAMED.get(name, name)


def find(name: str) -> Experiment | None:
    return experiments().get(canonical(name))


def get(name: str) -> Experiment:
    exp = find(name)
    if exp is None:
        raise DlxError(f"unknown experiment '{name}' (known: {', '.join(sorted(experiments()))})")
    return exp


def papers() -> list[Experiment]:
    return [e for _, e in sorted(experiments().items()) if e.paper]


def plot_run(run_dir: Path) -> list[Path]:
    """Redraw any run directory's figures from its tables, by the kind its summary.json names."""
    from dlx.runs import read_json

    kind = read_json(Path(run_dir) / "summary.json").get("kind")
    return get(kind).plot(Path(run_dir))

"""The dlx command line. Commands are thin: compose a config, call a registered experiment, print a table.

Nothing heavy is imported at module level: `dlx --help`, `dlx reproduce --help` and `dlx list` never load
torch. Papers come from the experiment registry (dlx/registry.py), so adding one never touches this file:
`dlx reproduce <paper>` and a paper's other spellings (`dlx bench`, `dlx sweep double-descent`, ...) are
generated from its record, and every spelling writes to the paper's one output tree.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import typer

from dlx.errors import DlxError
from dlx.registry import experiments, find, papers

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, context_settings=CONTEXT,
                  help="dlx: reproduce, extend and compare deep-learning experiments from one CLI.")
sweep_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, context_settings=CONTEXT,
                        help="Sweeps of child runs; re-running the same --name resumes.")
app.add_typer(sweep_app, name="sweep", short_help="Sweeps of child runs (resumable by --name)")

OVERRIDES = typer.Argument(None, help="Hydra overrides, e.g. model=cnn5 data=mnist1d trainer.epochs=10")
FORECAST_OVERRIDES = typer.Argument(None, help="Hydra overrides, e.g. model=deepar data=co2 "
                                               "trainer.steps=200")
OUT = typer.Option("outputs", "--out", help="Output root; runs go to OUT/<command>/<name>/")
NAME = typer.Option(None, "--name", help="Run directory name (default: timestamp + key choices); "
                                         "a sweep given an existing name resumes it")
CFG = typer.Option(False, "--cfg", help="Print the composed config and exit")
DETACH = typer.Option(False, "--detach", help="launcher=slurm only: submit and return; see dlx status")
ESTIMATE = typer.Option(False, "--estimate", help="Time a few real steps of each distinct child shape, print "
                                                   "the expected wall time, memory and disk; run nothing")
FAIL_FAST = typer.Option(False, "--fail-fast", help="Stop the sweep at the first failed child")
PROFILE = typer.Option(False, "--profile", help="Also profile this process (cProfile) into "
                       "<run>/profile.pstats: python -m pstats FILE, or snakeviz FILE")
CONFIG_DIR = typer.Option(None, "--config-dir", help="A folder of your own configs (model/, data/, "
                                                     "experiment/, ...) searched before dlx's own (also: "
                                                     "DLX_CONFIG_PATH)")


ARGV: list[str] = []  # the words this invocation was given (main() sets them): resume lines repeat them


def _resume_line(run_dir: Path, resumable: bool, extra: tuple[str, ...] = ()) -> str:
    """The exact command that continues ``run_dir`` (the words given, --name set to it), shell-quoted; a
    command that cannot resume is given as one that starts over."""
    import shlex

    words, skip = [], False
    for w in ARGV:
        if skip:
            skip = False
            continue
        if w == "--name":
            skip = True
            continue
        if w.startswith("--name="):
            continue
        words.append(w)
    words += [e for e in extra if e not in words]
    if resumable:
        return "resume with: " + shlex.join(["dlx", *words, "--name", run_dir.name])
    return "run it again (it starts over): " + shlex.join(["dlx", *words])


def _interrupted(run_dir: Path, resumable: bool, what: str = "", extra: tuple[str, ...] = ()):
    """Ctrl-C: one line saying what was kept and how to go on; exit 130."""
    _say(f"dlx: interrupted{what}: the results so far are in {run_dir}; "
         f"{_resume_line(Path(run_dir), resumable, extra)}")
    raise typer.Exit(130)


def _version(value: bool) -> None:
    if value:
        import dlx

        typer.echo(f"dlx {dlx.__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="Print dlx's version and exit")):
    """dlx: reproduce, extend and compare deep-learning experiments from one CLI."""


def _spelling(name: str) -> str:
    return name.replace("_", "-")


def _sweep_flags(overrides: list[str] | None, detach: bool, fail_fast: bool) -> list[str]:
    """--detach and --fail-fast are spelled as flags but travel as overrides, so resume sees them."""
    overrides = list(overrides or [])
    if fail_fast:
        overrides.append("sweep.fail_fast=true")
    if detach:
        if "launcher=slurm" not in overrides:
            raise DlxError("--detach needs launcher=slurm (local and inline sweeps run in the foreground)")
        overrides.append("launcher.detach=true")
    return overrides


def _console():
    from rich.console import Console

    return Console()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _config_dir(path: Path | None, run_dir: Path | None = None) -> None:
    """--config-dir DIR: search DIR before dlx's conf/ (in this process and those it starts); with
    ``run_dir``, also the config dirs that run was composed with (its config.yaml records them)."""
    from dlx.config import add_config_dir, adopt_recorded

    if path is not None:
        add_config_dir(path)
    for gone in adopt_recorded(run_dir) if run_dir is not None else []:
        _say(f"dlx: {run_dir} was composed with the config dir {gone}, which no longer exists")


def _compose(config: str, overrides: list[str] | None, show: bool):
    from dlx.config import compose, to_yaml

    cfg = compose(config, overrides or [])
    _epochs_or_steps(cfg, overrides or [])
    if show:
        typer.echo(to_yaml(cfg), nl=False)
        raise typer.Exit(0)
    return cfg


def _epochs_or_steps(cfg, overrides) -> None:
    """trainer.steps, when set, bounds training: a trainer.epochs given beside it would be ignored, so it
    is refused rather than dropped silently."""
    trainer = cfg.get("trainer") if hasattr(cfg, "get") else None
    if trainer is None or trainer.get("steps") is None:
        return
    given = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") == "trainer.epochs"]
    if given:
        raise DlxError(f"{given[0]} would be ignored: trainer.steps={trainer.steps} bounds this run's "
                       "training; give trainer.steps=N instead, or trainer.steps=null to train by epochs")


def _open_run(out: Path, command: str, name: str | None, default: str, kind: str, cfg, overrides,
              resumable: bool, same_overrides: bool = True, shared: bool = False):
    """The run directory, announced before any work: a resumable run given an existing --name continues
    there (a sweep only with the same overrides), anything else gets a fresh directory (a taken name gets a
    numeric suffix, and says so)."""
    from dlx import tracking
    from dlx.runs import Run, read_overrides, read_summary, resolve_dir

    tracking.check(cfg)
    run_dir = resolve_dir(out, command, name or default, reuse=resumable and name is not None)
    if name is not None and run_dir.name != name:
        _say(f"dlx: {Path(out) / command / name} exists; writing to {run_dir} instead")

    from dlx.registry import canonical

    was = read_summary(run_dir).get("kind") if (run_dir / "summary.json").is_file() else None
    if was is not None and canonical(str(was)) != canonical(kind):  # e.g. two papers given one --name
        raise DlxError(f"{run_dir} holds a {was} run, not {kind}: give another --name")

    def same(ovs):  # order does not matter; how a sweep is waited on (--fail-fast, --detach) is not its id,
        # nor a study's budget and processes (a tune run resumed with more trials goes on with them)
        return sorted(o for o in ovs if not o.startswith(
            ("sweep.fail_fast=", "launcher.detach=", "tune.trials=", "tune.workers=")))

    if same_overrides and (run_dir / "overrides.yaml").is_file() and \
            same(read_overrides(run_dir)) != same(overrides or []):
        raise DlxError(f"{run_dir} was started with other overrides ({' '.join(read_overrides(run_dir))}); "
                       "use the same ones to resume, or another --name")
    # a shared run (a sweep) lets a second invocation help with its children; others refuse a second writer
    return Run(run_dir, kind, config=(cfg, list(overrides or [])), exclusive=not shared,
               on_open=lambda d: _say(f"run directory: {d}"), fresh=name is None)


def _single_run_table(title: str, summary: dict):
    """status, size and the task's headline metric per split of a train or fit run."""
    from dlx.tables import metrics_table

    m, p = summary.get("metrics", {}), summary.get("primary", "error")
    keys = [f"train_{p}", f"val_{p}", f"test_{p}", f"best_test_{p}", "test_loss"]
    shown = {"status": summary["status"], "params": summary.get("params"), "epochs": summary.get("epochs"),
             **{k: m[k] for k in keys if k in m}, "wall_s": summary["wall_s"]}
    return metrics_table(title, {k: v for k, v in shown.items() if v is not None})


@app.command(short_help="Train one model (dlx train model=cnn5 data=mnist1d)")
def train(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
          cfg_only: bool = CFG, estimate: bool = ESTIMATE, config_dir: Path | None = CONFIG_DIR):
    """Train one model: writes config, metrics.csv, checkpoint, summary.json and learning curves."""
    _config_dir(config_dir)
    cfg = _compose("train", overrides, cfg_only)
    if cfg.trainer.get("resume") and name is not None:
        overrides, cfg = _resume_config(out, name, overrides)
    if estimate:
        return _estimate("train", cfg, overrides)
    from dlx.launch import launch
    from dlx.registry import get
    from dlx.runs import Run, default_name
    from dlx.train import distributed

    distributed.init(cfg.trainer.get("strategy", "none"))
    main = distributed.is_main()
    try:
        run = None
        if main:  # one run directory, resolved once and shared with every rank
            label = default_name(cfg.model.name, cfg.data.name, cfg.precision.name)
            run = _open_run(out, "train", name, label, "train", cfg,
                            overrides, resumable=bool(cfg.trainer.resume), same_overrides=False)
        if run is not None and distributed.world() > 1:
            run.open()  # the directory's final name (an automatic one may move on) before ranks share it
        run_dir = Path(distributed.broadcast_str(str(run.dir) if main else None))
        summary = launch(get("train"), cfg, run or Run(run_dir, "train"))
    finally:
        distributed.shutdown()
    if main:
        run_dir = run.dir
        _console().print(f"run directory: {run_dir}", _single_run_table("dlx train", summary))
        _exit_if_failed(summary, run_dir, retry=False)
        if summary["status"] == "interrupted":
            _interrupted(run_dir, True, f" at epoch {summary.get('epochs')}, step {summary.get('steps')}",
                         ("trainer.resume=true",))


def _resume_config(out: Path, name: str, overrides):
    """`dlx train trainer.resume=true --name R`: R's recorded overrides plus the new ones, checked
    (dlx/kinds/train/experiment.py: resume_config)."""
    from dlx.kinds.train.experiment import resume_config
    from dlx.runs import resolve_dir

    run_dir = resolve_dir(out, "train", name, reuse=True)
    _config_dir(None, run_dir)
    return resume_config(run_dir, list(overrides or []))


@app.command(short_help="Fit one scikit-learn baseline, scored like train")
def fit(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
        cfg_only: bool = CFG, config_dir: Path | None = CONFIG_DIR):
    """Fit one non-torch baseline (baseline=logistic|ridge|gbt) on a dataset and task, scored like train."""
    _config_dir(config_dir)
    cfg = _compose("fit", overrides, cfg_only)
    from dlx.launch import launch
    from dlx.registry import get
    from dlx.runs import default_name

    label = default_name(cfg.baseline.name, cfg.data.name, cfg.task.name)
    run = _open_run(out, "fit", name, label, "fit", cfg, overrides, resumable=False)
    summary = launch(get("fit"), cfg, run)
    _console().print(f"run directory: {run.dir}", _single_run_table("dlx fit", summary))


@app.command(short_help="Train or fit one forecaster on a panel of series")
def forecast(overrides: list[str] | None = FORECAST_OVERRIDES, out: Path = OUT, name: str | None = NAME,
             cfg_only: bool = CFG, config_dir: Path | None = CONFIG_DIR):
    """Train or fit one forecaster on a panel of series; writes its quantile forecasts as CSV."""
    _config_dir(config_dir)
    run_experiment("forecast", overrides, out, name, cfg_only, "")


@app.command(short_help="Search a model's settings on the validation split (Optuna)")
def tune(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
         cfg_only: bool = CFG, config_dir: Path | None = CONFIG_DIR):
    """Tune a train run's settings with Optuna (TPE, seeded) on the validation split, tune.trials trials,
    each a train run (tune.child=fit: a baseline fit); writes trials.csv, best.yaml (use it: dlx train
    +tune=<run>/best.yaml) and the figures. The space is conf/tune/<model>.yaml, or
    tune.space.<key>='tag(log, interval(1e-4, 0.1))' (Hydra Optuna sweeper syntax). Re-run with the same
    --name to resume the study, or with a larger tune.trials to extend it; e.g. dlx tune model=mlp
    data=digits tune.trials=12 --name mlp."""
    _config_dir(config_dir)
    run_experiment("tune", overrides, out, name, cfg_only, "")


@app.command("eval", short_help="Evaluate a train run's checkpoint on a split")
def eval_(run_dir: Path = typer.Argument(..., help="A dlx train run directory"),
          overrides: list[str] | None = OVERRIDES,
          split: str = typer.Option("test", "--split", help="train | val | test"),
          config_dir: Path | None = CONFIG_DIR):
    """Evaluate a trained run's checkpoint (weights_only) on a dataset split; writes eval_<split>.json."""
    _config_dir(config_dir, run_dir)
    from dlx.kinds.train.experiment import evaluate_run
    from dlx.tables import metrics_table

    result = evaluate_run(run_dir, overrides or [], split)
    rows = {"data": result["data"], "split": split, "n": result["n"], **result["metrics"]}
    _console().print(f"wrote {run_dir / f'eval_{split}.json'}", metrics_table("dlx eval", rows))


@app.command(short_help="Redraw a run's figures from its tables alone")
def plot(path: Path = typer.Argument(..., help="A run directory (any kind) holding summary.json")):
    """Redraw a run's figures from its tables alone (never retrains)."""
    from dlx.registry import plot_run

    if not (path / "summary.json").is_file():
        raise DlxError(f"{path} is not a dlx run directory (no summary.json)")
    pngs = plot_run(path)
    for png in pngs:
        typer.echo(str(png))
    if not pngs:
        from dlx.runs import read_json

        kind = read_json(path / "summary.json").get("kind")
        _say(f"dlx: a {kind} run has no figures to draw; its results are in {path}/summary.json"
             + (" and its CSV tables" if any(path.glob("*.csv")) else ""))


@app.command("list", short_help="List config choices, or the experiments")
def list_(group: str | None = typer.Argument(None, help="A config group (e.g. model), or 'experiments'"),
          config_dir: Path | None = CONFIG_DIR):
    """List the choices of each config group with a one-line description, or the registered experiments."""
    _config_dir(config_dir)
    from dlx.config import choices, describe, groups

    if group == "experiments":
        rows = []
        for exp in sorted(experiments().values(), key=lambda e: (not e.paper, e.name)):
            how = " | ".join(f"dlx {c} {_spelling(exp.name)}" if c == "reproduce" else f"dlx {c}"
                             for c in exp.commands)
            what = f"{exp.cite}: {exp.claim}" if exp.paper else exp.title
            rows.append((exp.name, f"{how} — {what}"))
        typer.echo(_listing("experiments", rows))
        return
    known = groups()
    if group is not None and group not in known:
        raise DlxError(f"unknown config group '{group}' (choose from: {', '.join(known)}, or experiments)")
    typer.echo("\n\n".join(_listing(g, [(c, describe(g, c)) for c in choices(g)])
                           for g in ([group] if group else known)))


def _listing(heading: str, rows: list[tuple[str, str]]) -> str:
    """A heading, then one line per choice: the name whole, its description wrapped by word beside it."""
    import textwrap

    from dlx.tables import console_width

    if not rows:
        return f"{heading}: (none)"
    pad = min(max(len(n) for n, _ in rows) + 2, 28)
    width = max(console_width() - 2 - pad, 30)
    lines = [f"{heading}:"]
    for name, text in rows:
        wrapped = textwrap.wrap(text, width) or [""]
        first = f"  {name:<{pad}}" if len(name) < pad else f"  {name}  "
        lines.append(first + wrapped[0])
        lines += [" " * (pad + 2) + w for w in wrapped[1:]]
    return "\n".join(lines)


def _estimate(experiment: str, cfg, overrides) -> None:
    """Print what running ``cfg`` would cost (dlx/estimate.py) and stop: nothing is written."""
    from dlx.estimate import describe
    from dlx.registry import get

    typer.echo(describe(get(experiment).cost(cfg, list(overrides or []), say=_say)))


def _tree(out: Path, exp, name: str | None) -> str:
    """The output tree of ``exp`` (one per experiment, whichever command ran it); a --name that exists
    only in a tree an older dlx wrote (e.g. outputs/sweep/ for double descent) is continued there."""
    if name is not None and not (Path(out) / exp.tree / name).exists():
        for old in dict.fromkeys(c.split()[0] for c in exp.commands[1:]):
            if (Path(out) / old / name / "summary.json").is_file():
                return old
    return exp.tree


def run_experiment(experiment: str, overrides: list[str] | None, out: Path, name: str | None,
                   cfg_only: bool, label: str, estimate: bool = False, controls: bool = False,
                   profile: bool = False) -> None:
    """Shared path of every experiment command: compose its config, open the run directory in the
    experiment's output tree, launch it (dlx/launch.py), print its table and headline; with ``controls``,
    then run the paper's negative control into <run>/control and record its verdicts beside the claims."""
    from dlx.launch import launch
    from dlx.registry import get
    from dlx.runs import default_name, read_json

    exp = get(experiment)
    tree = _tree(out, exp, name)
    if name is not None and (Path(out) / tree / name / "config.yaml").is_file():
        _config_dir(None, Path(out) / tree / name)  # resuming: compose as it was composed
    cfg = _compose(exp.name, overrides, cfg_only)
    if estimate:
        return _estimate(exp.name, cfg, overrides)
    resumable = exp.sweep is not None or exp.resumable
    run = _open_run(out, tree, name, default_name(label or exp.name), exp.name, cfg, overrides,
                    resumable=resumable, shared=resumable)
    try:
        with _profiled(run, profile):
            df = launch(exp, cfg, run)
    except KeyboardInterrupt:
        if not run.opened:
            raise
        _interrupted(run.dir, resumable)
    if read_json(run.dir / "summary.json").get("status") == "interrupted":  # stopped at a step boundary
        _interrupted(run.dir, resumable)
    from dlx.tables import frame_table

    title = f"dlx reproduce {_spelling(exp.name)}" if exp.paper else f"dlx {exp.commands[0]}"
    _console().print(f"run directory: {run.dir}", frame_table(title, df, list(exp.table_columns) or None))
    summary = read_json(run.dir / "summary.json")
    if controls and summary.get("status") == "completed":
        summary = _run_control(exp, run.dir, overrides)
    if summary.get("tuned"):  # tune=true: what each compared model runs with
        chosen = "; ".join(f"{m}: {' '.join(v or [])}" for m, v in summary["tuned"].items())
        _console().print(f"tuned on the validation split ({run.dir / 'tuning.csv'}): {chosen}", markup=False,
                         highlight=False)
    line = exp.headline_of(summary)
    if line:  # the experiment's claim in one line, from what it wrote
        _console().print(line, markup=False, highlight=False)
    _exit_if_failed(summary, run.dir, retry=exp.sweep is not None)


@contextmanager
def _profiled(run, on: bool):
    """--profile: cProfile this process while the run runs; the stats go to <run>/profile.pstats (also when
    the run fails or is interrupted), written atomically."""
    if not on:
        yield
        return
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        if run.opened:
            tmp = run.dir / ".profile.pstats.tmp"
            prof.dump_stats(str(tmp))
            os.replace(tmp, run.dir / "profile.pstats")
            _say(f"profile: {run.dir / 'profile.pstats'} (python -m pstats, or snakeviz)")


def _run_control(exp, run_dir: Path, overrides) -> dict:
    """--controls: the paper's negative control beside the finished default (dlx/claims/controls.py)."""
    from dlx.claims.controls import has_control, merge, run_control
    from dlx.runs import read_json

    if not has_control(exp):
        _say(f"dlx: {_spelling(exp.name)} has no negative control: its default data is not generated by dlx")
        return read_json(run_dir / "summary.json")
    ctrl = run_control(exp, run_dir, overrides, _say)
    if ctrl.get("status") != "completed":
        _say(f"dlx: the control of {_spelling(exp.name)} ended {ctrl.get('status')}: see {run_dir}/control")
    return merge(run_dir, exp)


def _failure_lines(run_dir: Path, summary: dict) -> list[str]:
    """What went wrong, from the summaries: the run's own error, or each failed child's."""
    from dlx.runs import read_summary

    if summary.get("error"):
        return [str(summary["error"])]
    lines = []
    for child in sorted((run_dir / "runs").glob("*/summary.json")) if (run_dir / "runs").is_dir() else []:
        s = read_summary(child.parent)
        if s.get("status") == "failed":
            lines.append(f"{child.parent.name}: {s.get('error') or 'no error recorded'}")
    return lines


def _exit_if_failed(summary: dict, run_dir: Path, retry: bool) -> None:
    """A run whose status is failed (e.g. a sweep child failed) ends the command with exit code 1, so
    scripts never read it as success; the table has already been printed, the errors follow."""
    if summary.get("status") != "failed":
        return
    for line in _failure_lines(run_dir, summary)[:10]:
        _say(f"  {line}")
    hint = f"; re-run with --name {run_dir.name} to retry what did not finish" if retry else ""
    _say(f"dlx: error: {run_dir} has status failed{hint}")
    raise typer.Exit(1)


@sweep_app.command("grid", short_help="Any overrides as a grid of child runs")
def sweep_grid(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
               cfg_only: bool = CFG, detach: bool = DETACH, fail_fast: bool = FAIL_FAST,
               zipped: bool = typer.Option(False, "--zip", help="Pair the axes' values instead of crossing"),
               estimate: bool = ESTIMATE, profile: bool = PROFILE, config_dir: Path | None = CONFIG_DIR):
    """Any overrides as a grid: KEY=V1,V2 is an axis, KEY=V a fixed override for every child
    (children are train runs; sweep.child=fit makes them baseline fits)."""
    _config_dir(config_dir)
    from dlx.config import quote
    from dlx.kinds.grid.experiment import is_axis

    overrides = _sweep_flags(overrides, detach, fail_fast)
    axes = [o for o in overrides if is_axis(o)]
    fixed = [o for o in overrides if not is_axis(o)]
    extra = [f"sweep.axes=[{','.join(quote(a) for a in axes)}]"] + (["sweep.zip=true"] if zipped else [])
    run_experiment("grid", fixed + extra, out, name, cfg_only, "grid", estimate, profile=profile)


@app.command(short_help="Show a run's or a sweep's status")
def status(path: Path = typer.Argument(..., help="A run or sweep directory"),
           config_dir: Path | None = CONFIG_DIR):
    """Show a run's or sweep's status; a finished detached sweep is collected and analysed here."""
    _config_dir(config_dir, path)
    from dlx.runs import read_json
    from dlx.sweep.driver import sweep_status
    from dlx.tables import frame_table, metrics_table

    if not (path / "summary.json").is_file():
        raise DlxError(f"{path} is not a dlx run directory (no summary.json)")
    table, summary = sweep_status(path)
    if table is not None:
        counts = table.status.value_counts().to_dict()
        _console().print(f"{path} ({summary['kind']}): {summary['status']}",
                         frame_table("", table), "  ".join(f"{k}: {v}" for k, v in counts.items()))
    else:
        summary = read_json(path / "summary.json")
        _console().print(f"{path} ({summary['kind']})",
                         metrics_table("", {"status": summary["status"], **summary.get("metrics", {})}))
    _exit_if_failed(summary, path, retry=table is not None)


def _alias(exp, command: str) -> None:
    """`dlx <command>`: another spelling of `dlx reproduce <paper>` (same config, same output tree)."""
    words = command.split()
    parent = sweep_app if words[0] == "sweep" else app
    name = words[-1]
    doc = f"{exp.title}: {exp.claim} (the same run as dlx reproduce {_spelling(exp.name)})."
    short = f"{exp.claim[:1].upper()}{exp.claim[1:]} ({exp.cite.split(',')[0]})"

    if exp.sweep is not None:
        def command_fn(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
                       cfg_only: bool = CFG, detach: bool = DETACH, fail_fast: bool = FAIL_FAST,
                       estimate: bool = ESTIMATE, profile: bool = PROFILE,
                       config_dir: Path | None = CONFIG_DIR):
            _config_dir(config_dir)
            run_experiment(exp.name, _sweep_flags(overrides, detach, fail_fast), out, name, cfg_only,
                           _spelling(exp.name), estimate, profile=profile)
    else:
        def command_fn(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
                       cfg_only: bool = CFG, estimate: bool = ESTIMATE, config_dir: Path | None = CONFIG_DIR):
            _config_dir(config_dir)
            run_experiment(exp.name, overrides, out, name, cfg_only, _spelling(exp.name), estimate)

    command_fn.__doc__ = doc
    parent.command(name, short_help=short, help=doc)(command_fn)


for _exp in papers():
    for _command in _exp.commands:
        if _command != "reproduce":
            _alias(_exp, _command)


def _paper_lines(exp) -> str:
    """A paper in `dlx reproduce --help`: its name, then its citation and claim wrapped by word."""
    import textwrap

    text = textwrap.wrap(f"{exp.cite}: {exp.claim}", 60)
    return "\n".join(f"  {_spelling(exp.name) if i == 0 else '':<15} {line}" for i, line in enumerate(text))


PAPER_HELP = "Which paper: " + ", ".join(_spelling(e.name) for e in papers()) + ", or all"


@app.command(short_help="Run a paper's experiment, or all of them",
             help="Run a paper's experiment: CPU scale on embedded data by default, paper scale with "
                  "experiment=<preset> (see dlx list experiment). 'all' runs every paper's default into one "
                  "tree and writes the report (re-run with the same --name to resume).\n\n\b\nPapers:\n" +
                  "\n".join(_paper_lines(e) for e in papers()))
def reproduce(paper: str = typer.Argument(..., help=PAPER_HELP),
              overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
              cfg_only: bool = CFG, estimate: bool = ESTIMATE,
              only: str | None = typer.Option(None, "--only", help="with all: just these papers (a,b)"),
              skip: str | None = typer.Option(None, "--skip", help="with all: leave these papers out (a,b)"),
              controls: bool = typer.Option(False, "--controls", help="Also run each paper's negative "
                                            "control (data without the premise its method exploits) into "
                                            "<run>/control; a claim that holds on it too is 'built in'"),
              profile: bool = PROFILE, config_dir: Path | None = CONFIG_DIR):
    _config_dir(config_dir)
    if paper == "all":
        if estimate:
            raise DlxError("--estimate goes with one paper at a time (dlx reproduce <paper> --estimate)")
        return reproduce_all(overrides, out, name, only, skip, controls)
    if only or skip:
        raise DlxError("--only and --skip go with 'dlx reproduce all'")
    exp = find(paper)
    if exp is None or not exp.paper:
        known = ", ".join(_spelling(e.name) for e in papers())
        raise DlxError(f"unknown paper '{paper}' (choose from: {known}, all)")
    if controls and estimate:
        raise DlxError("--estimate prices the default alone; drop --controls (a control costs about as much)")
    run_experiment(exp.name, overrides, out, name, cfg_only, _spelling(exp.name), estimate,
                   controls, profile)


def reproduce_all(overrides, out: Path, name: str | None, only: str | None, skip: str | None,
                  controls: bool = False) -> None:
    from dlx.claims.report import build_report
    from dlx.claims.suite import run_all, select
    from dlx.runs import check_name, default_name

    if overrides:
        raise DlxError("dlx reproduce all runs every paper's default; give overrides to one paper at a time")
    chosen = select(only, skip)
    root = Path(out) / "reproduce" / check_name(name or default_name("all"))
    _say(f"reproducing {len(chosen)} papers into {root}: {', '.join(_spelling(e.name) for e in chosen)}")
    summaries = run_all(root, chosen, _say, controls)
    md, html_path, runs = build_report([root], root)
    from dlx.claims import count, summary_line

    n = count([c for r in runs for c in r.claims])
    _console().print(f"report: {html_path} (and {md.name}) — {summary_line(n)}")
    failed = [e.name for e, s in zip(chosen, summaries, strict=True) if s.get("status") != "completed"]
    if failed:
        _say(f"dlx: error: {', '.join(failed)} did not complete; re-run with --name {root.name} to resume")
        raise typer.Exit(1)


@app.command(short_help="Build report.md and report.html from paper runs")
def report(paths: list[Path] = typer.Argument(..., help="Paper run directories, or folders of them"),
           out: Path | None = typer.Option(None, "--out", help="Where report.md and report.html go "
                                           "(default: the one PATH given, else outputs/report/<time>)")):
    """Build report.md and a self-contained report.html from paper run directories (never re-runs)."""
    from dlx.claims.report import build_report
    from dlx.runs import default_name

    target = out or (paths[0] if len(paths) == 1 else Path("outputs") / "report" / default_name("report"))
    md, html_path, runs = build_report(paths, target)
    typer.echo(f"{len(runs)} paper run{'s' if len(runs) != 1 else ''} -> {html_path} and {md}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input is one line on stderr and exit 2, never a traceback."""
    global ARGV
    ARGV = list(sys.argv[1:] if argv is None else argv)
    from dlx.timings import mark_entry

    mark_entry(own_process=argv is None)
    saved = os.environ.get("DLX_CONFIG_PATH")  # --config-dir extends it for this invocation only
    try:
        return _main(argv)
    finally:
        if saved is None:
            os.environ.pop("DLX_CONFIG_PATH", None)
        else:
            os.environ["DLX_CONFIG_PATH"] = saved


def _main(argv: list[str] | None) -> int:
    try:
        rc = app(args=argv, prog_name="dlx", standalone_mode=False)
    except DlxError as err:
        print(f"dlx: error: {err}", file=sys.stderr)
        return err.exit_code
    except typer.Exit as ex:
        return ex.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("dlx: interrupted", file=sys.stderr)
        return 130
    except typer.TyperException as err:  # usage errors: unknown command or option, missing argument
        print(f"dlx: error: {err.format_message()}", file=sys.stderr)
        return 2
    except Exception as err:  # one line here, the traceback on request
        if os.environ.get("DLX_TRACEBACK", "0") not in ("", "0"):
            raise
        msg = " ".join(f"{type(err).__name__}: {err}".split())
        if isinstance(err, (OSError, MemoryError)):  # the machine, not dlx: disk full, permissions, memory
            print(f"dlx: error: {msg}", file=sys.stderr)
        else:  # a bug, not bad input
            print(f"dlx: internal error: {msg} (DLX_TRACEBACK=1 shows where; please report it)",
                  file=sys.stderr)
        return 1
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())

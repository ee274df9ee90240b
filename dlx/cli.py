"""The dlx command line. Commands are thin: compose a config, call an experiment, print a table.

Nothing heavy is imported at module level: `dlx --help` and `dlx list` never load torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from dlx.errors import DlxError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="dlx: reproduce, extend and compare deep-learning experiments from one CLI.")
sweep_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                        help="Sweeps of child training runs; re-running the same --name resumes.")
app.add_typer(sweep_app, name="sweep")

OVERRIDES = typer.Argument(None, help="Hydra overrides, e.g. model=cnn5 data=mnist1d trainer.epochs=10")
OUT = typer.Option("outputs", "--out", help="Output root; runs go to OUT/<command>/<name>/")
NAME = typer.Option(None, "--name", help="Run directory name (default: timestamp + key choices)")
CFG = typer.Option(False, "--cfg", help="Print the composed config and exit")
DETACH = typer.Option(False, "--detach", help="launcher=slurm only: submit and return; see dlx status")
FAIL_FAST = typer.Option(False, "--fail-fast", help="Stop the sweep at the first failed child")


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


def _compose(command: str, overrides: list[str] | None, show: bool):
    from dlx.config import compose, to_yaml

    cfg = compose(command, overrides or [])
    if show:
        typer.echo(to_yaml(cfg), nl=False)
        raise typer.Exit(0)
    return cfg


def _metrics_table(title: str, rows: dict):
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in rows.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    return table


@app.command()
def train(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
          cfg_only: bool = CFG):
    """Train one model: writes config, metrics.csv, checkpoint, summary.json and learning curves."""
    cfg = _compose("train", overrides, cfg_only)
    from dlx.experiments import train as exp
    from dlx.runs import Run, default_name, resolve_dir
    from dlx.train import distributed

    distributed.init(cfg.trainer.get("strategy", "none"))
    main = distributed.is_main()
    run_dir = None
    if main:  # one run directory, resolved once and shared with every rank
        run_dir = str(resolve_dir(out, "train", name or default_name(cfg.model.name, cfg.data.name),
                                  reuse=bool(cfg.trainer.resume)))
    run_dir = Path(distributed.broadcast_str(run_dir))
    run = Run(run_dir, "train")
    if main:
        run.save_config(cfg, overrides or [])
    try:
        summary = exp.run(cfg, run)
    finally:
        distributed.shutdown()
    if not main:
        return
    m = summary["metrics"]
    shown = {"status": summary["status"], "params": summary["params"], "epochs": summary["epochs"],
             **{k: m[k] for k in ("train_error", "test_error", "best_test_error", "test_loss") if k in m},
             "wall_s": summary["wall_s"]}
    _console().print(f"run directory: {run_dir}", _metrics_table("dlx train", shown))


@app.command("eval")
def eval_(run_dir: Path = typer.Argument(..., help="A dlx train run directory"),
          overrides: list[str] | None = OVERRIDES,
          split: str = typer.Option("test", "--split", help="train | val | test")):
    """Evaluate a trained run's checkpoint (weights_only) on a dataset split; writes eval.json."""
    from dlx.experiments.train import evaluate_run

    result = evaluate_run(run_dir, overrides or [], split)
    rows = {"data": result["data"], "split": split, "n": result["n"], **result["metrics"]}
    _console().print(f"wrote {run_dir / 'eval.json'}", _metrics_table("dlx eval", rows))


@app.command()
def plot(path: Path = typer.Argument(..., help="A run directory (any kind) holding summary.json")):
    """Redraw a run's figures from its tables alone (never retrains)."""
    from dlx.experiments import plot_run

    if not (path / "summary.json").is_file():
        raise DlxError(f"{path} is not a dlx run directory (no summary.json)")
    for png in plot_run(path):
        typer.echo(str(png))


@app.command("list")
def list_(group: str | None = typer.Argument(None, help="A config group, e.g. model")):
    """List the choices of each config group with a one-line description."""
    from rich.markup import escape
    from rich.table import Table

    from dlx.config import choices, describe, groups

    known = groups()
    if group is not None and group not in known:
        raise DlxError(f"unknown config group '{group}' (choose from: {', '.join(known)})")
    table = Table(show_header=True)
    for col in ("group", "choice", "description"):
        table.add_column(col)
    for g in [group] if group else known:
        for c in choices(g):
            table.add_row(g, c, escape(describe(g, c)))
    _console().print(table)


def _frame_table(title: str, df, columns: list[str] | None = None):
    from rich.table import Table

    table = Table(title=title)
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    for col in cols:
        table.add_column(str(col), justify="right")
    for _, r in df[cols].iterrows():
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r])
    return table


def run_experiment(command: str, config: str, overrides: list[str] | None, out: Path, name: str | None,
                   cfg_only: bool, label: str, resumable: bool = False) -> None:
    """Shared path of every experiment command: compose, make the run directory, run, print results.

    A resumable command (a sweep) given an existing --name continues in that directory, provided the
    overrides are the same; otherwise an existing name gets a numeric suffix."""
    cfg = _compose(config, overrides, cfg_only)
    from dlx.experiments import module
    from dlx.runs import Run, default_name, read_overrides, resolve_dir

    exp = module(cfg.kind)
    resumable = resumable or hasattr(exp, "children")  # sweep-shaped experiments resume by --name
    run_dir = resolve_dir(out, command, name or default_name(label), reuse=resumable and name is not None)
    def same(ovs):  # order does not matter, and --fail-fast may be added or dropped on resume
        return sorted(o for o in ovs if not o.startswith("sweep.fail_fast="))

    if (run_dir / "overrides.yaml").is_file() and same(read_overrides(run_dir)) != same(overrides or []):
        raise DlxError(f"{run_dir} was started with other overrides ({' '.join(read_overrides(run_dir))}); "
                       "use the same ones to resume, or another --name")
    run = Run(run_dir, cfg.kind)
    run.save_config(cfg, overrides or [])
    try:
        df = exp.run(cfg, run)
    except KeyboardInterrupt:
        run.summary("interrupted")
        raise
    except DlxError as err:
        run.summary("failed", error=str(err))
        raise
    except Exception as err:  # a bug: the traceback is for us, the summary says what happened
        run.summary("failed", error=f"{type(err).__name__}: {err}"[:500])
        raise
    _console().print(f"run directory: {run.dir}",
                     _frame_table(f"dlx {command} {label}".strip(), df, getattr(exp, "TABLE_COLUMNS", None)))
    from dlx.runs import read_json

    summary = read_json(run.dir / "summary.json")
    if hasattr(exp, "headline"):  # the experiment's claim in one line, from what it wrote
        _console().print(exp.headline(summary))
    _exit_if_failed(summary, run.dir, retry=resumable)


def _exit_if_failed(summary: dict, run_dir: Path, retry: bool) -> None:
    """A run whose status is failed (e.g. a sweep child failed) ends the command with exit code 1, so
    scripts never read it as success; the table has already been printed."""
    if summary.get("status") != "failed":
        return
    hint = f"; re-run with --name {run_dir.name} to retry what did not finish" if retry else ""
    print(f"dlx: error: {run_dir} has status failed (see its summary.json){hint}", file=sys.stderr)
    raise typer.Exit(1)


@app.command()
def bench(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
          cfg_only: bool = CFG):
    """Measure speed: Table-1-like throughput per mode, dlx's loop vs a hand-written one (and Lightning),
    shared-memory multiprocessing."""
    run_experiment("bench", "bench", overrides, out, name, cfg_only, "bench")


@sweep_app.command("double-descent")
def sweep_double_descent(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
                         cfg_only: bool = CFG, detach: bool = DETACH, fail_fast: bool = FAIL_FAST):
    """Model-, epoch- and sample-wise double descent (preset via experiment=dd_mnist1d|dd_digits|...)."""
    run_experiment("sweep", "sweep_double_descent", _sweep_flags(overrides, detach, fail_fast), out, name,
                   cfg_only, "double-descent", resumable=True)


@sweep_app.command("grid")
def sweep_grid(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
               cfg_only: bool = CFG, detach: bool = DETACH, fail_fast: bool = FAIL_FAST,
               zipped: bool = typer.Option(False, "--zip", help="Pair the axes' values instead of crossing")):
    """Any train overrides as a grid: KEY=V1,V2 is an axis, KEY=V a fixed override for every child."""
    from dlx.config import quote
    from dlx.experiments.grid import is_axis

    overrides = _sweep_flags(overrides, detach, fail_fast)
    axes = [o for o in overrides if is_axis(o)]
    fixed = [o for o in overrides if not is_axis(o)]
    extra = [f"sweep.axes=[{','.join(quote(a) for a in axes)}]"] + (["sweep.zip=true"] if zipped else [])
    run_experiment("sweep", "sweep_grid", fixed + extra, out, name, cfg_only, "grid", resumable=True)


@app.command()
def status(path: Path = typer.Argument(..., help="A run or sweep directory")):
    """Show a run's or sweep's status; a finished detached sweep is collected and analysed here."""
    from dlx.runs import read_json
    from dlx.sweep.driver import sweep_status

    if not (path / "summary.json").is_file():
        raise DlxError(f"{path} is not a dlx run directory (no summary.json)")
    table, summary = sweep_status(path)
    if table is not None:
        counts = table.status.value_counts().to_dict()
        _console().print(_frame_table(f"{path} ({summary['kind']}): {summary['status']}", table),
                         "  ".join(f"{k}: {v}" for k, v in counts.items()))
    else:
        summary = read_json(path / "summary.json")
        _console().print(_metrics_table(f"{path} ({summary['kind']})",
                                        {"status": summary["status"], **summary.get("metrics", {})}))
    _exit_if_failed(summary, path, retry=table is not None)


@app.command("detect-adversarial")
def detect_adversarial(overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
                       cfg_only: bool = CFG):
    """I-defender and baseline detectors against FGSM, BIM, PGD, DeepFool and CW attacks."""
    run_experiment("detect-adversarial", "detect_adversarial", overrides, out, name, cfg_only, "idefender")


@app.command()
def reproduce(paper: str = typer.Argument(..., help="Which paper's experiment"),
              overrides: list[str] | None = OVERRIDES, out: Path = OUT, name: str | None = NAME,
              cfg_only: bool = CFG):
    """Run a paper's experiment preset (CPU scale by default; paper scale via experiment=...)."""
    from dlx.experiments import REPRODUCE

    if paper not in REPRODUCE:
        raise DlxError(f"unknown paper '{paper}' (choose from: {', '.join(sorted(REPRODUCE)) or 'none yet'})")
    run_experiment("reproduce", REPRODUCE[paper], overrides, out, name, cfg_only, paper)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input is one line on stderr and exit 2, never a traceback."""
    try:
        rc = app(args=argv, prog_name="dlx", standalone_mode=False)
    except DlxError as err:
        print(f"dlx: error: {err}", file=sys.stderr)
        return err.exit_code
    except typer.Exit as ex:
        return ex.exit_code
    except typer.Abort:
        print("dlx: interrupted", file=sys.stderr)
        return 130
    except typer.TyperException as err:  # usage errors: unknown command or option, missing argument
        print(f"dlx: error: {err.format_message()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlx: interrupted", file=sys.stderr)
        return 130
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

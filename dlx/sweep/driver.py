"""The path every sweep-shaped experiment shares: check -> expand -> prepare -> execute -> finalize -> plot,
and `dlx status`.

A sweep experiment (registry record with ``sweep=Sweep(...)``, dlx/registry.py) is handed in as its
record: the driver runs its hooks (``check``, ``children``, ``prepare``, ``finalize``, ``plot``) and never
imports it. ``finalize`` collects and analyses and ends with ``finish(...)``: the one place a sweep writes
its tables and decides completed or failed; the driver then draws its figures."""

from __future__ import annotations

import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from dlx.runs import Run, read_json, read_summary, usage_error, write_csv
from dlx.runs import status as run_status
from dlx.sweep.child import DONE
from dlx.sweep.execute import child_dir, execute


def _say(text: str) -> None:
    import sys

    print(text, file=sys.stderr, flush=True)


def status_frame(children, statuses: dict, sweep_dir: Path | None = None):
    """A row per child: its grid values, run id, status and, while one is training it, who (host:pid)."""
    import pandas as pd

    from dlx.locks import alive, read

    rows = []
    for c in children:
        owner = read(child_dir(sweep_dir, c)) if sweep_dir is not None else None
        rows.append({**{k.split(".")[-1]: v for k, v in c.params.items()}, "run_id": c.run_id,
                     "status": statuses.get(c.run_id) or "pending",
                     "owner": f"{owner['host']}:{owner['pid']}" if owner and alive(owner) else ""})
    df = pd.DataFrame(rows)
    return df if df.owner.any() else df.drop(columns="owner")


def check_fixed(base: list[str], children, hints: dict | None = None) -> None:
    """A fixed override on a key the sweep varies would be silently overwritten in every child."""
    from dlx.errors import DlxError

    swept = {k for c in children for k in c.params}
    for ov in base:
        key = ov.split("=", 1)[0].lstrip("+~")
        if key in swept:
            how = (hints or {}).get(key, "give it as an axis of the sweep instead")
            raise DlxError(f"{key} is varied by this sweep, so '{ov}' would be overwritten; {how}")


def check_children(config: str, base: list[str], children) -> None:
    """Compose every child's config before the first one starts: a bad axis value (model.width=abc,
    model=nope) is one line and exit 2, not a table of failures after the good children trained."""
    from dlx.config import compose
    from dlx.errors import DlxError

    for c in children:
        try:
            cfg = compose(config, [*base, *c.overrides])
            if c.kind in ("train", "fit") and cfg.get("data") is not None:
                from dlx.data import check_data

                check_data(cfg.data)  # what `dlx train` refuses at once, refused before any child starts
        except DlxError as err:
            raise DlxError(f"{err} (in sweep child {' '.join(c.overrides)})") from None


@contextmanager
def nested_tracking(run: Run):
    """Children started from here (in this process, a pool worker or a SLURM job) nest their MLflow runs
    under the sweep's own: the parent run id travels in the environment they inherit."""
    from dlx.tracking.mlflow import PARENT_ENV

    trackers = run.trackers.items if run.trackers else []
    parent = next((f"{t.experiment_id}/{t.run_id}" for t in trackers if t.name == "mlflow"), None)
    old = os.environ.get(PARENT_ENV)
    if parent:
        os.environ[PARENT_ENV] = parent
    try:
        yield
    finally:
        if parent:
            if old is None:
                os.environ.pop(PARENT_ENV, None)
            else:
                os.environ[PARENT_ENV] = old


def run_sweep(cfg, run: Run, exp):
    """Run ``exp``'s children (skipping finished ones), finalize and plot; detached SLURM sweeps return
    early. Every setting is checked before the sweep's directory exists. summary.json gets ``timings``
    (dlx/timings.py): where the command's wall time went."""
    from dlx.timings import Phases

    phases = Phases()  # a phase timed in several blocks adds up
    with phases("planning"):
        given = run.overrides()
        children = exp.children(cfg)
        check_fixed(given, children, exp.sweep.swept_by)
        check = exp.hook("check")
        if check is not None:
            check(cfg, given)
        from dlx.sweep import tuning

        base = [*given, "trainer.progress=none"]
        if not cfg.sweep.get("child_figures", False) and "figures" in (cfg.get("trainer") or {}):
            base.append("trainer.figures=false")  # the children's own learning curves: `dlx plot` draws them
    if tuning.enabled(cfg):  # tune every compared model first, then plan the children with the choices
        with phases("planning"):
            check_children(exp.name, base, children)  # a bad child is refused before the studies, not after
        with phases("tuning"):
            tuned = tuning.tune_first(exp, cfg, run, given, say=_say)
        cfg, children = tuning.apply(cfg, tuned), tuning.children(exp, cfg, tuned)
    with phases("planning"):
        check_children(exp.name, base, children)
        from dlx.sweep.plan import setting

        stack = setting(cfg.sweep.get("stack", "false"))  # refused here, before the sweep's directory exists
        prepare = exp.hook("prepare")
        if prepare is not None:
            prepare(cfg, run)
        run.summary("running", n_children=len(children))
    with nested_tracking(run), phases("children"):  # the stacks are planned inside execute, counted here
        statuses = execute(children, exp.name, base, run.dir, launcher=cfg.launcher,
                           workers=cfg.sweep.workers, fail_fast=cfg.sweep.fail_fast, stack=stack,
                           stack_max=cfg.sweep.get("stack_max"))
    if "submitted" in statuses.values():  # detached: `dlx status DIR` collects later
        run.summary("running", n_children=len(children), detached=True)
        return status_frame(children, statuses)
    same_usage_error(run.dir, children, statuses)
    from dlx.locks import Lease

    lease = Lease(run.dir, ".finalize").wait()  # two invocations that shared the children finalize in turn
    try:
        results = finalize(exp, cfg, run, children, phases)
    finally:
        lease.release()
    walls = [read_summary(child_dir(run.dir, c)).get("wall_s") for c in children]
    timings = phases.record(children_wall_sum=sum(w for w in walls if isinstance(w, (int, float))))
    run.summary(read_summary(run.dir).get("status", "completed"), timings=timings)
    return results


def finalize(exp, cfg, run: Run, children, phases=None):
    """The experiment's analysis of its children (its ``finalize`` hook), then its figures."""
    from contextlib import nullcontext

    with phases("analysis") if phases else nullcontext():
        results = exp.finalize(cfg, run, children)
    with phases("figures") if phases else nullcontext():
        exp.plot(run.dir)
    return results


def finish(run: Run, results, metrics: dict, *, curves=None, ok=DONE, tables: dict | None = None,
           **extra):
    """Write results.csv (and curves.csv and any other ``tables``), record the sweep as completed when every
    row's status is in ``ok`` (failed otherwise); returns ``results``."""
    write_csv(run.path("results.csv"), results)
    if curves is not None:
        write_csv(run.path("curves.csv"), curves)
    for name, df in (tables or {}).items():
        write_csv(run.path(f"{name}.csv"), df)
    done = bool(results.status.isin(ok).all()) if len(results) else False
    from dlx.sweep.tuning import TUNED_FILE

    if (run.dir / TUNED_FILE).is_file():  # tune=true: what each model's study chose, beside the verdicts
        import yaml

        extra.setdefault("tuned", {k: v.get("chosen") for k, v in
                                   (yaml.safe_load((run.dir / TUNED_FILE).read_text()) or {}).items()})
    counts = {str(k): int(v) for k, v in results.status.value_counts().items()} if len(results) else {}
    run.summary("completed" if done else "failed", metrics, statuses=counts, **extra)
    return results


def same_usage_error(run_dir: Path, children, statuses: dict) -> None:
    """Every child refused with one and the same bad-input error (e.g. a missing data.root): that is the
    sweep's own bad input, so it ends as one line and exit 2 rather than a table of failures."""
    from dlx.errors import DlxError

    if not children or any(statuses.get(c.run_id) != "failed" for c in children):
        return
    errors = {usage_error(read_summary(child_dir(run_dir, c))) for c in children}
    if len(errors) == 1 and None not in errors:
        raise DlxError(f"{next(iter(errors))} (every child of the sweep)")


def sweep_status(run_dir: Path):
    """Children's statuses from their run directories; finalizes the sweep once all are done.

    A child submitted as a SLURM job (or a local submitit job) whose job has left the queue without a
    result is 'lost' (dlx/sweep/slurm.py asks the scheduler). Once nothing of a detached sweep is queued or
    running any more, the sweep ends here: collected and analysed like a foreground sweep when every child
    has a result (failed if one failed), else recorded as failed, naming the lost children, so a re-run
    with the same --name submits them again (a child with a checkpoint resumes from it)."""
    from omegaconf import OmegaConf

    from dlx.registry import get
    from dlx.sweep.slurm import lost

    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json")
    exp = get(summary.get("kind"))
    if exp.sweep is None:
        return None, summary
    from dlx.sweep import tuning

    cfg, tuned = OmegaConf.load(run_dir / "config.yaml"), tuning.recorded(run_dir)  # tune=true's choices
    cfg, children = tuning.apply(cfg, tuned), tuning.children(exp, cfg, tuned)
    statuses = {c.run_id: run_status(child_dir(run_dir, c)) for c in children}
    gone = lost(run_dir, children, statuses, cfg.get("launcher")) or set()
    statuses.update({run_id: "lost" for run_id in gone})
    waiting = any(s in (None, "running") for s in statuses.values())
    if all(s in DONE for s in statuses.values()) and summary.get("status") != "completed":
        finalize(exp, cfg, Run.reopen(run_dir, exp.name), children)
        summary = read_json(run_dir / "summary.json")
    elif summary.get("detached") and summary.get("status") == "running" and not waiting and not gone:
        finalize(exp, cfg, Run.reopen(run_dir, exp.name), children)  # every child has a result, some failed
        summary = read_json(run_dir / "summary.json")
    elif summary.get("detached") and not waiting and gone:
        shown = sorted(gone)
        names = ", ".join(shown[:5]) + (", ..." if len(shown) > 5 else "")
        error = (f"{len(gone)} of {len(children)} children lost: "
                 f"{'their jobs' if len(gone) > 1 else 'its job'} left the queue without a result "
                 f"(cancelled, timed out or killed): {names}")
        if summary.get("status") != "failed" or summary.get("error") != error:
            counts = {str(k): int(v) for k, v in Counter(statuses.values()).items()}
            Run.reopen(run_dir, exp.name).summary("failed", n_children=len(children), detached=True,
                                                  statuses=counts, error=error, error_type="Lost")
            summary = read_json(run_dir / "summary.json")
    return status_frame(children, statuses, run_dir), summary

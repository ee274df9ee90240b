"""Run a sweep's children: inline (this process), a local process pool, or a SLURM job array
(dlx/sweep/slurm.py). A child whose run directory
already says completed/diverged is skipped, so re-running a sweep finishes only what is missing.
A failing child is recorded as 'failed' and the sweep goes on (unless fail_fast).

With ``sweep.stack`` (dlx/sweep/stack.py) the unit of work inline and in the pool is a stack: train
children that differ only in per-member settings (seed, label noise, lr, ...) trained as one stacked
model by ``run_stack``; the rest stay one child per unit (``run_child``). SLURM jobs run one child each."""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import status as run_status
from dlx.sweep.child import DONE, LEASED, run_child

LAUNCHERS = ("inline", "local", "slurm")


def child_dir(sweep_dir: Path, child) -> Path:
    return Path(sweep_dir) / "runs" / child.run_id


def die_with_parent() -> None:
    """A pool worker ends when the process that started it dies (Linux): after a kill -9 of the sweep (or
    of dlx tune) no orphan goes on training, holding its child's lease and the cores a resume needs.
    The child keeps its last checkpoint; the resume continues it."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def warm_up() -> None:
    """A pool worker imports what every child needs before its first child starts, so that child's
    wall time is not inflated by seconds of imports the others do not pay; and learns what the sweep's stop
    request means outside training (dlx/train/interrupt.py)."""
    from dlx.train.interrupt import stop_at_once_outside_training

    die_with_parent()
    stop_at_once_outside_training()
    import dlx.build  # noqa: F401  (torch, data, models, tasks)
    import dlx.train.lifecycle  # noqa: F401
    import dlx.train.stacked  # noqa: F401
    from dlx.plots import pyplot

    pyplot()  # matplotlib, for the child's learning curves


def _worker_died(sweep_dir: Path, child, config: str, err: Exception) -> str:
    """Record a child whose process vanished mid-run as failed, so the summary does not say 'running'."""
    from dlx.runs import Run

    d = child_dir(sweep_dir, child)
    if run_status(d) in DONE:
        return run_status(d)
    Run.reopen(d, child.kind, config=config).fail(RuntimeError(f"worker process died: {err!r}"))
    return "failed"


class _Report:
    """Sweep progress on the one progress display: a line per finished child."""

    def __init__(self, total: int, done: int, mode: str):
        from dlx.progress import ProgressLine

        self.done = done
        self.line = ProgressLine("sweep", total, "children", mode, done=done)

    def finished(self, child, status: str) -> None:
        self.done += 1
        self.line.update(self.done, f"{child.run_id}: {status}")

    def close(self) -> None:
        self.line.close()


def execute(children, config: str, base_overrides: list[str], sweep_dir: Path, launcher="local",
            workers: int = 1, fail_fast: bool = False, progress: str = "auto", stack="false",
            stack_max: int | None = None) -> dict[str, str]:
    """Run every child not yet done; returns {run_id: status} for all children ('submitted' for
    children handed to SLURM with launcher.detach=true). `launcher` is a name or the launcher config.
    ``stack`` (auto, true, false: the sweep's ``sweep.stack``) stacks same-shape train children, at most
    ``stack_max`` to a stack."""
    launcher_cfg = {"name": launcher} if isinstance(launcher, str) else launcher
    launcher = launcher_cfg.get("name")
    if launcher not in LAUNCHERS:
        raise DlxError(f"unknown launcher '{launcher}' (choose from: {', '.join(LAUNCHERS)})")
    workers = max(1, int(workers))
    statuses = {c.run_id: run_status(child_dir(sweep_dir, c)) for c in children}
    todo = [c for c in children if statuses[c.run_id] not in DONE]
    report = _Report(len(children), len(children) - len(todo), progress)

    def args(c, threads=None):
        return (config, [*base_overrides, *c.overrides], str(child_dir(sweep_dir, c)), threads, c.kind)

    units = [[c] for c in todo]
    if launcher != "slurm" and len(todo) > 1:
        from dlx.sweep.plan import plan

        units = plan(todo, config, base_overrides, stack, 1 if launcher == "inline" else workers, stack_max,
                     say=report.line.say)

    def unit_args(unit, threads=None):
        return (config, [tuple(args(c)[1:3]) + (c.kind,) for c in unit], threads)

    try:
        if launcher == "slurm" and todo:
            from dlx.sweep.slurm import submit

            jobs = submit(todo, args, sweep_dir, launcher_cfg)
            if launcher_cfg.get("detach"):
                statuses.update({c.run_id: "submitted" for c in todo})
                return statuses
            from submitit.helpers import as_completed

            by_job = {j.job_id: c for j, c in zip(jobs, todo, strict=True)}
            for job in as_completed(jobs, poll_frequency=2):
                c = by_job[job.job_id]
                try:
                    statuses[c.run_id] = job.result()
                except Exception:  # the job died outside run_child (e.g. killed by the scheduler)
                    statuses[c.run_id] = run_status(child_dir(sweep_dir, c)) or "failed"
                report.finished(c, statuses[c.run_id])
        elif launcher == "inline" or workers == 1 or len(units) <= 1:
            for unit in units:
                got = _run_unit(unit, args, unit_args, sweep_dir)
                for c in unit:
                    statuses[c.run_id] = got[c.run_id]
                    if statuses[c.run_id] != LEASED:  # held elsewhere: counted when it is done there
                        report.finished(c, statuses[c.run_id])
                if any(got[c.run_id] == "interrupted" for c in unit):  # Ctrl-C stopped it cleanly: stop
                    raise KeyboardInterrupt
                if fail_fast and any(got[c.run_id] == "failed" for c in unit):
                    break
        else:
            _pool(units, args, unit_args, statuses, report, sweep_dir, config, workers, fail_fast)
        _wait_for_others(children, statuses, args, sweep_dir, report)
    finally:
        report.close()
    return statuses


def _run_unit(unit, args, unit_args, sweep_dir: Path) -> dict[str, str]:
    """{run_id: status} of one unit run here: a child alone, or a stack."""
    if len(unit) == 1:
        return {unit[0].run_id: run_child(*args(unit[0]))}
    from dlx.sweep.stack import run_stack

    return _by_id(unit, run_stack(*unit_args(unit)), sweep_dir)


def _by_id(unit, got: dict, sweep_dir: Path) -> dict[str, str]:
    return {c.run_id: got.get(str(child_dir(sweep_dir, c))) or run_status(child_dir(sweep_dir, c)) or "failed"
            for c in unit}


def _wait_for_others(children, statuses: dict, args, sweep_dir: Path, report, poll: float = 2.0) -> None:
    """Children another invocation of this sweep holds: wait until they are done there, or take them
    over (and resume them from their checkpoint) if that process is gone."""
    from dlx.locks import alive, read

    waiting = [c for c in children if statuses.get(c.run_id) == LEASED]
    while waiting:
        time.sleep(poll)
        still = []
        for c in waiting:
            d = child_dir(sweep_dir, c)
            owner = read(d)
            if run_status(d) in DONE and owner is None:
                statuses[c.run_id] = run_status(d)
            elif owner is not None and alive(owner):
                still.append(c)
                continue
            else:  # its owner died: this process finishes it
                statuses[c.run_id] = run_child(*args(c))
                if statuses[c.run_id] == LEASED:  # a third process was quicker
                    still.append(c)
                    continue
            report.finished(c, statuses[c.run_id])
        waiting = still


def _stop_pool(pool, pending) -> None:
    """Ctrl-C: nothing new starts; each running child stops at a step boundary and saves its checkpoint
    (the workers got the same SIGINT from the terminal; the stop request, STOP, is sent too for a child that
    started since, or when only this process was signalled); wait for them, so no child is left
    half-written."""
    import signal

    from dlx.train.interrupt import STOP

    for f in pending:
        f.cancel()
    for proc in list(getattr(pool, "_processes", {}).values()):  # the executor's live workers
        try:
            os.kill(proc.pid, STOP if STOP is not None else signal.SIGINT)
        except OSError:
            pass
    try:
        wait([f for f in pending if not f.cancelled()])
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting (children stop at once, unsaved)
        pass


def _pool(units, args, unit_args, statuses, report, sweep_dir, config, workers: int, fail_fast: bool) -> None:
    """Units (a child, or a stack of children) in a spawn process pool. A worker that dies (e.g. killed
    for memory) breaks the pool: the children that were running are recorded as failed, the ones that
    never started go to a fresh pool (unless nothing started at all, which would only repeat)."""
    from dlx.threads import free_cores

    threads = max(1, free_cores()[0] // workers)

    def stamp(c):  # a child that starts rewrites its summary ('running'), so an unchanged one never ran
        path = child_dir(sweep_dir, c) / "summary.json"
        return path.stat().st_mtime_ns if path.is_file() else None

    from dlx.train.interrupt import working

    def submit(pool, unit):
        if len(unit) == 1:
            return pool.submit(working, run_child, *args(unit[0], threads))
        from dlx.sweep.stack import run_stack

        return pool.submit(working, run_stack, *unit_args(unit, threads))

    stop = False
    while units and not stop:
        requeue, before = [], {c.run_id: stamp(c) for u in units for c in u}
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=warm_up) as pool:
            pending = {submit(pool, u): u for u in units}
            while pending:
                try:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    _stop_pool(pool, pending)
                    raise
                for fut in finished:
                    unit = pending.pop(fut)
                    if fut.cancelled():
                        continue
                    try:
                        got = fut.result()
                        got = {unit[0].run_id: got} if len(unit) == 1 else _by_id(unit, got, sweep_dir)
                    except Exception as err:  # the pool broke: this unit's worker, or another, died
                        fresh = [c for c in unit if stamp(c) == before[c.run_id]]
                        if isinstance(err, BrokenProcessPool) and fresh:
                            requeue.append(fresh)  # never started: not their fault
                        if isinstance(err, BrokenProcessPool) and len(fresh) == len(unit):
                            continue
                        unit = [c for c in unit if not isinstance(err, BrokenProcessPool) or c not in fresh]
                        got = {c.run_id: _worker_died(sweep_dir, c, config, err) for c in unit}
                    for c in unit:
                        statuses[c.run_id] = got[c.run_id]
                        if statuses[c.run_id] != LEASED:
                            report.finished(c, statuses[c.run_id])
                    if "interrupted" in got.values():  # Ctrl-C reached the child before this process
                        # (a busy parent runs its handler late): stop as the inline path does, not "failed"
                        _stop_pool(pool, pending)
                        raise KeyboardInterrupt
                    if fail_fast and "failed" in got.values() and not stop:
                        stop = True  # cancel what has not started; record what is running as it ends
                        for f in [f for f in pending if f.cancel()]:
                            pending.pop(f)
        if stop:
            return
        if sum(map(len, requeue)) == sum(map(len, units)):  # no child even started: the pool cannot run
            for c in [c for u in requeue for c in u]:
                statuses[c.run_id] = _worker_died(sweep_dir, c, config, RuntimeError("no worker started"))
                report.finished(c, statuses[c.run_id])
            return
        units = requeue

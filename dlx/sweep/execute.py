"""Run a sweep's children: inline (this process), a local process pool, or a SLURM job array
(dlx/sweep/slurm.py). A child whose run directory
already says completed/diverged is skipped, so re-running a sweep finishes only what is missing.
A failing child is recorded as 'failed' and the sweep goes on (unless fail_fast)."""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import status as run_status

DONE = ("completed", "diverged")
LAUNCHERS = ("inline", "local", "slurm")


def child_dir(sweep_dir: Path, child) -> Path:
    return Path(sweep_dir) / "runs" / child.run_id


def run_child(config: str, overrides: list[str], run_dir: str, threads: int | None = None,
              kind: str = "train") -> str:
    """Run one child here (a train run, or another registered kind such as a baseline fit) and return its
    status; failures are recorded in its summary.json, not raised."""
    from dlx import threads as thread_rule
    from dlx.config import compose
    from dlx.experiments import get
    from dlx.locks import Claimed
    from dlx.runs import Run

    if threads:  # this worker's share of the cores: trainer.threads=auto stays within it
        os.environ[thread_rule.CAP_ENV] = str(threads)
        thread_rule.apply(threads)
    exp = get(kind)
    d = Path(run_dir)
    if kind == "train" and (d / "checkpoint.pt").is_file() and run_status(d) not in DONE:
        overrides = [*overrides, "trainer.resume=true"]  # a child that died: continue, do not start over
    run = Run(d, exp.name, extra={"config": config})
    try:  # claim the child, then mark it running: a worker that dies from here on killed a started child
        run.open()
    except Claimed:
        return "claimed"  # another process (a second invocation of this sweep) is training it
    if run_status(d) in DONE:  # finished by that other process between our listing and our claim
        run.claim.release()
        return run_status(d)
    run.summary("running")
    try:
        with run.recording():
            cfg = compose(config, overrides)
            run.config = (cfg, overrides)
            run.save_config(cfg, overrides)
            run.start_tracking()
            exp.run(cfg, run)
    except KeyboardInterrupt:
        raise
    except Exception:  # one bad child must not sink the sweep; its summary says why
        pass
    return run_status(Path(run_dir)) or "failed"


def warm_up() -> None:
    """A pool worker imports what every child needs before its first child starts, so that child's
    wall time is not inflated by seconds of imports the others do not pay."""
    import dlx.build  # noqa: F401  (torch, data, models, tasks)
    import dlx.experiments.train.experiment  # noqa: F401
    import dlx.train  # noqa: F401
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
            workers: int = 1, fail_fast: bool = False, progress: str = "auto") -> dict[str, str]:
    """Run every child not yet done; returns {run_id: status} for all children ('submitted' for
    children handed to SLURM with launcher.detach=true). `launcher` is a name or the launcher config."""
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
        elif launcher == "inline" or workers == 1 or len(todo) <= 1:
            for c in todo:
                statuses[c.run_id] = run_child(*args(c))
                if statuses[c.run_id] != "claimed":  # claimed elsewhere: counted when it is done there
                    report.finished(c, statuses[c.run_id])
                if statuses[c.run_id] == "interrupted":  # Ctrl-C stopped the child cleanly: stop the sweep
                    raise KeyboardInterrupt
                if fail_fast and statuses[c.run_id] == "failed":
                    break
        else:
            _pool(todo, args, statuses, report, sweep_dir, config, workers, fail_fast)
        _wait_for_others(children, statuses, args, sweep_dir, report)
    finally:
        report.close()
    return statuses


def _wait_for_others(children, statuses: dict, args, sweep_dir: Path, report, poll: float = 2.0) -> None:
    """Children another invocation of this sweep claimed: wait until they are done there, or take them
    over (and resume them from their checkpoint) if that process is gone."""
    from dlx.locks import alive, read

    waiting = [c for c in children if statuses.get(c.run_id) == "claimed"]
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
                if statuses[c.run_id] == "claimed":  # a third process was quicker
                    still.append(c)
                    continue
            report.finished(c, statuses[c.run_id])
        waiting = still


def _pool(todo, args, statuses, report, sweep_dir, config, workers: int, fail_fast: bool) -> None:
    """Children in a spawn process pool. A worker that dies (e.g. killed for memory) breaks the pool:
    the children that were running are recorded as failed, the ones that never started go to a fresh
    pool (unless nothing started at all, which would only repeat)."""
    from dlx.threads import free_cores

    threads = max(1, free_cores()[0] // workers)

    def stamp(c):  # a child that starts rewrites its summary ('running'), so an unchanged one never ran
        path = child_dir(sweep_dir, c) / "summary.json"
        return path.stat().st_mtime_ns if path.is_file() else None

    stop = False
    while todo and not stop:
        requeue, before = [], {c.run_id: stamp(c) for c in todo}
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=warm_up) as pool:
            pending = {pool.submit(run_child, *args(c, threads)): c for c in todo}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    c = pending.pop(fut)
                    if fut.cancelled():
                        continue
                    try:
                        statuses[c.run_id] = fut.result()
                    except Exception as err:  # the pool broke: this child's worker, or another, died
                        if isinstance(err, BrokenProcessPool) and stamp(c) == before[c.run_id]:
                            requeue.append(c)  # never started: not its fault
                            continue
                        statuses[c.run_id] = _worker_died(sweep_dir, c, config, err)
                    if statuses[c.run_id] != "claimed":
                        report.finished(c, statuses[c.run_id])
                    if fail_fast and statuses[c.run_id] == "failed" and not stop:
                        stop = True  # cancel what has not started; record what is running as it ends
                        for f in [f for f in pending if f.cancel()]:
                            pending.pop(f)
        if stop:
            return
        if len(requeue) == len(todo):  # no child even started: the pool itself cannot run
            for c in requeue:
                statuses[c.run_id] = _worker_died(sweep_dir, c, config, RuntimeError("no worker started"))
                report.finished(c, statuses[c.run_id])
            return
        todo = requeue

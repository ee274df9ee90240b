"""SLURM job arrays through submitit. The children's run directories stay the source of truth: a job
only runs `run_child`, which writes summary.json like any other launcher, so `dlx status` and resume
work the same whether a sweep ran in a pool or on a cluster.

`jobs.json` maps each child submitted last to its job id; `.submitit/dlx-jobs.json` also keeps the
executor (slurm or local) and every job id each child was ever submitted as, so `dlx status` can tell a
child whose job left the queue without a result (`lost`) from one still queued. The queue is read with
`squeue`, which asks slurmctld directly: submitit's own job states come from `sacct`, which needs
accounting storage (slurmdbd) that small clusters often lack."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from dlx.errors import DlxError
from dlx.queue import ENDED, queue_states
from dlx.runs import read_json, write_json

JOBS = "jobs.json"
HISTORY = ".submitit/dlx-jobs.json"


def executor(sweep_dir: Path, cfg):
    try:
        import submitit
    except ImportError:
        raise DlxError("launcher=slurm needs submitit (pip install submitit)") from None
    cluster = cfg.get("cluster", "auto")
    if cluster not in ("auto", "slurm", "local"):
        raise DlxError(f"launcher.cluster must be auto, slurm or local, got '{cluster}'")
    ex = submitit.AutoExecutor(folder=str(Path(sweep_dir) / ".submitit"),
                               cluster=None if cluster == "auto" else cluster)
    params = {"name": f"dlx-{Path(sweep_dir).name}", "timeout_min": int(cfg.get("time_min", 240)),
              "gpus_per_node": int(cfg.get("gpus_per_node", 0)),
              "cpus_per_task": int(cfg.get("cpus_per_task", 4)), "mem_gb": float(cfg.get("mem_gb", 16)),
              "slurm_array_parallelism": int(cfg.get("array_parallelism", 64))}
    if cfg.get("partition"):
        params["slurm_partition"] = str(cfg.partition)
    ex.update_parameters(**params)
    return ex


def submit(todo, args, sweep_dir: Path, cfg) -> list:
    """Submit one array job for the children in `todo`; `args(child)` gives run_child's arguments."""
    from dlx.sweep.child import run_child

    ex = executor(sweep_dir, cfg)
    columns = list(zip(*[args(c, int(cfg.get("cpus_per_task", 4))) for c in todo], strict=True))
    jobs = ex.map_array(run_child, *columns)
    if ex.cluster == "slurm":
        _watch_with_squeue(jobs)
    ids = {c.run_id: str(j.job_id) for c, j in zip(todo, jobs, strict=True)}
    record(sweep_dir, ex.cluster, ids)
    write_json(Path(sweep_dir) / JOBS, ids)
    return jobs


def record(sweep_dir: Path, cluster: str, ids: dict[str, str]) -> None:
    """Add this submission to the history: a child re-submitted while its old job still runs keeps both."""
    path = Path(sweep_dir) / HISTORY
    old = _read(path) or {}
    jobs = {k: list(v) for k, v in (old.get("jobs") or {}).items() if isinstance(v, list)}
    for run_id, job_id in ids.items():
        jobs[run_id] = [*[j for j in jobs.get(run_id, []) if j != job_id], job_id]
    write_json(path, {"cluster": cluster, "jobs": jobs})


def _read(path: Path) -> dict | None:
    try:
        data = read_json(path)
    except DlxError:
        return None
    return data if isinstance(data, dict) else None


def submitted(sweep_dir: Path, cfg=None) -> tuple[str | None, dict[str, list[str]]]:
    """(cluster, {run_id: [job ids]}) of a sweep submitted through this launcher; (None, {}) if none was.
    A sweep from before the history was kept has only jobs.json: its cluster follows submitit's rule for
    launcher.cluster=auto (slurm where srun exists)."""
    history = _read(Path(sweep_dir) / HISTORY)
    if history and isinstance(history.get("jobs"), dict):
        return history.get("cluster"), {k: [str(j) for j in v] for k, v in history["jobs"].items()}
    jobs = _read(Path(sweep_dir) / JOBS)
    if not jobs:
        return None, {}
    cluster = cfg.get("cluster", "auto") if cfg is not None else "auto"
    if cluster == "auto":
        cluster = "slurm" if shutil.which("srun") else "local"
    return cluster, {k: [str(v)] for k, v in jobs.items()}


def queued(cluster: str | None, job_ids) -> set[str] | None:
    """Which of `job_ids` are still in the queue (pending, running, completing, held...); None when that
    cannot be known right now (squeue missing or failing, an unknown executor) - never a guess."""
    job_ids = {str(j) for j in job_ids}
    if not job_ids:
        return set()
    if cluster == "local":  # submitit's local executor: a job is a process on this machine
        from dlx.locks import alive

        return {j for j in job_ids if j.isdigit() and alive({"host": socket.gethostname(), "pid": int(j)})}
    states = queue_states(job_ids) if cluster == "slurm" else None
    if states is None:
        return None
    return {j for j in job_ids if j in states and states[j] not in ENDED}


def _watch_with_squeue(jobs) -> None:
    """submitit learns a SLURM job's state from sacct, which fails without accounting storage: a job that
    ended without a result (scancel, time limit) would then look unfinished forever, and every poll warns.
    The foreground sweep's jobs ask squeue instead; a job squeue no longer lists has ended."""
    try:
        from submitit.slurm.slurm import SlurmInfoWatcher
    except ImportError:
        return

    class QueueWatcher(SlurmInfoWatcher):
        def is_done(self, job_id: str, mode: str = "standard") -> bool:  # SUSPENDED, held...: not done
            return self.get_state(job_id, mode=mode) in (*ENDED, "LEFT_QUEUE")

        def update(self) -> None:
            todo = self._registered - self._finished
            if not todo:
                return
            self._num_calls += 1
            states = queue_states(todo)
            if states is not None:
                self._info_dict.update({j: {"JobID": j, "State": states.get(j, "LEFT_QUEUE")} for j in todo})
            self._last_status_check = time.time()
            self._finished |= {j for j in todo if self.is_done(j, mode="cache")}

    watcher = QueueWatcher(delay_s=60)
    for job in jobs:
        job.watcher = watcher


def lost(sweep_dir: Path, children, statuses: dict, cfg=None) -> set[str] | None:
    """Run ids of the children without a result (no summary, or one still saying 'running') none of whose
    jobs is in the queue any more: cancelled, timed out, killed with their node, or never started before
    the array was cancelled. A child whose lease holder still runs on this machine is not lost. None when
    the queue cannot be read (nothing is called lost then)."""
    from dlx.locks import alive, read
    from dlx.runs import status

    cluster, jobs = submitted(sweep_dir, cfg)
    open_ = [c.run_id for c in children if statuses.get(c.run_id) in (None, "running") and jobs.get(c.run_id)]
    if not open_:
        return set()
    still = queued(cluster, {j for r in open_ for j in jobs[r]})
    if still is None:
        return None
    here = socket.gethostname()
    out = set()
    for run_id in open_:
        if any(j in still for j in jobs[run_id]):
            continue
        d = Path(sweep_dir) / "runs" / run_id
        if status(d) not in (None, "running"):  # it finished between reading its status and the queue
            continue
        owner = read(d)
        if owner and owner.get("host") == here and alive(owner):
            continue
        out.add(run_id)
    return out

"""SLURM job arrays through submitit. The children's run directories stay the source of truth: a job
only runs `run_child`, which writes summary.json like any other launcher, so `dlx status` and resume
work the same whether a sweep ran in a pool or on a cluster."""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import write_json


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
    from dlx.sweep.execute import run_child

    ex = executor(sweep_dir, cfg)
    columns = list(zip(*[args(c, int(cfg.get("cpus_per_task", 4))) for c in todo], strict=True))
    jobs = ex.map_array(run_child, *columns)
    write_json(Path(sweep_dir) / "jobs.json", {c.run_id: j.job_id for c, j in zip(todo, jobs, strict=True)})
    return jobs

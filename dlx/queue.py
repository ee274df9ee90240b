"""What the SLURM queue says of jobs (squeue): the one low-level question both the leases (dlx/locks.py:
is an owner's job still queued?) and the SLURM launcher (dlx/sweep/slurm.py: is a child lost?) ask."""

from __future__ import annotations

import subprocess

# squeue's %T for a job that is over (its processes are gone); any other state, e.g. PENDING, RUNNING,
# COMPLETING (processes still being killed), SUSPENDED, REQUEUE_HOLD, SPECIAL_EXIT, is still in the queue
ENDED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                   "DEADLINE", "OUT_OF_MEMORY", "REVOKED"})


def queue_states(job_ids) -> dict[str, str] | None:
    """{job id: state} for those of `job_ids` slurmctld still knows (ended ones stay known for MinJobAge,
    5 minutes by default); None when squeue cannot answer (missing, the controller unreachable)."""
    bases = sorted({str(j).split("_")[0] for j in job_ids})
    if not bases:
        return {}
    cmd = ["squeue", "--noheader", "--array", "--states=all", "--format=%i %T", f"--jobs={','.join(bases)}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:  # every id asked for is unknown (purged after MinJobAge): none is queued
        return {} if "invalid job id" in out.stderr.lower() else None
    return dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)


def job_queued(job_id: str) -> bool | None:
    """Is this SLURM job still in the queue? None when squeue cannot tell (never a guess)."""
    states = queue_states([job_id])
    if states is None:
        return None
    return str(job_id) in states and states[str(job_id)] not in ENDED

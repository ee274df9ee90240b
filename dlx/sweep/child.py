"""One sweep child's life: lease its directory, re-read its status under the lease, compose and record its
config, then run its registered kind (a train run, a baseline fit, a paper's own child) through the kind's
``run`` hook. A stack (dlx/sweep/stack.py) opens each member the same way (``open_child``)."""

from __future__ import annotations

import os
from pathlib import Path

from dlx.runs import status as run_status

DONE = ("completed", "diverged")
LEASED = "leased"  # the status of a child another process holds: it is counted when it is done there


def open_child(config: str, overrides: list[str], run_dir: Path, kind: str = "train"):
    """(Run, cfg) of a child this process now holds and will run, or (None, status) when it will not: leased
    by another process, or finished by one between our listing and our lease. A train child that left a
    checkpoint resumes from it. From here on a failure is recorded in the child's summary.json."""
    from dlx.config import compose
    from dlx.locks import Leased
    from dlx.runs import Run

    d = Path(run_dir)
    run = Run(d, kind, extra={"config": config})
    try:  # the lease first, then the status: a child another invocation finished is never trained again
        run.open()
    except Leased:
        return None, LEASED
    if run_status(d) in DONE:
        run.lease.release()
        return None, run_status(d)
    if kind == "train" and (d / "checkpoint.pt").is_file():  # a child that died: continue, not start over
        overrides = [*overrides, "trainer.resume=true"]
    run.summary("running")
    with run.recording(keep_open=True):
        cfg = compose(config, overrides)
        run.config = (cfg, overrides)
        run.save_config(cfg, overrides)
        run.start_tracking()
    return run, cfg


def run_child(config: str, overrides: list[str], run_dir: str, threads: int | None = None,
              kind: str = "train") -> str:
    """Run one child here and return its status; failures are recorded in its summary.json, not raised
    (one bad child must not sink the sweep)."""
    from dlx import threads as thread_rule
    from dlx.registry import get

    if threads:  # this worker's share of the cores: trainer.threads=auto stays within it
        os.environ[thread_rule.CAP_ENV] = str(threads)
        thread_rule.apply(threads)
    exp = get(kind)
    try:
        run, cfg = open_child(config, list(overrides), Path(run_dir), exp.name)
        if run is None:
            return cfg
        with run.recording():
            exp.run(cfg, run)
    except KeyboardInterrupt:
        raise
    except Exception:  # recorded by run.recording()
        pass
    return run_status(Path(run_dir)) or "failed"

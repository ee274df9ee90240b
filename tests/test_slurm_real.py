"""launcher=slurm against the scheduler: which children's jobs are still queued (squeue) and which left the
queue without a result ('lost'), tested everywhere with a fake squeue; then a real SLURM, when one answers
(scripts/slurm-local.sh starts a one-node cluster): a job array in the foreground, --detach + dlx status,
and scancel of an array with a running and a never-started child, which `dlx status` calls lost (exit 1)
and a re-run with the same --name resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from dlx import queue
from dlx.sweep import slurm
from dlx.sweep.driver import sweep_status

FIXED = ["trainer=quick", "trainer.threads=1", "data.n_train=100"]


# ---- without a cluster: the queue as squeue reports it, faked ----

def _squeue(monkeypatch, rc=0, stdout="", stderr="", raises=None):
    calls = []

    def run(cmd, **kw):
        calls.append(cmd)
        if raises:
            raise raises
        return subprocess.CompletedProcess(cmd, rc, stdout, stderr)

    monkeypatch.setattr(queue.subprocess, "run", run)
    return calls


def test_queued_reads_squeue_states(monkeypatch):
    calls = _squeue(monkeypatch, stdout="7_2 PENDING\n7_0 RUNNING\n7_1 COMPLETING\n7_3 CANCELLED\n"
                                        "7_5 TIMEOUT\n9 SUSPENDED\n")
    ids = {"7_0", "7_1", "7_2", "7_3", "7_4", "7_5", "9"}
    assert slurm.queued("slurm", ids) == {"7_0", "7_1", "7_2", "9"}  # 7_4: no longer known at all
    (cmd,) = calls
    assert cmd[0] == "squeue" and "--jobs=7,9" in cmd and "--array" in cmd and "--states=all" in cmd


@pytest.mark.parametrize("how, expected", [
    ({"rc": 1, "stderr": "slurm_load_jobs error: Invalid job id specified\n"}, set()),  # all purged
    ({"rc": 1, "stderr": "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"},
     None),
    ({"raises": FileNotFoundError("squeue")}, None),
    ({"raises": subprocess.TimeoutExpired("squeue", 60)}, None),
])
def test_queued_never_guesses(monkeypatch, how, expected):
    _squeue(monkeypatch, **how)
    assert slurm.queued("slurm", {"7_0"}) == expected


def test_queued_on_submitits_local_executor_asks_for_the_process():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    assert slurm.queued("local", {str(os.getpid()), dead}) == {str(os.getpid())}
    assert slurm.queued(None, {"1"}) is None  # an executor it does not know: no answer, never 'lost'


def test_foreground_jobs_learn_their_state_from_squeue(monkeypatch):
    """Without accounting, sacct fails: a cancelled job must still end the foreground sweep's wait."""
    pytest.importorskip("submitit")
    states = {"7_0": "RUNNING", "7_1": "PENDING"}
    monkeypatch.setattr(slurm, "queue_states", lambda ids: dict(states))
    jobs = [SimpleNamespace(job_id=j) for j in ("7_0", "7_1", "7_2")]
    slurm._watch_with_squeue(jobs)
    w = jobs[0].watcher
    assert all(j.watcher is w for j in jobs)
    assert [w.is_done(j.job_id, mode="force") for j in jobs] == [False, False, True]  # 7_2 left the queue
    states.update({"7_0": "CANCELLED", "7_1": "SUSPENDED"})
    time.sleep(0.01)  # submitit ignores a forced update within 1 ms of the last
    assert [w.is_done(j.job_id, mode="force") for j in jobs] == [True, False, True]


def test_a_sweep_submitted_before_the_history_was_kept_reads_jobs_json(tmp_path):
    (tmp_path / "jobs.json").write_text(json.dumps({"a": "7_0", "b": 8}))
    assert slurm.submitted(tmp_path, {"cluster": "local"}) == ("local", {"a": ["7_0"], "b": ["8"]})
    assert slurm.submitted(tmp_path / "none") == (None, {})


class _Executor:
    """slurm.executor's stand-in: map_array hands out array-task ids without submitting anything."""

    cluster = "slurm"

    def __init__(self):
        self.arrays = []

    def map_array(self, fn, *columns):
        base = 100 + len(self.arrays)
        self.arrays.append([Path(d).name for d in columns[2]])
        return [SimpleNamespace(job_id=f"{base}_{i}") for i in range(len(columns[0]))]


def test_status_calls_a_child_lost_only_once_its_job_left_the_queue(run_cli, tmp_path, monkeypatch):
    ex = _Executor()
    monkeypatch.setattr(slurm, "executor", lambda sweep_dir, cfg: ex)
    queue = {"states": {}}
    monkeypatch.setattr(slurm, "queue_states", lambda ids: queue["states"])
    args = ["sweep", "grid", "model.width=4,8,16", *FIXED, "launcher=slurm", "--detach",
            "--out", str(tmp_path), "--name", "s"]
    rc, _, err = run_cli(*args)
    assert rc == 0, err
    d = tmp_path / "sweep" / "s"
    a, b, c = ex.arrays[0]
    assert json.loads((d / "jobs.json").read_text()) == {a: "100_0", b: "100_1", c: "100_2"}

    def status():
        rc, _, err = run_cli("status", str(d))
        frame, summary = sweep_status(d)  # the table dlx status printed, as data
        return rc, dict(zip(frame.run_id, frame.status, strict=True)), summary, err

    queue["states"] = {"100_0": "RUNNING", "100_1": "PENDING", "100_2": "PENDING"}
    rc, table, summary, _ = status()
    assert rc == 0 and set(table.values()) == {"pending"} and summary["status"] == "running"

    queue["states"] = None  # squeue cannot answer: nothing is called lost
    rc, table, _, _ = status()
    assert rc == 0 and "lost" not in table.values()

    # a started child (its summary says running) whose job ended, and one cancelled before it started,
    # while the third still runs: both are lost, but the sweep waits for the third
    (d / "runs" / a).mkdir(parents=True)
    (d / "runs" / a / "summary.json").write_text(json.dumps({"kind": "train", "status": "running"}))
    queue["states"] = {"100_0": "CANCELLED", "100_2": "RUNNING"}
    rc, table, summary, _ = status()
    assert rc == 0 and table == {a: "lost", b: "lost", c: "pending"} and summary["status"] == "running"

    # the job left the queue, but the child's lease holder still runs here: not lost (yet)
    (d / "runs" / a / ".lease").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    rc, table, _, _ = status()
    assert table[a] == "running"
    (d / "runs" / a / ".lease").unlink()

    # nothing of the sweep is queued any more: failed, exit 1, the lost children named, the re-run hint
    queue["states"] = {}
    rc, table, summary, err = status()
    assert rc == 1 and set(table.values()) == {"lost"}
    assert summary["status"] == "failed" and summary["statuses"] == {"lost": 3}
    assert "3 of 3 children lost" in summary["error"] and "re-run with --name s" in err
    assert status()[2] == summary  # asking again changes nothing

    # the re-run submits the lost children again (a started one resumes from its checkpoint in run_child)
    rc, _, err = run_cli(*args)
    assert rc == 0, err
    assert sorted(ex.arrays[1]) == sorted([a, b, c])
    history = json.loads((d / ".submitit" / "dlx-jobs.json").read_text())
    assert history == {"cluster": "slurm", "jobs": {a: ["100_0", "101_0"], b: ["100_1", "101_1"],
                                                    c: ["100_2", "101_2"]}}
    queue["states"] = {"100_0": "CANCELLED", "101_0": "RUNNING", "101_1": "PENDING", "101_2": "PENDING"}
    rc, table, summary, _ = status()
    assert rc == 0 and "lost" not in table.values() and summary["status"] == "running"


def test_a_detached_sweep_whose_children_all_ended_is_collected_even_if_one_failed(run_cli, tmp_path,
                                                                                   monkeypatch):
    ex = _Executor()
    monkeypatch.setattr(slurm, "executor", lambda sweep_dir, cfg: ex)
    monkeypatch.setattr(slurm, "queue_states", lambda ids: {})
    rc, _, err = run_cli("sweep", "grid", "model.width=4,8", *FIXED, "launcher=slurm", "--detach",
                         "--out", str(tmp_path), "--name", "s")
    assert rc == 0, err
    d = tmp_path / "sweep" / "s"
    for run_id, status in zip(ex.arrays[0], ("failed", "diverged"), strict=True):
        error = "RuntimeError: boom" if status == "failed" else None
        (d / "runs" / run_id).mkdir(parents=True)
        (d / "runs" / run_id / "summary.json").write_text(json.dumps({"kind": "train", "status": status,
                                                                      "error": error}))
    rc, out, err = run_cli("status", str(d))
    assert rc == 1 and "boom" in err and "re-run with --name s" in err
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "failed" and "error" not in summary
    assert sorted(pd.read_csv(d / "results.csv").status) == ["diverged", "failed"]


# ---- a real SLURM ----

def _cluster() -> str | None:
    """Why the real-SLURM tests cannot run here, or None when they can."""
    if not (shutil.which("sbatch") and shutil.which("sinfo") and shutil.which("squeue")):
        return "no SLURM here (sbatch not on PATH); scripts/slurm-local.sh starts a one-node cluster"
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%n %t"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.SubprocessError) as err:
        return f"sinfo does not answer: {err}"
    if out.returncode != 0:
        return f"sinfo does not answer: {(out.stderr.strip().splitlines() or ['?'])[0]}"
    nodes = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)
    if len(nodes) != 1:  # the tests' directories are local temporary folders, which jobs must see
        return f"these tests need a one-node SLURM (like scripts/slurm-local.sh's), sinfo lists {len(nodes)}"
    (state,) = nodes.values()
    if state.rstrip("*~#") not in ("idle", "mix", "mixed", "alloc", "allocated", "comp", "completing"):
        return f"the SLURM node is {state}, not taking jobs"
    return None


WHY = _cluster()
real = pytest.mark.skipif(WHY is not None, reason=str(WHY))
ON_SLURM = ["launcher=slurm", "launcher.cluster=slurm", "launcher.cpus_per_task=1", "launcher.mem_gb=1",
            "launcher.time_min=10"]


@pytest.fixture
def cancel_leftovers(tmp_path):
    """Whatever a failing test leaves queued is cancelled."""
    yield
    ids = {j.split("_")[0] for p in tmp_path.glob("sweep/*/jobs.json")
           for j in json.loads(p.read_text()).values()}
    if ids:
        subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=30)


def _wait(what, predicate, timeout: float, poll: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@real
def test_real_array_in_the_foreground(tmp_path, cancel_leftovers):
    args = ["sweep", "grid", "model.width=4,8", *FIXED, "trainer.steps=3", *ON_SLURM, "--out", str(tmp_path),
            "--name", "fg"]
    p = subprocess.run([sys.executable, "-m", "dlx", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    d = tmp_path / "sweep" / "fg"
    res = pd.read_csv(d / "results.csv")
    assert len(res) == 2 and (res.status == "completed").all()
    ids = json.loads((d / "jobs.json").read_text())
    assert len({j.split("_")[0] for j in ids.values()}) == 1 and all("_" in j for j in ids.values())  # array
    assert json.loads((d / ".submitit" / "dlx-jobs.json").read_text())["cluster"] == "slurm"
    assert "sacct" not in p.stderr  # the jobs' state came from squeue, with or without accounting


def _hold_all_cores_but_one() -> str | None:
    """A sleeping job on every core of the node but one: the sweep's first task runs, the second waits
    in the queue (CR_Core allocates whole cores). None when the node has a single core."""
    out = subprocess.run(["sinfo", "--noheader", "--format=%c %Z"], capture_output=True, text=True,
                         timeout=20).stdout
    cpus, threads = (int(v) for v in out.split()[:2])
    if cpus - threads <= 0:
        return None
    cmd = ["sbatch", "--parsable", "--job-name=dlx-test-hold", f"--cpus-per-task={cpus - threads}",
           "--mem=64M", "--time=10", "--output=/dev/null", "--wrap=sleep 600"]
    job = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    job = job.split(";")[0]
    _wait("the holding job to start", lambda: slurm.queue_states([job]).get(job) == "RUNNING", 60)
    return job


@real
def test_real_detach_scancel_lost_then_rerun_resumes(run_cli, tmp_path, cancel_leftovers):
    hold = _hold_all_cores_but_one()
    try:  # the long child runs, the short one waits in the queue behind the holding job
        args = ["sweep", "grid", "trainer.steps=1000,3", *FIXED, "trainer.checkpoint_every=1", *ON_SLURM,
                "--detach", "--out", str(tmp_path), "--name", "det"]
        rc, _, err = run_cli(*args)
        assert rc == 0, err
        d = tmp_path / "sweep" / "det"
        ids = json.loads((d / "jobs.json").read_text())
        long, short = sorted(ids, key=lambda r: not r.startswith("steps1000"))
        rc, _, err = run_cli("status", str(d))
        assert rc == 0 and "lost" not in set(sweep_status(d)[0].status), err  # queued or running: not lost

        _wait("the long child's first checkpoint", (d / "runs" / long / "checkpoint.pt").is_file, 150)
        assert not (d / "runs" / short / "summary.json").exists()  # never started
        subprocess.run(["scancel", ids[long].split("_")[0]], check=True, timeout=30)  # the whole array
    finally:
        if hold:
            subprocess.run(["scancel", hold], timeout=30)

    def ended():
        rc, out, err = run_cli("status", str(d))
        return (rc, out, err) if rc != 0 else None

    rc, out, err = _wait("dlx status to report the cancelled array", ended, 60, poll=1)
    assert rc == 1 and "lost: 2" in out, out + err
    assert "re-run with --name det" in err
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["statuses"] == {"lost": 2}
    assert json.loads((d / "runs" / long / "summary.json").read_text())["status"] == "running"  # killed

    rc, _, err = run_cli(*args)  # the same command again: both go back to the queue
    assert rc == 0, err

    def collected():
        rc, out, err = run_cli("status", str(d))
        assert rc == 0, out + err
        return json.loads((d / "summary.json").read_text())["status"] == "completed"

    _wait("the re-run to be collected by dlx status", collected, 240, poll=2)
    res = pd.read_csv(d / "results.csv")
    assert len(res) == 2 and (res.status == "completed").all()
    resumed = json.loads((d / "runs" / long / "summary.json").read_text())
    assert resumed["resumed"] is True and resumed["invocations"] == 2 and resumed["steps"] == 1000

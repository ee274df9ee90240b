"""Two processes, one run directory: claims share a sweep's children, recover from a dead owner, and refuse
a second writer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from dlx.locks import LEASE_FILE, Lease, Leased, alive, read


def _dlx(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "dlx", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_a_claim_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    with Lease(tmp_path):
        owner = read(tmp_path)
        assert owner["pid"] == os.getpid() and alive(owner)
        with pytest.raises(Leased, match=f"pid {os.getpid()}"):
            Lease(tmp_path).acquire()
    assert not (tmp_path / LEASE_FILE).exists()  # released
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / LEASE_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead),
                                              "expires": time.time() + 600, "token": "old"}))
    with Lease(tmp_path) as c:  # same host, pid gone: taken over
        assert read(tmp_path)["token"] == c.token
    far = {"host": "another-node", "pid": 1, "token": "far"}
    (tmp_path / LEASE_FILE).write_text(json.dumps({**far, "expires": time.time() + 600}))
    with pytest.raises(Leased):  # another host, lease still running
        Lease(tmp_path).acquire()
    (tmp_path / LEASE_FILE).write_text(json.dumps({**far, "expires": time.time() - 3600}))
    with Lease(tmp_path):  # its lease expired (beyond the clock-skew allowance)
        assert read(tmp_path)["host"] == socket.gethostname()


def test_two_invocations_share_a_sweep_and_train_each_child_once(tmp_path):
    args = ["sweep", "grid", "model.width=4,5,6,7", "trainer=quick", "trainer.steps=150", "trainer.threads=1",
            "data.n_train=100", "launcher=inline", "--out", str(tmp_path)]
    a = _dlx(*args, "--name", "s", cwd=tmp_path)
    time.sleep(1.0)
    b = _dlx(*args, "--name", "s", cwd=tmp_path)
    for p in (a, b):
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    runs = tmp_path / "sweep" / "s" / "runs"
    summaries = [json.loads(p.read_text()) for p in runs.glob("*/summary.json")]
    assert len(summaries) == 4 and all(s["status"] == "completed" for s in summaries)
    assert all("invocations" not in s for s in summaries)  # each child trained exactly once
    assert not list(runs.glob(f"*/{LEASE_FILE}"))
    alone = _dlx(*args, "--name", "alone", cwd=tmp_path)
    assert alone.wait(timeout=600) == 0
    cols = ["width", "test_error", "train_error", "test_loss"]
    shared = pd.read_csv(tmp_path / "sweep" / "s" / "results.csv")[cols].sort_values("width")
    single = pd.read_csv(tmp_path / "sweep" / "alone" / "results.csv")[cols].sort_values("width")
    pd.testing.assert_frame_equal(shared.reset_index(drop=True), single.reset_index(drop=True))


def test_a_killed_owner_is_recovered_and_its_child_resumed_from_the_checkpoint(tmp_path):
    args = ["sweep", "grid", "model.width=8,9", "trainer=quick", "trainer.epochs=120", "trainer.threads=1",
            "trainer.checkpoint_every=3", "data.n_train=100", "launcher=inline", "--out", str(tmp_path),
            "--name", "k"]
    victim = _dlx(*args, cwd=tmp_path)
    runs = tmp_path / "sweep" / "k" / "runs"
    deadline = time.time() + 120
    # the two widths of one MLP train as one (zero-padded) stack: both are leased and checkpointed
    while time.time() < deadline and len(list(runs.glob("*/checkpoint.pt"))) < 2:
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # kill -9 mid-stack: the claims stay behind
    victim.wait()
    leased = [p.parent for p in runs.glob(f"*/{LEASE_FILE}")]
    assert len(leased) == 2
    rescuer = _dlx(*args, cwd=tmp_path)
    out, err = rescuer.communicate(timeout=600)
    assert rescuer.returncode == 0, err
    for child in leased:
        s = json.loads((child / "summary.json").read_text())
        assert s["status"] == "completed" and s["resumed"] and s["invocations"] == 2
        assert s["epochs"] == 120  # (stacked again, or alone if killed between the two members' saves)


def test_a_second_writer_of_a_running_train_directory_is_refused(tmp_path):
    args = ["train", "trainer.epochs=400", "trainer.threads=1", "trainer.checkpoint_every=2",
            "--out", str(tmp_path), "--name", "r"]
    first = _dlx(*args, cwd=tmp_path)
    ckpt = tmp_path / "train" / "r" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not ckpt.is_file():
        time.sleep(0.05)
    second = _dlx(*args, "trainer.resume=true", cwd=tmp_path)
    out, err = second.communicate(timeout=120)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert second.returncode == 2 and "is being written by pid" in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_claim_from_a_slurm_job_that_left_the_queue_is_dead(monkeypatch):
    import dlx.queue as queue

    owner = {"host": "node-7", "pid": 1, "expires": time.time() + 600, "slurm_job": "123_4"}
    monkeypatch.setattr(queue, "queue_states", lambda ids: {"123_4": "RUNNING"})
    assert alive(owner)  # still queued or running
    monkeypatch.setattr(queue, "queue_states", lambda ids: {"123_4": "CANCELLED"})
    assert not alive(owner)  # cancelled: dead at once, not after its lease
    monkeypatch.setattr(queue, "queue_states", lambda ids: {})
    assert not alive(owner)  # purged from the queue: gone
    monkeypatch.setattr(queue, "queue_states", lambda ids: None)
    assert alive(owner)  # squeue cannot tell: the lease decides


def _race(config, overrides, run_dir, stacked):
    """One contender: a stale listing said the child was pending; run it as a sweep worker would."""
    from dlx.sweep.child import run_child
    from dlx.sweep.stack import run_stack

    if stacked:
        return run_stack(config, [(overrides, run_dir, "train")])[run_dir]
    return run_child(config, overrides, run_dir)


@pytest.mark.parametrize("stacked", [False, True])
def test_two_workers_racing_for_one_child_train_it_once_every_time(tmp_path, stacked):
    """The race of two invocations of one sweep, repeated: both saw the child pending, both go for it; the
    lease covers the child's whole life and its status is read again under it, so exactly one trains it,
    and a child already finished is never trained again (before, a stacked member was retrained)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    overrides = ["trainer=quick", "trainer.epochs=1", "trainer.threads=1", "data.n_train=100",
                 "trainer.progress=none"]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        for i in range(12):
            d = str(tmp_path / f"child{i}")
            got = sorted(f.result() for f in [pool.submit(_race, "train", overrides, d, stacked)
                                              for _ in range(2)])
            assert got in (["completed", "leased"], ["completed", "completed"]), got
            s = json.loads((tmp_path / f"child{i}" / "summary.json").read_text())
            assert s["status"] == "completed" and "invocations" not in s, s  # trained exactly once
            # a third contender with the same stale listing finds it finished and leaves it alone
            assert pool.submit(_race, "train", overrides, d, stacked).result() == "completed"
            assert "invocations" not in json.loads((tmp_path / f"child{i}" / "summary.json").read_text())

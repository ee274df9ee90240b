"""Ctrl-C at a step boundary (dlx/train/interrupt.py): the terminal's SIGINT asks a run to stop, a second
SIGINT a moment later stops it at once, and a sweep's stop request to its workers (STOP) never counts as
that second Ctrl-C, however late a loaded machine delivers it."""

from __future__ import annotations

import os
import signal
import sys
import time
from types import SimpleNamespace

import pytest

from dlx.train.interrupt import REPEAT_S, STOP, graceful, stop_at_once_outside_training

pytestmark = pytest.mark.skipif(STOP is None, reason="no SIGUSR1 on this platform")


def _after(sig, seconds):
    time.sleep(seconds)
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs in the main thread between bytecodes


def test_a_late_stop_request_after_ctrl_c_never_stops_a_run_before_it_saves():
    state = SimpleNamespace(interrupt=False)
    with graceful(state):
        _after(signal.SIGINT, 0)
        _after(STOP, REPEAT_S + 0.3)  # the forwarded request, late: before, a second SIGINT raised here
    assert state.interrupt


def test_a_second_ctrl_c_a_moment_later_stops_at_once():
    state = SimpleNamespace(interrupt=False)
    with pytest.raises(KeyboardInterrupt), graceful(state):
        _after(signal.SIGINT, 0)
        _after(signal.SIGINT, REPEAT_S + 0.3)


def test_outside_training_a_stop_request_stops_like_ctrl_c_and_does_not_kill_the_worker():
    previous = signal.getsignal(STOP)
    try:
        stop_at_once_outside_training()
        with pytest.raises(KeyboardInterrupt):
            _after(STOP, 0)
        state = SimpleNamespace(interrupt=False)
        with graceful(state):  # inside training it asks for a stop at the next step boundary
            _after(STOP, 0)
        assert state.interrupt and signal.getsignal(STOP) is not signal.SIG_DFL
    finally:
        signal.signal(STOP, previous)


def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def _running(pid: int) -> bool:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_pool_workers_die_with_a_killed_sweep(tmp_path):
    """kill -9 of a sweep leaves no orphan worker training on (holding its child's lease and the cores
    the resume needs)."""
    import subprocess
    from pathlib import Path

    args = ["model.width=4,8", "data=digits", "trainer.epochs=400", "sweep.workers=2", "sweep.stack=false",
            "trainer.threads=1", "--out", str(tmp_path), "--name", "k"]
    proc = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", "grid", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    runs = tmp_path / "sweep" / "k" / "runs"
    while not (runs.is_dir() and any('"running"' in p.read_text() for p in runs.glob("*/summary.json"))):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.2)
    workers = [p for p in _children(proc.pid)
               if "spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while any(_running(p) for p in workers):
        assert time.time() < deadline, "a pool worker outlived its sweep"
        time.sleep(0.2)

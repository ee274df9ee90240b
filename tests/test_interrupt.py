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
    from dlx.train.interrupt import working

    previous = signal.getsignal(STOP)
    try:
        stop_at_once_outside_training()
        with pytest.raises(KeyboardInterrupt):  # a child running, outside training: it stops at once
            working(_after, STOP, 0)
        _after(STOP, 0)  # an idle worker (its child done, waiting for the next): nothing to stop
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


def test_ctrl_c_between_epochs_resumes_with_the_same_batch_order(tmp_path):
    """A Ctrl-C that lands after an epoch's batch order is drawn but before its first step: the resume
    draws the same order again, so the run matches one never interrupted (it drew a new one, and the
    Ctrl-C-and-resume user test failed under load)."""
    import pandas as pd

    from dlx.build import build
    from dlx.config import compose
    from dlx.train.callbacks import Callback, Checkpointer
    from dlx.train.loop import fit

    cfg = compose("train", ["data=digits", "model.width=16", "trainer.epochs=4", "trainer.threads=1",
                            "trainer.progress=none"])
    seen = SimpleNamespace(state=None, passes=0)

    class Grab(Callback):
        def on_start(self, state):
            seen.state = state

    def train(callbacks, resume=None, cut_at=None):
        p = build(cfg)
        real = p.data.train.batches

        def batches(bs, shuffle=False, generator=None):
            seen.passes += bool(shuffle)  # a training pass (evaluation reads the split unshuffled)
            cut = shuffle and seen.passes == cut_at
            for batch in real(bs, shuffle=shuffle, generator=generator):  # the order is drawn here
                if cut:
                    seen.state.interrupt = True  # Ctrl-C between the draw and the first step
                    cut = False
                yield batch

        p.data.train.batches = batches
        seen.passes = 0
        return fit(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer, seed=0,
                   callbacks=[Grab(), *callbacks], resume_from=resume)

    full = train([])
    ckpt = tmp_path / "c.pt"
    cut = train([Checkpointer(ckpt)], cut_at=3)
    assert cut.status == "interrupted" and cut.epoch == 2
    rest = train([Checkpointer(ckpt)], resume=ckpt)
    assert rest.status == "completed"
    pd.testing.assert_frame_equal(pd.DataFrame(rest.rows).drop(columns="wall_s"),
                                  pd.DataFrame(full.rows).drop(columns="wall_s"))


def test_a_child_already_stopping_ignores_a_later_stop_request():
    """The sweep's stop request can land after a child's training stopped on Ctrl-C and before it saved:
    it must not cut the checkpoint (the child is stopping already)."""
    from dlx.train.interrupt import working

    previous = signal.getsignal(STOP)
    try:
        stop_at_once_outside_training()

        def child():
            state = SimpleNamespace(interrupt=False)
            with graceful(state):
                _after(STOP, 0)  # the stop request during training: stop at the step boundary
            _after(STOP, 0)  # another, while the child saves: ignored
            return state.interrupt

        assert working(child) is True
    finally:
        signal.signal(STOP, previous)

"""Ctrl-C at a step boundary (dlx/train/interrupt.py): the terminal's SIGINT asks a run to stop, a second
SIGINT a moment later stops it at once, and a sweep's stop request to its workers (STOP) never counts as
that second Ctrl-C, however late a loaded machine delivers it."""

from __future__ import annotations

import os
import signal
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

"""Ctrl-C during training stops at the next step boundary instead of mid-update, so the run can save a
consistent checkpoint and its metrics so far; a second Ctrl-C interrupts at once.

Only where it is safe: the main thread of a process (a sweep's pool worker included: its parent waits for
it to save, see dlx/sweep/execute.py), outside DDP (ranks that stopped at different steps would wait on
each other forever). Elsewhere Ctrl-C raises as usual."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

REPEAT_S = 1.0  # a second SIGINT sooner than this is the same Ctrl-C


@contextmanager
def graceful(state):
    from dlx.train import distributed

    if threading.current_thread() is not threading.main_thread() or distributed.active():
        yield
        return

    first = []

    def request_stop(signum, frame):
        # the same Ctrl-C can arrive twice within a moment (the terminal's, and a sweep forwarding it to
        # its workers): only a second one a second later means "stop now"
        now = time.monotonic()
        if first and now - first[0] > REPEAT_S:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        first[:] = first or [now]
        state.interrupt = True

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

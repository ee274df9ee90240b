"""Ctrl-C during training stops at the next step boundary instead of mid-update, so the run can save a
consistent checkpoint and its metrics so far; a second Ctrl-C interrupts at once.

Only where it is safe: the main thread of a process that is not a pool worker, outside DDP (ranks that
stopped at different steps would wait on each other forever). Elsewhere Ctrl-C raises as usual."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from contextlib import contextmanager


@contextmanager
def graceful(state):
    from dlx.train import distributed

    if (threading.current_thread() is not threading.main_thread() or distributed.active()
            or multiprocessing.parent_process() is not None):
        yield
        return

    def request_stop(signum, frame):
        state.interrupt = True
        signal.signal(signal.SIGINT, previous)  # the next Ctrl-C is not deferred

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

"""Ctrl-C during training stops at the next step boundary instead of mid-update, so the run can save a
consistent checkpoint and its metrics so far; a second Ctrl-C interrupts at once.

Only where it is safe: the main thread of a process (a sweep's pool worker included: its parent waits for
it to save, see dlx/sweep/execute.py), outside DDP (ranks that stopped at different steps would wait on
each other forever). Elsewhere Ctrl-C raises as usual.

A sweep asks its pool workers to stop with ``STOP`` (SIGUSR1), not a second SIGINT: the workers already got
the terminal's SIGINT, and a forwarded SIGINT that a loaded machine delivers a second later would read as
the user's second Ctrl-C and stop a child before it saved its checkpoint."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

REPEAT_S = 1.0  # a second SIGINT sooner than this is the same Ctrl-C
STOP = getattr(signal, "SIGUSR1", None)  # a sweep's request to its workers: stop at the next step boundary


_WORKING = [False]  # a pool worker is running a child (not idle, waiting for the next one)


def stop_at_once_outside_training() -> None:
    """In a pool worker (its initializer): a STOP that arrives outside training (building, evaluating,
    writing) stops the child at once, as Ctrl-C would, instead of the signal's default of killing the
    worker (which the pool would report as a crash). A worker with no child running (it finished its
    child and waits for the next) has nothing to stop: the request is ignored there."""
    if STOP is None:
        return

    def stop_now(signum, frame):
        if _WORKING[0]:
            raise KeyboardInterrupt

    signal.signal(STOP, stop_now)


def working(fn, *args):
    """``fn(*args)`` in a pool worker, marked as running a child for the sweep's stop request (the pool's
    entry point: ``pool.submit(working, run_child, ...)``)."""
    _WORKING[0] = True
    try:
        return fn(*args)
    finally:
        _WORKING[0] = False


@contextmanager
def graceful(state):
    from dlx.train import distributed

    if threading.current_thread() is not threading.main_thread() or distributed.active():
        yield
        return

    first = []

    def request_stop(signum, frame):
        # one Ctrl-C can reach a process twice within a moment: only a second one a second later means
        # "stop now"
        now = time.monotonic()
        if first and now - first[0] > REPEAT_S:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        first[:] = first or [now]
        state.interrupt = True

    def request_stop_from_sweep(signum, frame):  # STOP never escalates: it is not the user's second Ctrl-C
        state.interrupt = True

    previous = signal.signal(signal.SIGINT, request_stop)
    previous_stop = signal.signal(STOP, request_stop_from_sweep) if STOP is not None else None
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if STOP is not None:
            signal.signal(STOP, previous_stop)
        if getattr(state, "interrupt", False):  # stopping already: a later STOP must not cut the checkpoint
            _WORKING[0] = False                 # and summary this child now writes (the worker ignores it)

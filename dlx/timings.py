"""Where a command's wall time goes: the process's start-up before dlx's entry point, then named phases.

The CLI marks its entry (``mark_entry``); a sweep records its phases with ``Phases`` and writes them to its
summary.json as ``timings`` (seconds): ``startup`` (interpreter and imports until dlx's entry point; absent
when dlx runs inside another Python process, as in tests), ``setup`` (composing the config, opening the run),
the sweep's own phases (``planning``, ``tuning``, ``children``, ``analysis``, ``figures``), ``other`` (the
rest) and ``total``; ``children_wall_sum`` is the sum of the children's own recorded wall times, so
``total - children_wall_sum`` is what the sweep adds to its children's work.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_ENTRY: dict = {}


def process_started() -> float | None:
    """The wall-clock time this process started (Linux /proc), None where that cannot be read."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks after boot
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def mark_entry(own_process: bool) -> None:
    """dlx's entry point was reached now; ``own_process``: dlx is the program (not called from Python)."""
    _ENTRY.clear()
    _ENTRY["at"] = time.time()
    started = process_started() if own_process else None
    if started is not None and 0 <= _ENTRY["at"] - started < 600:
        _ENTRY["startup"] = _ENTRY["at"] - started


class Phases:
    """Named phases of one command, timed as they happen (``with phases("children"): ...``)."""

    def __init__(self):
        self.t0 = time.time()
        self.seconds: dict[str, float] = {}
        # the first command of the process counts from dlx's entry; a later one (a control after its
        # default, the papers of `reproduce all`) from its own start
        self.first = not _ENTRY.get("used")
        _ENTRY["used"] = True

    def __call__(self, name: str):
        return _Phase(self, name)

    def record(self, **extra) -> dict:
        """The ``timings`` block: start-up and setup before this object, its phases, the rest, the total."""
        now = time.time()
        entry = _ENTRY.get("at", self.t0) if self.first else self.t0
        out = {}
        if "startup" in _ENTRY and self.first:
            out["startup"] = _ENTRY["startup"]
        out["setup"] = max(self.t0 - entry, 0.0)
        out.update(self.seconds)
        total = now - entry + out.get("startup", 0.0)
        out["other"] = max(total - sum(out.values()), 0.0)
        out["total"] = total
        out.update(extra)
        return {k: round(v, 3) for k, v in out.items()}


class _Phase:
    def __init__(self, phases: Phases, name: str):
        self.phases, self.name = phases, name

    def __enter__(self):
        self.t = time.time()
        return self

    def __exit__(self, *exc):
        self.phases.seconds[self.name] = self.phases.seconds.get(self.name, 0.0) + time.time() - self.t

"""The one progress display of dlx: a rich bar on a terminal, one plain line per update when stderr is
not a terminal (logs, CI, SLURM), nothing with mode ``none``. Training epochs, sweep children and the
papers of `dlx reproduce all` use it; a line opened while another is live joins the same display (rich
allows one live display at a time), so nested progress shows as stacked bars."""

from __future__ import annotations

import sys
import time

MODES = ("auto", "rich", "plain", "none")
_live: list = []  # the rich Progress shown now, and how many lines use it


class ProgressLine:
    def __init__(self, label: str, total: int, unit: str, mode: str = "auto", done: int = 0):
        if mode not in MODES:
            from dlx.errors import DlxError

            raise DlxError(f"progress mode must be one of {', '.join(MODES)}, got '{mode}'")
        if mode == "auto":
            mode = "rich" if sys.stderr.isatty() else "plain"
        self.label, self.total, self.unit, self.mode = label, int(total), unit, mode
        self.t0 = time.perf_counter()
        if mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            if not _live:
                bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TextColumn("{task.fields[unit]}"), TimeElapsedColumn(),
                               TextColumn("{task.fields[info]}"), transient=False)
                bar.start()
                _live[:] = [bar, 0]
            self.bar = _live[0]
            _live[1] += 1
            self.task = self.bar.add_task(label, total=self.total, completed=done, info="", unit=unit)

    def update(self, done: int, info: str = "", line: bool = True) -> None:
        """Move to ``done``; ``line=False`` only moves the bar (no plain line for this update)."""
        if self.mode == "rich":
            self.bar.update(self.task, completed=done, **({"info": info} if info else {}))
        elif self.mode == "plain" and line:
            self.say(f"{self.label} [{done}/{self.total} {self.unit}] {info}".rstrip()
                     + f"  ({time.perf_counter() - self.t0:.1f}s)")

    def say(self, text: str) -> None:
        """A message outside the bar (skipped with mode none)."""
        if self.mode == "rich":
            self.bar.console.print(text, markup=False, highlight=False)
        elif self.mode == "plain":
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.mode != "rich" or not _live:
            return
        _live[1] -= 1
        if _live[1] <= 0:
            self.bar.stop()
            _live.clear()
        else:  # an inner line (a paper's sweep): its finished bar makes way for the next one
            self.bar.remove_task(self.task)

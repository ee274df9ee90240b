"""What a report is made of, read from run directories alone (nothing is re-run): each paper run's
summary, claims, main table and figures, and the environment it ran in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlx.errors import DlxError

MAX_ROWS = 40  # rows of a paper's results table shown in the report (the CSV has them all)


@dataclass
class PaperRun:
    name: str  # the registered experiment
    title: str
    cite: str
    dir: Path
    summary: dict
    claims: list[dict]
    table: object | None  # DataFrame: results.csv, its registered columns first
    figures: list[Path] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.summary.get("status"))


def find_runs(paths) -> list[Path]:
    """Paper run directories under ``paths``: each path is a run directory (summary.json of a paper kind)
    or a folder searched at any depth (e.g. the tree of `dlx reproduce all`, or outputs/); sweep children
    (``runs/``) and negative controls (``control/``) belong to their paper run and are not listed."""
    from dlx.registry import find
    from dlx.runs import read_summary

    found: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise DlxError(f"{p} is not a directory (give run directories or a folder of them)")
        here = [p] if (p / "summary.json").is_file() else _run_dirs(p)
        kinds = {d: find(read_summary(d).get("kind", "")) for d in here}
        runs = [d for d, e in kinds.items() if e is not None and e.paper]
        if not runs:
            other = sorted({str(read_summary(d).get("kind")) for d, e in kinds.items() if e is not None})
            if other:
                raise DlxError(f"{p} holds {', '.join(other)} runs but no paper run: dlx report gathers the "
                               "claims of paper runs (dlx reproduce <paper>); dlx status shows the others")
            raise DlxError(f"{p} holds no paper run (a dlx reproduce run directory, or a folder of them)")
        found += [d for d in runs if d not in found]
    return found


def _run_dirs(root: Path) -> list[Path]:
    """Run directories below ``root`` at any depth, not descending into a run (its children and control
    are its own)."""
    out: list[Path] = []
    for d in sorted(q for q in root.iterdir() if q.is_dir() and not q.name.startswith(".")):
        if (d / "summary.json").is_file():
            out.append(d)
        else:
            out += _run_dirs(d)
    return out


def load(run_dir: Path) -> PaperRun:
    from dlx.plots import read_table
    from dlx.registry import get
    from dlx.runs import read_summary

    summary = read_summary(run_dir)
    exp = get(summary.get("kind"))
    table = read_table(run_dir / exp.report_table)
    if table is not None:
        # the terminal table's columns pick from results.csv; a paper's own report table is shown whole
        own = exp.report_table != "results.csv"
        first = [] if own else [c for c in exp.table_columns if c in table.columns]
        table = table[first or list(table.columns)].head(MAX_ROWS)
    return PaperRun(exp.name, exp.title, exp.cite, Path(run_dir), summary, list(summary.get("claims") or []),
                    table, sorted(Path(run_dir).glob("*.png")))


def environment(runs: list[PaperRun]) -> dict:
    """The environment of the first run (dlx, git sha, torch, device, threads) and each run's wall time."""
    env = dict(runs[0].summary.get("env", {})) if runs else {}
    return {"env": {k: env.get(k) for k in ("dlx", "git", "torch", "python", "device", "threads", "platform")
                    if env.get(k) is not None},
            "wall_s": {r.name: r.summary.get("wall_s") for r in runs}}

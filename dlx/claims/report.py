"""`dlx report`: every paper's claims checked, in one report a person can open (report.md and a
self-contained report.html), built from run directories alone; `dlx reproduce all` runs the papers first."""

from __future__ import annotations

from pathlib import Path


def build_report(paths, out_dir: Path) -> tuple[Path, Path, list]:
    """Find the paper runs under ``paths``, write report.md and report.html into ``out_dir``."""
    from dlx.claims.collect import environment, find_runs, load
    from dlx.claims.render import markdown, page
    from dlx.runs import write_text

    out_dir = Path(out_dir)
    runs = [load(d) for d in find_runs(paths)]
    env = environment(runs)
    md = write_text(out_dir / "report.md", markdown(runs, env, out_dir))
    page_path = write_text(out_dir / "report.html", page(runs, env, out_dir))
    return md, page_path, runs

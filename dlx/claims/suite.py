"""`dlx reproduce all`: every registered paper's default in one output tree, resumable by --name (finished
papers are skipped, a sweep that stopped resumes its children), then the report."""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError


def select(only: str | None, skip: str | None) -> list:
    """The registered papers to run: all of them, or --only a,b, minus --skip c (CLI spellings allowed)."""
    from dlx.registry import canonical, papers

    known = {e.name: e for e in papers()}

    def names(text, flag):
        out = [canonical(n.strip()) for n in str(text).split(",") if n.strip()]
        bad = [n for n in out if n not in known]
        if bad:
            raise DlxError(f"unknown paper '{bad[0]}' in {flag} (choose from: "
                           f"{', '.join(n.replace('_', '-') for n in known)})")
        return out

    chosen = names(only, "--only") if only else list(known)
    dropped = set(names(skip, "--skip")) if skip else set()
    chosen = [n for n in chosen if n not in dropped]
    if not chosen:
        raise DlxError("--only/--skip leave no paper to run")
    return [known[n] for n in chosen]


def run_paper(exp, run_dir: Path, say) -> dict:
    """One paper's default into ``run_dir`` (resumed if it exists); its failure is recorded, not raised."""
    from dlx.config import compose
    from dlx.launch import launch_recorded
    from dlx.runs import Run

    cfg = compose(exp.name, [])
    run = Run(run_dir, exp.name, config=(cfg, []), exclusive=exp.sweep is None,
              on_open=lambda d: say(f"{exp.name}: {d}"))
    # the paper is part of the report whatever happens: its directory records how it ended, and one paper
    # failing does not stop the others
    return launch_recorded(exp, cfg, run, say, exp.name)


def run_all(root: Path, papers: list, say, controls: bool = False) -> list[dict]:
    """Each selected paper into root/<paper>/; finished ones (status completed) are skipped. With
    ``controls``, each paper's negative control follows its default (root/<paper>/control/, also skipped
    when finished) and its verdicts are written beside the default's claims."""
    from dlx.claims.controls import has_control, merge, run_control
    from dlx.progress import ProgressLine
    from dlx.runs import read_summary

    line = ProgressLine("papers", len(papers), "papers")
    summaries = []
    try:
        for i, exp in enumerate(papers):
            d = Path(root) / exp.name
            done = read_summary(d).get("status") == "completed"
            s = read_summary(d) if done else run_paper(exp, d, line.say)
            if controls and has_control(exp) and s.get("status") == "completed":
                run_control(exp, d, [], line.say)
                s = merge(d, exp)
            summaries.append(s)
            line.update(i + 1, f"{exp.name}: {'skipped, already ' if done else ''}{s.get('status')}")
    finally:
        line.close()
    return summaries

"""A paper's claims as data: what the paper says, what dlx measured, the rule it is held to, the verdict.

Every paper experiment writes ``claims`` (a list of these records) into its summary.json; its headline and
the report (`dlx report`) are derived from them, never written separately."""

from __future__ import annotations

VERDICTS = ("holds", "fails", "not shown")


def claim(id: str, text: str, measured, rule: str, paper: str = "", holds: bool | None = None,
          why: str = "") -> dict:
    """One claim record. ``holds=None`` means the run could not show it (``why`` says what would)."""
    verdict = "not shown" if holds is None else ("holds" if holds else "fails")
    if verdict != "holds" and not why and holds is None:
        raise ValueError(f"claim {id}: 'not shown' needs a reason")
    return {"id": id, "claim": text, "measured": measured, "rule": rule, "paper": paper, "verdict": verdict,
            "why": why}


def count(claims: list[dict]) -> dict[str, int]:
    return {v: sum(c.get("verdict") == v for c in claims) for v in VERDICTS}


def headline(name: str, summary: dict) -> str:
    """'<name>: 2 of 3 claims hold — <id>: <measured> (holds); ...', from summary['claims']."""
    claims = summary.get("claims") or []
    if not claims:
        return f"{name}: {summary.get('status')}"
    n = count(claims)
    head = f"{name}: {n['holds']} of {len(claims)} claims hold"
    if n["not shown"]:
        head += f" ({n['not shown']} not shown)"
    parts = [f"{c['id']}: {fmt(c.get('measured'))} ({c['verdict']})" for c in claims]
    return f"{head} — " + "; ".join(parts)


def fmt(measured) -> str:
    if measured is None:
        return "-"
    if isinstance(measured, float):
        return f"{measured:.4g}"
    if isinstance(measured, dict):
        return ", ".join(f"{k} {fmt(v)}" for k, v in measured.items() if v is not None)
    if isinstance(measured, (list, tuple)):
        return ", ".join(fmt(v) for v in measured)
    return str(measured)

"""A paper's claims as data: what the paper says, what dlx measured, the rule it is held to, the verdict.

Every paper experiment writes ``claims`` (a list of these records) into its summary.json; its headline and
the report (`dlx report`) are derived from them, never written separately.

Verdicts: holds | fails | inconclusive | not shown. A comparison over seeds, rounds or bootstrap samples is
decided by :func:`compare` on a 95% interval, never on two means: it holds when the whole interval clears
the rule's line, fails when the whole interval lies on the wrong side, and is inconclusive when it
straddles the line. A claim that also holds on its negative control (``control``, see controls.py) is
"built in": reported, but not counted as evidence.
"""

from __future__ import annotations

import math

VERDICTS = ("holds", "fails", "inconclusive", "not shown")
COUNTED = (*VERDICTS, "built in")  # what the report counts: a hold that also holds on its control is built in
DIRECTIONS = ("greater", "less", "within")
LEVEL = 0.95


def compare(a, b=None, *, direction: str = "greater", margin: float = 0.0, paired: bool = False,
            method: str = "t", level: float = LEVEL, seed: int = 0) -> dict:
    """Decide ``a`` against ``b`` (or ``a`` alone) on an interval. The one helper every comparison uses.

    The estimate is ``mean(a) - mean(b)`` (``mean(a)`` when ``b`` is None; ``mean(a - b)`` when paired).
    ``direction`` says what the claim asserts about it, with ``margin`` the line it must clear:

    * ``greater``: estimate > margin — holds when the interval's lower end is above the margin, fails when
      its upper end is below it;
    * ``less``: estimate < margin — holds when the upper end is below, fails when the lower end is above;
    * ``within``: |estimate| < margin — holds when the whole interval lies inside (-margin, margin), fails
      when it lies wholly outside.

    ``method``: ``t`` (Student t on the mean, Welch for two unpaired samples; a side with one value is
    taken as a constant), ``bootstrap`` (scipy's BCa bootstrap of the mean, 2,000 resamples, seeded; on a
    pair, of the difference of means), or ``percentile`` (``a`` already holds bootstrap replicates of the
    statistic: the interval is their central ``level`` quantiles). Fewer than two values in all gives no
    interval and the verdict "inconclusive".
    """
    import numpy as np

    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if method not in ("t", "bootstrap", "percentile"):
        raise ValueError(f"method must be t, bootstrap or percentile, got {method!r}")
    a = np.ravel(np.asarray(a, dtype=float))
    bb = None if b is None else np.ravel(np.asarray(b, dtype=float))
    if paired:  # a pair with a missing side (a failed seed) drops out as a pair
        if bb is None or len(bb) != len(a):
            raise ValueError("a paired comparison needs two samples of the same length")
        a, bb = a - bb, None
    a = a[np.isfinite(a)]
    bb = None if bb is None else bb[np.isfinite(bb)]
    n = len(a) + (0 if bb is None else len(bb))
    if len(a) == 0 or (bb is not None and len(bb) == 0):
        return _result(None, None, n, method, level, direction, margin, paired)
    est = float(a.mean() - (0.0 if bb is None else bb.mean()))
    ci = _interval(a, bb, method, level, seed)
    return _result(est, ci, n, method, level, direction, margin, paired)


def _interval(a, b, method: str, level: float, seed: int):
    import numpy as np
    from scipy import stats

    if method == "percentile":
        if b is not None or len(a) < 2:
            return None
        q = (1 - level) / 2
        return float(np.quantile(a, q)), float(np.quantile(a, 1 - q))
    if method == "bootstrap":
        if len(a) < 2 or (b is not None and len(b) < 2):
            return _interval(a, b, "t", level, seed)  # one value on a side: no resampling to do
        data = (a,) if b is None else (a, b)
        stat = (lambda x, axis: x.mean(axis=axis)) if b is None else \
            (lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis))
        if all(np.ptp(d) == 0 for d in data):
            v = float(stat(*data, axis=0))
            return v, v
        res = stats.bootstrap(data, stat, confidence_level=level, n_resamples=2000, method="BCa",
                              vectorized=True, rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # BCa degenerates on a few distinct values
            res = stats.bootstrap(data, stat, confidence_level=level, n_resamples=2000, method="percentile",
                                  vectorized=True, rng=np.random.default_rng(seed))
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        return lo, hi
    # t: one sample (or a side of one value, taken as a constant), else Welch's two-sample interval
    if b is not None and len(b) == 1:
        a, b = a - b[0], None
    if b is not None and len(a) == 1:
        a, b = a[0] - b, None
    if b is None:
        if len(a) < 2:
            return None
        mean, sd = float(a.mean()), float(a.std(ddof=1))
        if sd == 0:
            return mean, mean
        h = stats.t.ppf(0.5 + level / 2, len(a) - 1) * sd / math.sqrt(len(a))
        return mean - h, mean + h
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(a.mean() - b.mean())
    if va + vb == 0:
        return diff, diff
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    h = stats.t.ppf(0.5 + level / 2, dof) * math.sqrt(va + vb)
    return diff - h, diff + h


def _result(est, ci, n, method, level, direction, margin, paired) -> dict:
    margin = float(margin)
    if ci is None:
        verdict = "inconclusive"
    else:
        lo, hi = ci
        if direction == "greater":
            verdict = "holds" if lo > margin else "fails" if hi < margin else "inconclusive"
        elif direction == "less":
            verdict = "holds" if hi < margin else "fails" if lo > margin else "inconclusive"
        else:
            verdict = ("holds" if -margin < lo and hi < margin else
                       "fails" if lo >= margin or hi <= -margin else "inconclusive")
    return {"estimate": est, "ci": None if ci is None else [float(ci[0]), float(ci[1])], "n": int(n),
            "method": method, "level": level, "direction": direction, "margin": margin, "paired": paired,
            "verdict": verdict}


def rule_text(test: dict, what: str = "the difference", scale: float = 1.0, unit: str = "") -> str:
    """The rule of a comparison in words: '<what> > 0.05 on its 95% t interval'."""
    m = test["margin"] * scale
    line = {"greater": f"> {m:g}", "less": f"< {m:g}", "within": f"within ±{m:g}"}[test["direction"]]
    how = {"t": "t", "bootstrap": "bootstrap", "percentile": "bootstrap percentile"}[test["method"]]
    paired = "paired " if test.get("paired") else ""
    return f"{what} {line}{unit} on its {100 * test['level']:g}% {paired}{how} interval"


def claim(id: str, text: str, measured, rule: str, paper: str = "", holds: bool | None = None,
          why: str = "", test: dict | None = None, source: str = "paper", scale: float = 1.0) -> dict:
    """One claim record. A comparison passes ``test`` (from :func:`compare`): its verdict decides, and
    the record carries ``estimate``, ``ci`` and ``n`` (times ``scale``, e.g. 100 for points). Otherwise
    ``holds`` decides; ``holds=None`` means the run could not show it (``why`` says what would).
    ``source="dlx"`` marks a claim that is dlx's own check, not the paper's."""
    if source not in ("paper", "dlx"):
        raise ValueError(f"claim {id}: source must be 'paper' or 'dlx'")
    rec = {"id": id, "claim": text, "measured": measured, "rule": rule, "paper": paper, "source": source}
    if test is not None:
        verdict = test["verdict"]
        est, ci = test["estimate"], test["ci"]
        rec.update(estimate=None if est is None else round(est * scale, 6),
                   ci=None if ci is None else [round(ci[0] * scale, 6), round(ci[1] * scale, 6)],
                   n=test["n"], ci_method=test["method"])
        if verdict == "inconclusive" and not why:
            why = ("no interval: fewer than two values" if ci is None else
                   "the interval straddles the rule's line")
    else:
        verdict = "not shown" if holds is None else ("holds" if holds else "fails")
    if verdict == "not shown" and not why:
        raise ValueError(f"claim {id}: 'not shown' needs a reason")
    rec.update(verdict=verdict, why=why)
    return rec


def is_built_in(c: dict) -> bool:
    return c.get("verdict") == "holds" and c.get("control") == "holds"


def category(c: dict) -> str:
    """What the report counts a claim as: its verdict, or 'built in' for a hold its control shares."""
    return "built in" if is_built_in(c) else str(c.get("verdict"))


def count(claims: list[dict]) -> dict[str, int]:
    return {v: sum(category(c) == v for c in claims) for v in COUNTED}


def summary_line(n: dict[str, int]) -> str:
    """'52 claims: 30 hold, 12 fail, 4 inconclusive, 3 not shown, 3 built in'."""
    total = sum(n.values())
    return (f"{total} claims: {n['holds']} hold, {n['fails']} fail, {n['inconclusive']} inconclusive, "
            f"{n['not shown']} not shown, {n['built in']} built in")


def headline(name: str, summary: dict) -> str:
    """'<name>: 2 of 3 claims hold — <id>: <measured> (holds); ...', from summary['claims']."""
    claims = summary.get("claims") or []
    if not claims:
        return f"{name}: {summary.get('status')}"
    n = count(claims)
    head = f"{name}: {n['holds']} of {len(claims)} claims hold"
    extra = [f"{n[k]} {k}" for k in ("inconclusive", "not shown", "built in") if n[k]]
    if extra:
        head += f" ({', '.join(extra)})"
    return f"{head} — " + "; ".join(f"{c['id']}: {ours(c)} ({verdict_text(c)})" for c in claims)


def verdict_text(c: dict) -> str:
    v = category(c)
    if c.get("control") and v != "built in":
        v += f"; control {c['control']}"
    return v


def ours(c: dict) -> str:
    """The measured value, with the comparison's estimate and interval when there is one."""
    text = fmt(c.get("measured"))
    if c.get("ci") is not None:
        text += f"; est. {fmt(c.get('estimate'))} [{fmt(c['ci'][0])}, {fmt(c['ci'][1])}], n={c.get('n')}"
    elif c.get("n") is not None and c.get("estimate") is not None:
        text += f"; est. {fmt(c.get('estimate'))}, n={c.get('n')}, no interval"
    return text


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

"""The DeepState sweep's grid, its tables and the rules that turn them into the paper's claims.

Grid: every model in ``sweep.models`` x every training range in ``sweep.train_ranges``; the trained models
(deepstate, deepar) once per seed 0..sweep.seeds-1, the local baselines (deterministic) once. A child is a
``forecast`` run. Tables: ``results.csv`` (a row per child), ``table.csv`` (per model and training range:
seed mean and std of each metric). Claims are checked at ``deepstate.range`` (default: the shortest range).

:func:`claims` is a pure function of the per-child table (``results.csv``'s rows), the per-run recovery
medians and the config; every comparison in it is decided by ``dlx.claims.compare`` on the
per-seed values (paired by seed where both sides are trained models; a deterministic baseline is a
one-value side, i.e. a constant), and every threshold is a key of ``deepstate.rules``.
"""

from __future__ import annotations

import math

from dlx.errors import DlxError

TRAINED = ("deepstate", "deepar")
MODELS = ("deepstate", "deepar", "arima", "ets", "seasonal_naive")  # the order children run in: longest first
METRICS = ("ql50", "ql90", "mean_wql", "mase", "coverage", "loss")
LABELS = {"deepstate": "DeepState", "deepar": "DeepAR", "arima": "ARIMA", "ets": "ETS",
          "seasonal_naive": "seasonal naive"}


def grid(cfg) -> list[tuple[str, list, list[int]]]:
    """(model, training ranges, seeds) per model, validated."""
    from omegaconf import ListConfig

    from dlx.config import name_list, number

    sweep = cfg.sweep
    models = name_list(sweep.models, list(MODELS), "sweep.models", "model")
    if len(set(models)) != len(models):
        raise DlxError(f"sweep.models lists a model twice: {models}")
    ranges = list(sweep.train_ranges) if isinstance(sweep.train_ranges, (list, tuple, ListConfig)) else None
    if not ranges or any(isinstance(r, bool) or not isinstance(r, (int, str, type(None))) for r in ranges):
        raise DlxError(f"sweep.train_ranges must be a list of step counts or durations like 14D, got "
                       f"{sweep.train_ranges!r}")
    seeds = number(sweep.seeds, "sweep.seeds (seeds 0..N-1 of the trained models)", lo=1, integer=True)
    order = sorted(models, key=MODELS.index)
    return [(m, ranges, list(range(seeds)) if m in TRAINED else [0]) for m in order]


def _band(v, key: str, lo: float | None = 0.0) -> tuple[float, float]:
    from omegaconf import ListConfig

    from dlx.config import number

    if not isinstance(v, (list, tuple, ListConfig)) or len(v) != 2:
        raise DlxError(f"{key} must be [low, high], got {v!r}")
    a, b = number(v[0], f"{key}[0]", lo=lo), number(v[1], f"{key}[1]", lo=lo)
    if a >= b:
        raise DlxError(f"{key} must be [low, high] with low < high, got {list(v)}")
    return a, b


def check_analysis(a) -> None:
    from dlx.config import name_list, number

    r = a.rules
    _band(r.coverage, "deepstate.rules.coverage")
    number(r.coverage[1], "deepstate.rules.coverage[1]", hi=1)
    # beats_margin, efficiency_margin: the record's bounds (RULES in dlx/papers/deepstate), checked at launch
    name_list(r.baselines, [m for m in MODELS if m not in TRAINED], "deepstate.rules.baselines", "baseline")
    rec = r.recovery
    if _band(rec.sigma_ratio, "deepstate.rules.recovery.sigma_ratio")[0] <= 0:
        raise DlxError(f"deepstate.rules.recovery.sigma_ratio must be positive, got {list(rec.sigma_ratio)}")
    number(rec.daily_corr, "deepstate.rules.recovery.daily_corr", lo=-1, hi=1)
    number(rec.weekly_corr, "deepstate.rules.recovery.weekly_corr", lo=-1, hi=1)


def tidy(results, summaries: dict):
    """collect()'s frame + each child's summary -> a row per child with its training range in steps and
    days (from what the child recorded) and the test metrics without their ``test_`` prefix."""
    df = results.copy()
    df["range_steps"] = [summaries.get(r, {}).get("train_range") for r in df.run_id]
    per_day = {"H": 24.0, "D": 1.0}
    df["train_days"] = [(s / per_day[summaries[r]["freq"]]) if s is not None and
                        summaries.get(r, {}).get("freq") in per_day else None
                        for r, s in zip(df.run_id, df.range_steps, strict=True)]
    for m in METRICS:
        df[m] = df.get(f"test_{m}")
    return df


def table(df):
    """Per model and training range: seed mean and std of each metric, and the number of seeds."""
    import pandas as pd

    ok = df[df.status == "completed"]
    if not len(ok):
        return pd.DataFrame()
    cols = [m for m in METRICS if m in ok]
    g = ok.groupby(["model", "train_range", "range_steps"], sort=False)
    out = g[cols].mean()
    std = g[cols].std(ddof=0).add_suffix("_std")
    out = out.join(std).join(g.size().rename("seeds")).reset_index()
    if "train_days" in ok:
        out = out.merge(ok.groupby("train_range").train_days.first().reset_index(), on="train_range")
    out["order"] = out.model.map({m: i for i, m in enumerate(MODELS)})
    return out.sort_values(["order", "range_steps"]).drop(columns="order").reset_index(drop=True)


def _r(v, k: int = 4):
    return None if v is None or not math.isfinite(float(v)) else round(float(v), k)


def _done(df):
    return df[(df.status == "completed")] if "status" in df else df


def _values(df, model: str, steps, metric: str) -> dict:
    """{seed: value} of ``model`` at the training range ``steps`` (finite values of completed runs)."""
    g = _done(df)
    g = g[(g.model == model) & (g.range_steps == steps)]
    return {int(s): float(v) for s, v in zip(g.seed, g[metric], strict=True) if math.isfinite(float(v))}


def _paired(a: dict, b: dict) -> tuple[list, list]:
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


def _mean(v) -> float | None:
    v = list(v.values()) if isinstance(v, dict) else list(v)
    return sum(v) / len(v) if v else None


def _slack(t: dict) -> float:
    """How far a held test's interval clears its line (smaller = closer to failing)."""
    lo, hi = t["ci"]
    m = t["margin"]
    return {"greater": lo - m, "less": m - hi, "within": m - max(abs(lo), abs(hi))}[t["direction"]]


def all_of(tests: dict) -> tuple[str, dict]:
    """The part that decides a conjunction of compare() results: a failing one if any, else an
    inconclusive one, else the one whose interval clears its line by least -- its verdict is the
    conjunction's (holds only when every part holds)."""
    for verdict in ("fails", "inconclusive"):
        for k, t in tests.items():
            if t["verdict"] == verdict:
                return k, t
    return min(tests.items(), key=lambda kv: _slack(kv[1]))


def _ci(t: dict, k: int = 4):
    return {"estimate": _r(t["estimate"], k), "ci": None if t["ci"] is None else [_r(c, k) for c in t["ci"]],
            "n": t["n"], "verdict": t["verdict"]}


def claim_range(df, a) -> tuple[list, dict, object]:
    """(swept ranges in steps, steps -> label, the range the comparisons are checked at)."""
    steps = sorted(_done(df).range_steps.dropna().unique())
    label = dict(zip(df.range_steps, df.train_range, strict=False))
    if a.get("range") is None:
        return steps, label, steps[0] if steps else None
    chosen = [s for s in steps if str(label[s]) == str(a.get("range"))]
    if not chosen:
        raise DlxError(f"deepstate.range={a.range} is not one of the swept ranges "
                       f"({', '.join(str(label[s]) for s in steps)})")
    return steps, label, chosen[0]


PAPER_QL = {"ql50": "electricity, rolling 1-day forecasts: DeepState .083 vs ETS .101, ARIMA .154 (p50 QL)",
            "ql90": "electricity, rolling 1-day forecasts: DeepState .056 vs ETS .077, ARIMA .102 (p90 QL)"}
PAPER_AR = ("DeepState ahead of DeepAR when the training range is short; with all the electricity data "
            "DeepAR is ahead (p50 .075 vs .083)")


def claims(df, recovery, cfg) -> list[dict]:
    """The paper's claims on the per-child table ``df`` (columns model, train_range, range_steps, seed,
    status and the metrics), ``recovery`` (per DeepState run: sigma_ratio, daily_corr, weekly_corr, the
    medians over its series; None or empty when the panel has no ground truth) and ``cfg.deepstate``."""
    from dlx.claims import claim, compare, rule_text

    a = cfg.deepstate
    r = a.rules
    if df is None or not len(_done(df)):
        return []
    steps, label, at = claim_range(df, a)
    rng = label[at]
    out = []
    # 1-2: DeepState's p50 / p90 QL below every local baseline's at the claim range
    bases = list(r.baselines)
    m = float(r.beats_margin)
    for metric, q in (("ql50", "p50"), ("ql90", "p90")):
        ds = _values(df, "deepstate", at, metric)
        base = {b: _values(df, b, at, metric) for b in bases}
        measured = {"deepstate": _r(_mean(ds)), **{b: _r(_mean(v)) for b, v in base.items()}}
        names = ", ".join(LABELS[b] for b in bases)
        text = (f"DeepState's {q} quantile loss beats the local baselines ({names}) with little training "
                f"data (training range {rng}).")
        if not ds or not all(base.values()):
            out.append(claim(f"{q}_beats_baselines", text, measured, f"DeepState {metric} below each of "
                             f"{', '.join(bases)} at {rng}", PAPER_QL[metric], holds=None,
                             why="DeepState or a baseline (deepstate.rules.baselines) missing from the "
                                 "sweep"))
            continue
        best = min(bases, key=lambda b: _mean(base[b]))
        test = compare(list(ds.values()), list(base[best].values()), direction="less",
                       margin=-m if m else 0.0)
        measured["best_baseline"] = best
        out.append(claim(f"{q}_beats_baselines", text, measured,
                         rule_text(test, what=f"DeepState {metric} (per seed) − the best baseline's "
                                   f"({best}) at {rng}") + " (a deterministic baseline is a constant)",
                         PAPER_QL[metric], test=test))
    # 3: calibration of the p10-p90 band at every training range
    lo, hi = (float(v) for v in r.coverage)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    cov = {label[s]: _values(df, "deepstate", s, "coverage") for s in steps}
    text = "DeepState's p10-p90 band is calibrated (nominal 80%) at every training range."
    paper = "not reported as a number; the paper shows fan charts of its p10-p90 and p5-p95 bands"
    if not steps or not all(cov.values()):
        out.append(claim("coverage", text, {str(k): _r(_mean(v), 3) for k, v in cov.items()},
                         f"DeepState p10-p90 coverage within [{lo}, {hi}] at every range", paper, holds=None,
                         why="no completed DeepState run at some training range"))
    else:
        tests = {str(k): compare([c - mid for c in v.values()], direction="within", margin=half)
                 for k, v in cov.items()}
        key, test = all_of(tests)
        measured = {str(k): _r(_mean(v), 3) for k, v in cov.items()}
        measured["decided_by"] = key
        out.append(claim("coverage", text, measured,
                         rule_text(test, what=f"DeepState p10-p90 coverage (per seed) − {mid:g}") +
                         f", i.e. coverage inside [{lo:g}, {hi:g}], at every training range (the record's "
                         "interval: the range closest to failing)", paper, test=test))
    # 4: DeepState ahead of DeepAR at the claim range (paired by seed)
    ds, ar = _values(df, "deepstate", at, "ql50"), _values(df, "deepar", at, "ql50")
    x, y = _paired(ds, ar)
    text = f"With little data (training range {rng}) DeepState's p50 loss beats DeepAR's."
    measured = {"deepstate": _r(_mean(ds)), "deepar": _r(_mean(ar))}
    if not x:
        out.append(claim("beats_deepar", text, measured, f"DeepState ql50 − DeepAR ql50 < 0 at {rng}",
                         PAPER_AR, holds=None,
                         why="DeepState or DeepAR (with a shared seed) missing from the sweep"))
    else:
        test = compare(x, y, paired=True, direction="less")
        out.append(claim("beats_deepar", text, measured,
                         rule_text(test, what=f"DeepState ql50 − DeepAR ql50 at {rng}"), PAPER_AR, test=test))
    # 5: the edge over DeepAR shrinks as the training range grows (difference of differences, per seed)
    short, long_ = (steps[0], steps[-1]) if steps else (None, None)
    text = ("DeepState's edge over DeepAR is largest with the least data: the DeepState − DeepAR p50 loss "
            "difference is more favourable to DeepState at the shortest training range than at the longest.")
    edge = {}
    if short is not None and short != long_:
        for s in (short, long_):
            ds, ar = _values(df, "deepstate", s, "ql50"), _values(df, "deepar", s, "ql50")
            edge[s] = {k: ds[k] - ar[k] for k in sorted(set(ds) & set(ar))}
    seeds = sorted(set(edge.get(short, {})) & set(edge.get(long_, {}))) if edge else []
    if not seeds:
        out.append(claim("data_efficiency", text, None, "(DeepState − DeepAR ql50) at the shortest range "
                         "minus the same at the longest < 0", PAPER_AR, holds=None,
                         why="needs DeepState and DeepAR at two or more training ranges with shared seeds"))
    else:
        e = float(r.efficiency_margin)
        dd = [edge[short][k] - edge[long_][k] for k in seeds]
        test = compare(dd, direction="less", margin=-e if e else 0.0)
        measured = {f"edge_{label[s]}": _r(_mean(edge[s])) for s in (short, long_)}
        out.append(claim("data_efficiency", text, measured,
                         rule_text(test, what=f"(DeepState − DeepAR ql50 at {label[short]}) − (the same at "
                                   f"{label[long_]}), per seed"), PAPER_AR, test=test))
    # 6: dlx's sanity check of the known-ISSM panel
    rec = r.recovery
    paper_rec = "learned level and seasonal components are interpretable (the paper plots them over time)"
    text = ("On a panel drawn from a known ISSM, DeepState's learned components recover the truth: the noise "
            "scale and the daily and weekly patterns (dlx's check of the panel, not the paper's claim).")
    rows = [] if recovery is None else (recovery.to_dict("records") if hasattr(recovery, "to_dict")
                                        else list(recovery))
    rows = [x for x in rows if all(x.get(k) is not None and math.isfinite(float(x[k]))
                                   for k in ("sigma_ratio", "daily_corr", "weekly_corr"))]
    slo, shi = (float(v) for v in rec.sigma_ratio)
    rule = (f"learned/true σ inside [{slo:g}, {shi:g}], daily-pattern correlation > {rec.daily_corr} and "
            f"weekly > {rec.weekly_corr}, each on its 95% t interval over DeepState runs (per-run medians "
            "over series)")
    if not rows:
        out.append(claim("recovers_issm", text, None, rule, paper_rec, holds=None, source="dlx",
                         why="this panel has no ground truth (only the synthetic panels have)"))
    else:
        centre, width = math.log(math.sqrt(slo * shi)), math.log(math.sqrt(shi / slo))
        tests = {"sigma_ratio": compare([math.log(x["sigma_ratio"]) - centre for x in rows],
                                        direction="within", margin=width),
                 "daily_corr": compare([x["daily_corr"] for x in rows], direction="greater",
                                       margin=float(rec.daily_corr)),
                 "weekly_corr": compare([x["weekly_corr"] for x in rows], direction="greater",
                                        margin=float(rec.weekly_corr))}
        key, test = all_of(tests)
        measured = {k: _r(_mean([x[k] for x in rows]), 3) for k in tests}
        measured["decided_by"] = key
        out.append(claim("recovers_issm", text, measured, rule + f" (the record's interval: {key}"
                         + (", as log ratio − log of the band's centre)" if key == "sigma_ratio" else ")"),
                         paper_rec, test=test, source="dlx"))
    return out

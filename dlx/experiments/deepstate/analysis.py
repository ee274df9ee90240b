"""The DeepState sweep's grid, its tables and the rules that turn them into the paper's claims.

Grid: every model in ``sweep.models`` x every training range in ``sweep.train_ranges``; the trained models
(deepstate, deepar) once per seed 0..sweep.seeds-1, the local baselines (deterministic) once. A child is a
``forecast`` run. Tables: ``results.csv`` (a row per child), ``table.csv`` (per model and training range:
seed mean and std of each metric). Claims are checked at ``analysis.range`` (default: the shortest range).
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


def check_analysis(a) -> None:
    from dlx.config import number

    lo, hi = (list(a.coverage) + [None, None])[:2]
    number(lo, "analysis.coverage[0]", lo=0, hi=1)
    number(hi, "analysis.coverage[1]", lo=0, hi=1)
    if lo >= hi:
        raise DlxError(f"analysis.coverage must be [low, high] with low < high, got {list(a.coverage)}")
    r = a.recovery
    number(r.sigma_ratio[0], "analysis.recovery.sigma_ratio[0]", lo=0)
    number(r.sigma_ratio[1], "analysis.recovery.sigma_ratio[1]", lo=0)
    number(r.daily_corr, "analysis.recovery.daily_corr", lo=-1, hi=1)
    number(r.weekly_corr, "analysis.recovery.weekly_corr", lo=-1, hi=1)


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


def _at(tab, model: str, steps, metric: str):
    row = tab[(tab.model == model) & (tab.range_steps == steps)]
    return None if not len(row) or not math.isfinite(row[metric].iloc[0]) else float(row[metric].iloc[0])


def _r(v, k: int = 4):
    return None if v is None else round(float(v), k)


def claims(tab, recovery: dict | None, cfg) -> list[dict]:
    """The paper's claims checked on the table (each record says its rule)."""
    from dlx.experiments.claims import claim

    a = cfg.analysis
    if not len(tab):
        return []
    steps = sorted(tab.range_steps.dropna().unique())
    label = dict(zip(tab.range_steps, tab.train_range, strict=False))
    chosen = [s for s in steps if str(label[s]) == str(a.get("range"))]
    at = steps[0] if a.get("range") is None else (chosen[0] if chosen else None)
    if at is None:
        raise DlxError(f"analysis.range={a.range} is not one of the swept ranges "
                       f"({', '.join(map(str, label.values()))})")
    rng = label[at]
    out = []
    paper = {"ql50": "electricity, rolling 1-day forecasts: DeepState .083 vs ETS .101, ARIMA .154 (p50 QL)",
             "ql90": "electricity, rolling 1-day forecasts: DeepState .056 vs ETS .077, ARIMA .102 (p90 QL)"}
    for metric, q in (("ql50", "p50"), ("ql90", "p90")):
        ds = _at(tab, "deepstate", at, metric)
        base = {m: _at(tab, m, at, metric) for m in ("seasonal_naive", "ets")}
        shown = ds is not None and all(v is not None for v in base.values())
        out.append(claim(f"{q}_beats_baselines",
                         f"DeepState's {q} quantile loss beats seasonal naive and ETS with little "
                         f"training data (training range {rng}).",
                         {"deepstate": _r(ds), **{m: _r(v) for m, v in base.items()},
                          "arima": _r(_at(tab, "arima", at, metric))},
                         f"DeepState {metric} (seed mean) < seasonal naive's and < ETS's at {rng}",
                         paper[metric],
                         holds=all(ds < v for v in base.values()) if shown else None,
                         why="" if shown else "DeepState, seasonal naive or ETS missing from the sweep"))
    lo, hi = float(a.coverage[0]), float(a.coverage[1])
    cov = {str(label[s]): _r(_at(tab, "deepstate", s, "coverage"), 3) for s in steps}
    shown = all(v is not None for v in cov.values())
    out.append(claim("coverage",
                     "DeepState's p10-p90 band is calibrated (nominal 80%) at every training range.", cov,
                     f"{lo} <= DeepState p10-p90 coverage (seed mean) <= {hi} at every training range",
                     "not reported as a number; the paper shows fan charts of its p10-p90 and p5-p95 bands",
                     holds=all(lo <= v <= hi for v in cov.values()) if shown else None,
                     why="" if shown else "no completed DeepState run at some training range"))
    ds_s, ar_s = _at(tab, "deepstate", at, "ql50"), _at(tab, "deepar", at, "ql50")
    last = label[steps[-1]]
    shown = ds_s is not None and ar_s is not None
    out.append(claim("data_efficiency", f"With little data (training range {rng}) DeepState beats DeepAR.",
                     {"deepstate": _r(ds_s), "deepar": _r(ar_s),
                      f"deepstate_{last}": _r(_at(tab, "deepstate", steps[-1], "ql50")),
                      f"deepar_{last}": _r(_at(tab, "deepar", steps[-1], "ql50"))},
                     f"DeepState ql50 < DeepAR ql50 at {rng} (seed means)",
                     "DeepState ahead of DeepAR when training ranges are short; with all the electricity "
                     "data DeepAR is ahead (p50 .075 vs .083)",
                     holds=ds_s < ar_s if shown else None,
                     why="" if shown else "DeepState or DeepAR missing from the sweep"))
    r = a.recovery
    paper_rec = "learned level and seasonal components are interpretable (the paper plots them over time)"
    if recovery:
        ratio, dc, wc = (recovery.get(k) for k in ("sigma_ratio", "daily_corr", "weekly_corr"))
        ok = (ratio is not None and float(r.sigma_ratio[0]) <= ratio <= float(r.sigma_ratio[1])
              and dc is not None and dc >= float(r.daily_corr)
              and wc is not None and wc >= float(r.weekly_corr))
        out.append(claim("recovers_issm", "On a panel drawn from a known ISSM, DeepState's learned "
                         "components recover the truth: the noise scale and the daily and weekly patterns.",
                         {k: _r(v, 3) for k, v in recovery.items()},
                         f"median learned/true σ in [{r.sigma_ratio[0]}, {r.sigma_ratio[1]}], median "
                         f"correlation with the true daily pattern >= {r.daily_corr} and weekly >= "
                         f"{r.weekly_corr} (over series and DeepState runs)", paper_rec, holds=ok))
    else:
        out.append(claim("recovers_issm", "DeepState's learned components recover a known ISSM.", None,
                         "needs a panel with known parameters (data=issm_panel)", paper_rec, holds=None,
                         why="this panel has no ground truth (only the synthetic ISSM panel has)"))
    return out

"""Every DeepState claim can hold, fail and (comparisons) come out inconclusive: made-up per-child tables
and recovery rows fed to the pure claims function (no training)."""

from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from dlx.config import compose
from dlx.errors import DlxError
from dlx.papers.deepstate.analysis import all_of, claims

RANGES = {"14D": 336, "28D": 672}
IDS = {"p50_beats_baselines", "p90_beats_baselines", "coverage", "beats_deepar", "data_efficiency",
       "recovers_issm"}


@pytest.fixture(scope="module")
def cfg():
    return compose("deepstate")


def frame(ds=None, ar=None, base=None, cov=None, ql90_ds=None):
    """Per-child rows: DeepState and DeepAR per seed (lists per range), the baselines once per range.
    ``ds``/``ar``: {range: [ql50 per seed]}; ``base``: {model: ql50}; ``cov``: {range: [DeepState
    coverage per seed]}."""
    ds = ds or {"14D": [0.080, 0.081, 0.079], "28D": [0.085, 0.084, 0.086]}
    ar = ar or {"14D": [0.120, 0.122, 0.121], "28D": [0.095, 0.096, 0.094]}
    base = base or {"seasonal_naive": 0.15, "ets": 0.13, "arima": 0.16}
    cov = cov or {"14D": [0.79, 0.80, 0.81], "28D": [0.80, 0.79, 0.81]}
    rows = []
    for rng, steps in RANGES.items():
        for seed, q in enumerate(ds[rng]):
            q90 = ql90_ds[rng][seed] if ql90_ds else q / 2
            rows.append(dict(model="deepstate", train_range=rng, range_steps=steps, seed=seed, ql50=q,
                             ql90=q90, coverage=cov[rng][seed], status="completed"))
        for seed, q in enumerate(ar[rng]):
            rows.append(dict(model="deepar", train_range=rng, range_steps=steps, seed=seed, ql50=q,
                             ql90=q / 2, coverage=0.7, status="completed"))
        for model, q in base.items():
            rows.append(dict(model=model, train_range=rng, range_steps=steps, seed=0, ql50=q, ql90=q / 2,
                             coverage=0.7, status="completed"))
    return pd.DataFrame(rows)


def recovery(weekly=(0.85, 0.86, 0.84), sigma=(1.0, 1.02, 0.98), daily=(0.98, 0.99, 0.97)):
    return pd.DataFrame({"train_range": ["14D"] * len(weekly), "seed": range(len(weekly)),
                         "sigma_ratio": sigma, "daily_corr": daily, "weekly_corr": weekly})


def verdicts(cfg, df, rec=None):
    out = {c["id"]: c for c in claims(df, recovery() if rec is None else rec, cfg)}
    assert set(out) == IDS
    return {k: c["verdict"] for k, c in out.items()}, out


def test_everything_holds_on_a_clear_table(cfg):
    v, out = verdicts(cfg, frame())
    assert set(v.values()) == {"holds"}, v
    assert out["recovers_issm"]["source"] == "dlx" and out["p50_beats_baselines"]["source"] == "paper"
    p50 = out["p50_beats_baselines"]
    assert p50["measured"]["best_baseline"] == "ets" and p50["n"] == 4 and p50["ci_method"] == "t"
    assert p50["estimate"] == pytest.approx(0.08 - 0.13) and p50["ci"][1] < 0
    assert out["beats_deepar"]["estimate"] == pytest.approx(-0.041)
    assert out["data_efficiency"]["estimate"] == pytest.approx(-0.041 - (-0.010))
    assert "95% t interval" in p50["rule"] and "95% paired t interval" in out["beats_deepar"]["rule"]


@pytest.mark.parametrize("metric", ["ql50", "ql90"])
def test_beats_baselines_holds_fails_inconclusive(cfg, metric):
    cid = {"ql50": "p50_beats_baselines", "ql90": "p90_beats_baselines"}[metric]
    worse = {"14D": [0.20, 0.21, 0.19], "28D": [0.2] * 3}
    straddle = {"14D": [0.12, 0.14, 0.13], "28D": [0.13] * 3}
    if metric == "ql50":
        bad, mixed = frame(ds=worse), frame(ds=straddle)
    else:  # p90 losses of the baselines are ql50 / 2: 0.065 for ETS
        bad = frame(ql90_ds={"14D": [0.10, 0.11, 0.12], "28D": [0.1] * 3})
        mixed = frame(ql90_ds={"14D": [0.055, 0.075, 0.065], "28D": [0.065] * 3})
    assert verdicts(cfg, bad)[0][cid] == "fails"
    assert verdicts(cfg, mixed)[0][cid] == "inconclusive"
    # a margin moves the line: beating ETS by 0.05 is not shown by an edge of 0.05 +- noise
    strict = OmegaConf.merge(cfg, {"deepstate": {"rules": {"beats_margin": 0.2}}})
    assert verdicts(strict, frame())[0][cid] == "fails"
    missing = {c["id"]: c for c in claims(frame(base={"seasonal_naive": 0.15, "arima": 0.16}), None, cfg)}
    assert missing[cid]["verdict"] == "not shown"


def test_coverage_holds_fails_inconclusive(cfg):
    over = frame(cov={"14D": [0.79, 0.8, 0.81], "28D": [0.97, 0.98, 0.99]})
    assert verdicts(cfg, over)[0]["coverage"] == "fails"
    _, out = verdicts(cfg, frame(cov={"14D": [0.79, 0.8, 0.81], "28D": [0.6, 0.7, 0.95]}))
    assert out["coverage"]["verdict"] == "inconclusive" and out["coverage"]["measured"]["decided_by"] == "28D"
    # under-coverage fails as well as over-coverage
    assert verdicts(cfg, frame(cov={"14D": [0.5, 0.52, 0.51], "28D": [0.8] * 3}))[0]["coverage"] == "fails"


def test_beats_deepar_holds_fails_inconclusive(cfg):
    ahead = frame(ar={"14D": [0.060, 0.061, 0.062], "28D": [0.05] * 3})
    assert verdicts(cfg, ahead)[0]["beats_deepar"] == "fails"
    mixed = frame(ar={"14D": [0.070, 0.090, 0.080], "28D": [0.07] * 3})  # paired diffs +0.01, -0.009, -0.001
    assert verdicts(cfg, mixed)[0]["beats_deepar"] == "inconclusive"
    no_ar = frame().query("model != 'deepar'")
    out = {c["id"]: c["verdict"] for c in claims(no_ar, recovery(), cfg)}
    assert out["beats_deepar"] == "not shown" and out["data_efficiency"] == "not shown"


def test_data_efficiency_is_about_how_the_edge_changes(cfg):
    # DeepState ahead at both ranges, but by more at 28D than at 14D: the restated claim fails
    ar = {"14D": [0.095, 0.096, 0.094], "28D": [0.125, 0.124, 0.126]}
    v, _ = verdicts(cfg, frame(ar=ar))
    assert v["beats_deepar"] == "holds" and v["data_efficiency"] == "fails"
    # edges -0.015, -0.025, -0.035 at 14D against -0.025 at 28D: the difference straddles zero
    ar = {"14D": [0.095, 0.106, 0.114], "28D": [0.11, 0.109, 0.111]}
    assert verdicts(cfg, frame(ar=ar))[0]["data_efficiency"] == "inconclusive"
    one_range = frame().query("train_range == '14D'")
    out = {c["id"]: c for c in claims(one_range, recovery(), cfg)}
    assert out["data_efficiency"]["verdict"] == "not shown" and out["beats_deepar"]["verdict"] == "holds"


def test_recovery_holds_fails_inconclusive_and_not_shown(cfg):
    assert verdicts(cfg, frame(), recovery(weekly=(0.3, 0.35, 0.32)))[0]["recovers_issm"] == "fails"
    assert verdicts(cfg, frame(), recovery(sigma=(1.6, 1.7, 1.65)))[0]["recovers_issm"] == "fails"
    _, out = verdicts(cfg, frame(), recovery(weekly=(0.6, 0.8, 0.75)))
    assert out["recovers_issm"]["verdict"] == "inconclusive"
    assert out["recovers_issm"]["measured"]["decided_by"] == "weekly_corr"
    for none in (None, pd.DataFrame()):
        rec = {c["id"]: c for c in claims(frame(), none, cfg)}["recovers_issm"]
        assert rec["verdict"] == "not shown" and rec["source"] == "dlx"


def test_one_seed_gives_no_interval(cfg):
    df = frame().query("seed == 0")
    v = {c["id"]: c["verdict"] for c in claims(df, recovery().head(1), cfg)}
    assert v == {k: "inconclusive" for k in IDS}


def test_all_of_picks_the_deciding_part():
    ok = {"verdict": "holds", "ci": [0.1, 0.2], "margin": 0.0, "direction": "greater"}
    tight = {"verdict": "holds", "ci": [0.01, 0.2], "margin": 0.0, "direction": "greater"}
    bad = {"verdict": "fails", "ci": [-0.3, -0.1], "margin": 0.0, "direction": "greater"}
    assert all_of({"a": ok, "b": tight})[0] == "b"
    assert all_of({"a": ok, "b": bad, "c": tight})[0] == "b"


def test_the_claim_range_must_be_swept(cfg):
    with pytest.raises(DlxError, match="deepstate.range=7D is not one of the swept ranges"):
        claims(frame(), None, OmegaConf.merge(cfg, {"deepstate": {"range": "7D"}}))
    at28 = {c["id"]: c for c in claims(frame(), None, OmegaConf.merge(cfg, {"deepstate": {"range": "28D"}}))}
    assert "28D" in at28["p50_beats_baselines"]["claim"]

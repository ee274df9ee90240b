"""`dlx reproduce deepstate`: the sweep's grid, the claim rules on hand-made tables, and a tiny end-to-end
run through the CLI (children are forecast runs; tables, claims, figures; `dlx plot` redraws)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dlx.claims import VERDICTS
from dlx.config import compose
from dlx.errors import DlxError
from dlx.papers.deepstate.analysis import claims, grid, table
from dlx.registry import get


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_grid_runs_baselines_once_and_trained_models_per_seed():
    from dlx.papers.deepstate.experiment import children

    cfg = compose("deepstate", ["sweep.seeds=2", "sweep.train_ranges=[14D,28D]"])
    kids = children(cfg)
    assert {c.kind for c in kids} == {"forecast"}
    per_model = pd.Series([c.params["model"] for c in kids]).value_counts().to_dict()
    assert per_model == {"deepstate": 4, "deepar": 4, "seasonal_naive": 2, "ets": 2, "arima": 2}
    assert kids[0].params["model"] == "deepstate"  # the longest children start first
    assert len({c.run_id for c in kids}) == len(kids)
    for bad, msg in (("sweep.models=[deepstate,prophet]", "unknown model 'prophet'"),
                     ("sweep.seeds=0", "sweep.seeds"), ("sweep.train_ranges=[]", "sweep.train_ranges")):
        with pytest.raises(DlxError, match=msg):
            grid(compose("deepstate", [bad]))


def fake_results(ds50=0.08, naive50=0.15, ets50=0.13, ar50=0.12, cov=0.8):
    rows = []
    for steps, rng in ((336, "14D"), (672, "28D")):
        for model, q50 in (("deepstate", ds50), ("deepar", ar50), ("seasonal_naive", naive50),
                           ("ets", ets50)):
            for seed in (0, 1) if model in ("deepstate", "deepar") else (0,):
                rows.append({"model": model, "train_range": rng, "range_steps": steps, "seed": seed,
                             "status": "completed", "ql50": q50 + 0.001 * seed, "ql90": q50 / 2,
                             "mase": 1.0, "coverage": cov if model == "deepstate" else 0.7, "loss": 0.0,
                             "mean_wql": q50, "train_days": steps / 24})
    return pd.DataFrame(rows)


def test_table_and_claims_on_made_up_results():
    cfg = compose("deepstate")
    df = fake_results()
    tab = table(df)
    assert list(tab.model.unique()) == ["deepstate", "deepar", "ets", "seasonal_naive"]
    assert tab[tab.model == "deepstate"].seeds.tolist() == [2, 2]
    rec = pd.DataFrame({"train_range": ["14D", "14D"], "seed": [0, 1], "sigma_ratio": [1.02, 0.99],
                        "daily_corr": [0.97, 0.98], "weekly_corr": [0.85, 0.86]})
    strict = OmegaConf.merge(cfg, {"deepstate": {"rules": {"baselines": ["seasonal_naive", "ets"]}}})
    out = {c["id"]: c for c in claims(df, rec, strict)}  # the per-seed rows decide, not the table's means
    assert set(out) == {"p50_beats_baselines", "p90_beats_baselines", "coverage", "beats_deepar",
                        "data_efficiency", "recovers_issm"}
    assert out["p50_beats_baselines"]["verdict"] == "holds" and out["p50_beats_baselines"]["n"] == 3
    assert out["p50_beats_baselines"]["measured"]["deepstate"] == pytest.approx(0.0805)
    # the same edge over DeepAR at both ranges: no evidence that it shrinks with more data
    assert out["data_efficiency"]["verdict"] in ("fails", "inconclusive")
    # ARIMA is a configured baseline, absent here
    assert {c["id"]: c["verdict"] for c in claims(df, rec, cfg)}["p50_beats_baselines"] == "not shown"


def test_rules_are_checked():
    from dlx.papers.deepstate.analysis import check_analysis

    check_analysis(compose("deepstate").deepstate)
    for bad, msg in (("deepstate.rules.coverage=[0.9,0.5]", "deepstate.rules.coverage"),
                     ("deepstate.rules.baselines=[deepar]", "deepstate.rules.baselines"),
                     ("deepstate.rules.recovery.sigma_ratio=[0,1.2]", "sigma_ratio")):
        with pytest.raises(DlxError, match=msg.replace(".", r"\.")):
            check_analysis(compose("deepstate", [bad]).deepstate)
    # the single-number lines: the record's bounds, checked by launch before anything runs
    with pytest.raises(DlxError, match=r"deepstate\.rules\.beats_margin must be"):
        get("deepstate").rules_of(compose("deepstate", ["deepstate.rules.beats_margin=-1"]))


def test_reproduce_deepstate_tiny_end_to_end(run_cli, tmp_path):
    args = ["launcher=inline", "sweep.models=[deepstate,seasonal_naive,ets]", "sweep.train_ranges=[7D,8D]",
            "sweep.seeds=1", "trainer.steps=3", "data.series=3", "data.rolling=2", "data.days=14",
            "data.train_window=4D", "--out", str(tmp_path), "--name", "t"]
    rc, out, err = run_cli("reproduce", "deepstate", *args)
    assert rc == 0, err
    d = tmp_path / "reproduce" / "t"
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "completed" and s["kind"] == "deepstate" and s["children"] == 6
    assert {c["verdict"] for c in s["claims"]} <= set(VERDICTS) and len(s["claims"]) == 6
    verdicts = {c["id"]: c["verdict"] for c in s["claims"]}
    assert verdicts["data_efficiency"] == "not shown"  # no DeepAR in this sweep
    res = pd.read_csv(d / "results.csv")
    assert len(res) == 6 and set(res.status) == {"completed"} and res.ql50.notna().all()
    tab = pd.read_csv(d / "table.csv")
    assert set(tab.train_range) == {"7D", "8D"} and set(tab.train_days) == {7.0, 8.0}
    fan = pd.read_csv(d / "fan.csv")
    assert set(fan.model) == {"deepstate", "seasonal_naive", "ets"} and set(fan.train_range) == {"7D"}
    for png in ("ql_vs_range.png", "fan_chart.png", "components.png", "recovery.png"):
        assert (d / png).is_file(), png
        (d / png).unlink()
    assert "claims hold" in out
    rc, out, err = run_cli("plot", str(d))  # redrawn from the tables alone
    assert rc == 0 and (d / "ql_vs_range.png").is_file() and (d / "fan_chart.png").is_file(), err
    # the same command again resumes: every child is done, nothing re-runs
    rc, _, err = run_cli("reproduce", "deepstate", *args)
    assert rc == 0, err


def test_reproduce_deepstate_refuses_a_swept_key(run_cli, tmp_path):
    rc, _, err = run_cli("reproduce", "deepstate", "model=deepar", "--out", str(tmp_path))
    assert rc == 2 and "sweep.models" in err and len(err.strip().splitlines()) == 1
    rc, _, err = run_cli("reproduce", "deepstate", "deepstate.rules.coverage=[0.9,0.5]", "--out",
                         str(tmp_path))
    assert rc == 2 and "deepstate.rules.coverage" in err


def _stats(z):
    """Per series (medians over the panel): the share of variance explained by hour-of-week means, the excess
    kurtosis of day-over-day differences, the correlation of the hourly mean with the hourly sd of those
    differences (heteroscedasticity), and the mean level and sd of the differences (scaled by the series'
    mean)."""
    import numpy as np
    from scipy import stats

    y = z / z.mean(1, keepdims=True)
    T = y.shape[1]
    how, hod = np.arange(T) % 168, np.arange(24, T) % 24
    d = y[:, 24:] - y[:, :-24]
    share, het = [], []
    for s in range(len(y)):
        g = np.array([y[s][how == k].mean() for k in range(168)])
        share.append(np.var(g[how]) / np.var(y[s]))
        het.append(np.corrcoef([y[s, 24:][hod == k].mean() for k in range(24)],
                               [d[s][hod == k].std() for k in range(24)])[0, 1])
    return {"season": float(np.median(share)), "kurtosis": float(np.median(stats.kurtosis(d, axis=1))),
            "hetero": float(np.median(het)), "diff_sd": float(np.median(d.std(1)))}


def test_the_control_keeps_the_panel_but_not_the_issm():
    import numpy as np

    from dlx.forecast.synthetic import issm_panel, nonlinear_panel

    z, truth = issm_panel(seed=3)
    c, ctruth = nonlinear_panel(seed=3)
    assert c.shape == z.shape == (40, 42 * 24)
    # the same series: scale, patterns and noise fraction are the same draws
    for k in ("level0", "daily", "weekly"):
        np.testing.assert_array_equal(truth[k], ctruth[k])
    ratio = c.mean(1) / ctruth["level0"]  # same scale: the regimes average out
    assert 0.85 < np.median(ratio) < 1.15 and ratio.min() > 0.7 and ratio.max() < 1.3
    assert np.median(ctruth["sigma"] / truth["sigma"]) == pytest.approx(1.0, abs=0.1)  # same noise level
    a, b = _stats(z), _stats(c)
    assert 0.6 < b["season"] / a["season"] < 1.4, (a, b)  # a comparable amount of seasonality
    assert 0.5 < b["diff_sd"] / a["diff_sd"] < 2.0, (a, b)  # comparable day-to-day variability
    # the premise removed: Gaussian innovations with a constant scale vs heavy tails that follow the level
    assert abs(a["kurtosis"]) < 0.5 and b["kurtosis"] > 1.0, (a, b)
    assert abs(a["hetero"]) < 0.3 and b["hetero"] > 0.6, (a, b)
    # regime switches: a few per series, each a jump of the level (not a random walk)
    switches = np.abs(np.diff(ctruth["regime"], axis=1)).sum(1)
    assert 3 <= np.median(switches) <= 25
    assert issm_panel(seed=3)[0].tobytes() == z.tobytes()  # seeded
    assert nonlinear_panel(seed=3)[0].tobytes() == c.tobytes()


def test_the_control_is_switched_on_by_config():
    from dlx.data import build_data
    from dlx.registry import get

    assert get("deepstate").control == ("data.generator=nonlinear",) and get("deepstate").control_note
    small = ["data.series=2", "data.days=14", "data.train_range=7D", "data.train_window=4D", "data.rolling=2"]
    base = build_data(compose("deepstate", small).data)
    ctrl = build_data(compose("deepstate", [*small, *get("deepstate").control]).data)
    assert base.meta.extra["item_ids"] == ["issm_000", "issm_001"]
    assert ctrl.meta.extra["item_ids"] == ["nonlinear_000", "nonlinear_001"]
    assert set(ctrl.notes["truth"]) >= {"sigma", "daily", "weekly"}  # the recovery table reads on it too
    with pytest.raises(DlxError, match="data.generator"):
        build_data(compose("deepstate", [*small, "data.generator=garch"]).data)
    with pytest.raises(DlxError, match="data.tail_df"):
        build_data(compose("deepstate", [*small, "data.generator=nonlinear", "data.tail_df=2"]).data)

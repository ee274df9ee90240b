"""`dlx reproduce deepstate`: the sweep's grid, the claim rules on hand-made tables, and a tiny end-to-end
run through the CLI (children are forecast runs; tables, claims, figures; `dlx plot` redraws)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dlx.config import compose
from dlx.errors import DlxError
from dlx.experiments.claims import VERDICTS
from dlx.experiments.deepstate.analysis import claims, grid, table


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_grid_runs_baselines_once_and_trained_models_per_seed():
    from dlx.experiments.deepstate.experiment import children

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


def test_claim_rules_on_made_up_tables():
    cfg = compose("deepstate")
    tab = table(fake_results())
    assert list(tab.model.unique()) == ["deepstate", "deepar", "ets", "seasonal_naive"]
    assert tab[tab.model == "deepstate"].seeds.tolist() == [2, 2]
    rec = {"sigma_ratio": 1.02, "daily_corr": 0.97, "weekly_corr": 0.85}
    out = {c["id"]: c for c in claims(tab, rec, cfg)}
    assert set(out) == {"p50_beats_baselines", "p90_beats_baselines", "coverage", "data_efficiency",
                        "recovers_issm"}
    assert all(c["verdict"] == "holds" for c in out.values())
    assert out["p50_beats_baselines"]["measured"]["deepstate"] == pytest.approx(0.0805)
    worse = {c["id"]: c["verdict"] for c in claims(table(fake_results(ds50=0.14, cov=0.99)), None, cfg)}
    assert worse == {"p50_beats_baselines": "fails", "p90_beats_baselines": "fails", "coverage": "fails",
                     "data_efficiency": "fails", "recovers_issm": "not shown"}
    no_ets = table(fake_results().query("model != 'ets'"))
    assert {c["id"]: c["verdict"] for c in claims(no_ets, rec, cfg)}["p50_beats_baselines"] == "not shown"
    with pytest.raises(DlxError, match="analysis.range=7D is not one of the swept ranges"):
        claims(tab, rec, OmegaConf.merge(cfg, {"analysis": {"range": "7D"}}))


def test_reproduce_deepstate_tiny_end_to_end(run_cli, tmp_path):
    args = ["launcher=inline", "sweep.models=[deepstate,seasonal_naive,ets]", "sweep.train_ranges=[7D,8D]",
            "sweep.seeds=1", "trainer.steps=3", "data.series=3", "data.rolling=2", "data.days=14",
            "data.train_window=4D", "--out", str(tmp_path), "--name", "t"]
    rc, out, err = run_cli("reproduce", "deepstate", *args)
    assert rc == 0, err
    d = tmp_path / "reproduce" / "t"
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "completed" and s["kind"] == "deepstate" and s["children"] == 6
    assert {c["verdict"] for c in s["claims"]} <= set(VERDICTS) and len(s["claims"]) == 5
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
    rc, _, err = run_cli("reproduce", "deepstate", "analysis.coverage=[0.9,0.5]", "--out", str(tmp_path))
    assert rc == 2 and "analysis.coverage" in err

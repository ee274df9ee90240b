"""Forecasting as a dlx family: the Kalman filter against dense Gaussians and statsmodels, ISSM structure,
frequencies, panels and their splits, the real-file loaders (UCI electricity, long CSV) on small files in
their formats, the forecast task's metrics, the local baselines, DeepState/DeepAR, and `dlx forecast`
end to end with its bad-input errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from scipy.stats import multivariate_normal

from dlx.data.bundle import Meta
from dlx.errors import DlxError
from dlx.forecast import kalman
from dlx.forecast.issm import ISSM
from dlx.forecast.panel import Panel, make_bundle
from dlx.forecast.time import parse_freq, period, season_indices, steps_of, time_features, to_periods
from dlx.metrics import quantile_loss


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one intra-op thread is fastest and keeps timings sane on a shared machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


TINY = ["trainer.threads=1", "trainer.steps=3", "trainer.progress=none", "data.series=4", "data.rolling=2",
        "data.train_range=7D", "plot.series=2"]


# ---------------------------------------------------------------- Kalman filter

def dense_moments(F, a, b, g, s, mu0, P0):
    """Mean and covariance of z_1..T of the ISSM by explicit linear propagation (no filtering)."""
    T, d = a.shape
    A, G, Phi = np.zeros((T, d)), np.zeros((T, T)), np.eye(d)
    for t in range(T):
        A[t] = a[t] @ Phi
        for u in range(t):
            M = np.eye(d)
            for v in range(u + 1, t):
                M = F[v] @ M
            G[t, u] = a[t] @ M @ g[u]
        Phi = F[t] @ Phi
    return A @ mu0 + b, A @ P0 @ A.T + G @ G.T + np.diag(s ** 2)


def random_issm(rng, B, T, d):
    F = rng.normal(size=(B, T, d, d)) * 0.6
    a, g = rng.normal(size=(B, T, d)), rng.normal(size=(B, T, d)) * 0.5
    b, s = rng.normal(size=(B, T)), rng.uniform(0.3, 1.2, (B, T))
    mu0 = rng.normal(size=(B, d))
    L = rng.normal(size=(B, d, d))
    return F, a, b, g, s, mu0, L @ L.transpose(0, 2, 1) + np.eye(d)


def test_log_likelihood_equals_the_dense_gaussian_log_density_with_missing_values():
    rng = np.random.default_rng(0)
    B, T, d = 4, 7, 3
    F, a, b, g, s, mu0, P0 = random_issm(rng, B, T, d)
    z = rng.normal(size=(B, T)) * 2
    z[1, 3] = z[2, 0] = z[2, 6] = np.nan
    ll = kalman.log_likelihood(z, F, a, b, g, s, mu0, P0)
    assert ll.shape == (B,) and ll.dtype == torch.float64
    for i in range(B):
        mean, cov = dense_moments(F[i], a[i], b[i], g[i], s[i], mu0[i], P0[i])
        ok = np.isfinite(z[i])
        want = multivariate_normal(mean[ok], cov[np.ix_(ok, ok)]).logpdf(z[i][ok])
        assert ll[i].item() == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_constant_parameters_broadcast_like_their_time_varying_copies():
    rng = np.random.default_rng(1)
    B, T, d = 3, 5, 2
    F, a, g = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([1.0, 0.5]), np.array([0.3, 0.1])
    z = rng.normal(size=(B, T))
    const = kalman.log_likelihood(z, F, a, 0.2, g, 0.7, np.zeros(d), np.eye(d))
    full = kalman.log_likelihood(z, np.broadcast_to(F, (B, T, d, d)), np.broadcast_to(a, (B, T, d)),
                                 np.full((B, T), 0.2), np.broadcast_to(g, (B, T, d)), np.full((B, T), 0.7),
                                 np.zeros((B, d)), np.broadcast_to(np.eye(d), (B, d, d)))
    torch.testing.assert_close(const, full)
    with pytest.raises(DlxError, match="a must have"):
        kalman.log_likelihood(z, F, np.ones((1, 1, 1, d)), 0.0, g, 1.0, np.zeros(d), np.eye(d))


def test_local_level_log_likelihood_equals_statsmodels():
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    rng = np.random.default_rng(2)
    y = np.cumsum(rng.normal(0, 0.5, 80)) + rng.normal(0, 1.0, 80) + 10
    y[[5, 40]] = np.nan
    s2_irregular, s2_level, m0, p0 = 0.9, 0.3, 9.0, 4.0
    mod = UnobservedComponents(y, "llevel")
    mod.ssm.initialize_known(np.array([m0]), np.array([[p0]]))
    mod.ssm.loglikelihood_burn = 0  # statsmodels skips the first step under its default diffuse start
    want = mod.loglike(np.array([s2_irregular, s2_level]))
    got = kalman.log_likelihood(y[None], np.eye(1), np.ones(1), 0.0, np.array([s2_level ** 0.5]),
                                s2_irregular ** 0.5, np.array([m0]), np.array([[p0]]))
    assert got.item() == pytest.approx(want, rel=1e-10)


def test_predict_is_the_dense_conditional_and_sample_matches_its_moments():
    rng = np.random.default_rng(3)
    T, H, d = 6, 4, 3
    F, a, b, g, s, mu0, P0 = (x[0] for x in random_issm(rng, 1, T + H, d))
    F = F * 0.5 + np.eye(d) * 0.5
    mean, cov = dense_moments(F, a, b, g, s, mu0, P0)
    z = rng.multivariate_normal(mean, cov)
    res = kalman.kalman_filter(z[None, :T], F[None, :T], a[None, :T], b[None, :T], g[None, :T], s[None, :T],
                               mu0, P0)
    fut = (F[None, T:], a[None, T:], b[None, T:], g[None, T:], s[None, T:])
    m, sd = kalman.predict(res.mean, res.cov, *fut, steps=H)
    S11, S21 = cov[:T, :T], cov[T:, :T]
    cond_mean = mean[T:] + S21 @ np.linalg.solve(S11, z[:T] - mean[:T])
    cond_cov = cov[T:, T:] - S21 @ np.linalg.solve(S11, S21.T)
    np.testing.assert_allclose(m[0].numpy(), cond_mean, rtol=1e-8)
    np.testing.assert_allclose(sd[0].numpy(), np.sqrt(np.diag(cond_cov)), rtol=1e-8)
    paths = kalman.sample(res.mean, res.cov, *fut, steps=H, num_samples=40000,
                          generator=torch.Generator().manual_seed(0))[0].numpy()
    np.testing.assert_allclose(paths.mean(0), cond_mean, atol=0.05 * np.sqrt(np.diag(cond_cov)).max())
    # the joint covariance, not only the marginals
    np.testing.assert_allclose(np.cov(paths.T), cond_cov, atol=0.05 * np.abs(cond_cov).max())


def test_log_likelihood_has_exact_gradients():
    rng = np.random.default_rng(4)
    z = torch.as_tensor(rng.normal(size=(2, 5)))
    a = torch.as_tensor(rng.normal(size=(2, 5, 2)), dtype=torch.float64)
    g = torch.tensor([0.3, 0.2], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    F = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda g, s: kalman.log_likelihood(z, F, a, 0.0, g, s, torch.zeros(2),
                                                                       torch.eye(2, dtype=torch.float64)),
                                    (g, sigma))


# ---------------------------------------------------------------- ISSM, frequencies, synthetic panel

def test_issm_blocks_follow_the_paper():
    freq = parse_freq("H")
    issm = ISSM.for_freq(freq, trend=True)
    assert issm.dim == 2 + 24 + 7 and issm.n_strengths == 4
    F = issm.transition()
    assert F[0, 1] == 1 and torch.equal(F[2:, 2:], torch.eye(31, dtype=F.dtype))
    season = torch.tensor([[[5, 2]]])
    a = issm.emission(season)[0, 0]
    assert a[:2].tolist() == [1, 1] and a[2 + 5] == 1 and a[26 + 2] == 1 and a.sum() == 4
    strengths = torch.tensor([[[0.1, 0.2, 0.3, 0.4]]], dtype=torch.float64)
    g = issm.innovation(strengths, issm.emission(season))[0, 0]
    assert g[0] == pytest.approx(0.1) and g[1] == pytest.approx(0.2) and g[7] == pytest.approx(0.3)
    assert g[28] == pytest.approx(0.4) and (g != 0).sum() == 4  # only the active seasons are updated


def test_frequencies_time_features_and_durations():
    assert parse_freq("hourly") is parse_freq("h") is parse_freq("H")
    with pytest.raises(DlxError, match="unknown frequency 'X'"):
        parse_freq("X")
    freq = parse_freq("H")
    idx = to_periods(["2024-01-01 00:00", "2024-01-06 13:00"], freq)  # Monday 0h, Saturday 13h
    np.testing.assert_array_equal(season_indices(idx, freq), [[0, 0], [13, 5]])
    feats = time_features(idx, freq)
    assert feats.shape == (2, 4) and (np.abs(feats) <= 0.5).all() and feats[0, 0] == -0.5
    assert steps_of("14D", freq, "k") == 336 and steps_of("36h", freq, "k") == 36
    assert steps_of(7, freq, "k") == 7
    assert steps_of("2W", parse_freq("W"), "k") == 2
    with pytest.raises(DlxError, match="whole number"):
        steps_of("3D", parse_freq("W"), "data.train_range")


def test_synthetic_panel_is_the_issm_it_claims():
    """The Kalman likelihood of a synthetic series under its true parameters peaks at the true noise scale."""
    from dlx.forecast.synthetic import issm_panel

    z, truth = issm_panel(series=3, days=14, seed=5)
    z2, _ = issm_panel(series=3, days=14, seed=5)
    np.testing.assert_array_equal(z, z2)
    issm = ISSM.for_freq(parse_freq("H"))
    idx = torch.as_tensor(season_indices(pd.period_range("2024-01-01", periods=z.shape[1], freq="h"),
                                         parse_freq("H")))
    a = issm.emission(idx).unsqueeze(0)  # (1, T, d): time-varying, shared by the batch
    factors = np.array([0.5, 0.8, 1.0, 1.25, 2.0])
    for i in range(3):
        g = issm.innovation(torch.tensor([truth["alpha"][i], truth["gamma_day"][i], truth["gamma_week"][i]],
                                         dtype=torch.float64).expand(1, len(idx), 3), a)
        mu0 = torch.cat([torch.tensor([truth["level0"][i]]), torch.as_tensor(truth["daily"][i]),
                         torch.as_tensor(truth["weekly"][i])])
        ll = kalman.log_likelihood(np.repeat(z[i:i + 1], 5, 0), issm.transition(), a, 0.0, g,
                                   torch.as_tensor(truth["sigma"][i] * factors)[:, None], mu0,
                                   1e-6 * torch.eye(issm.dim, dtype=torch.float64))
        assert factors[int(ll.argmax())] == 1.0


# ---------------------------------------------------------------- panels and loaders

def small_panel(S=3, days=20, seed=0, freq="H"):
    rng = np.random.default_rng(seed)
    T = days * 24
    t = np.arange(T)
    z = 10 + 3 * np.sin(2 * np.pi * t / 24)[None] + rng.normal(0, 0.3, (S, T))
    f = parse_freq(freq)
    return Panel("p", f, period("2024-01-01", f), z, [f"s{i}" for i in range(S)])


def test_panel_splits_respect_the_forecast_start():
    cfg = OmegaConf.create({"horizon": 24, "rolling": 3, "train_range": "7D", "train_window": "3D"})
    b = make_bundle(small_panel(), cfg)
    t0 = 20 * 24 - 72
    assert b.meta.extra["t0"] == t0 and b.meta.task == "forecast" and b.meta.num_outputs == 24
    assert len(b.test) == 3 * 3 and len(b.train) == 3 * (168 - 72 + 1)
    batch = b.test.gather(torch.arange(len(b.test)))
    assert batch["past_target"].shape == (9, 168) and batch["future_target"].shape == (9, 24)
    assert sorted(set(batch["start"].tolist())) == [t0, t0 + 24, t0 + 48]  # rolling 1-day forecasts
    tr = b.train.gather(torch.arange(len(b.train)))
    assert int(tr["start"].max()) + 24 <= t0  # no training window reaches the forecast start
    assert int(tr["start"].min()) - 48 >= t0 - 168  # ... nor leaves the training range
    np.testing.assert_allclose(batch["scale"], batch["past_target"].abs().mean(1), rtol=1e-5)


def test_panel_settings_are_checked(tmp_path):
    p = small_panel()
    for cfg, msg in (({"horizon": 0}, "data.horizon must be an integer >= 1"),
                     ({"horizon": 24, "rolling": 30}, "has 480 steps .* need 721"),
                     ({"horizon": 24, "train_range": "5D"}, "shorter than a season"),
                     ({"horizon": 24, "train_range": "8D", "train_window": 10}, "must exceed the horizon"),
                     ({"horizon": 24, "label_noise": 0.1}, "label_noise is for classification"),
                     ({"horizon": 24, "augment": True}, "augment is for images")):
        with pytest.raises(DlxError, match=msg):
            make_bundle(p, OmegaConf.create(cfg))


def write_electricity(path, bad: str | None = None):
    stamps = pd.date_range("2012-01-01 00:15", periods=4 * 24 * 9, freq="15min")
    rng = np.random.default_rng(0)
    lines = ['"";"MT_001";"MT_002";"MT_003"']
    vals = []
    for i, ts in enumerate(stamps):
        row = [rng.uniform(1, 5), 0.0 if i < 4 * 30 else rng.uniform(1, 5), 2.5]
        vals.append(row)
        lines.append(f'"{ts:%Y-%m-%d %H:%M:%S}";' + ";".join(f"{v:.4f}".replace(".", ",") for v in row))
    if bad == "fields":
        lines[5] += ";1,0"
    elif bad == "value":
        lines[7] = lines[7].rsplit(";", 1)[0] + ";abc"
    path.write_text("\n".join(lines) + "\n")
    return stamps, np.round(np.array(vals), 4)


def test_electricity_reader_sums_quarter_hours_to_hours_and_masks_leading_zeros(tmp_path):
    from dlx.data.panel import read_electricity

    stamps, vals = write_electricity(tmp_path / "LD2011_2014.txt")
    start, target, names = read_electricity(tmp_path / "LD2011_2014.txt")
    assert names == ["MT_001", "MT_002", "MT_003"] and str(start) == "2012-01-01 00:00"
    assert target.shape == (3, 9 * 24)
    np.testing.assert_allclose(target[0, :3], vals[:12, 0].reshape(3, 4).sum(1))  # 00:15..01:00 -> hour 0
    assert np.isnan(target[1, :30]).all() and np.isfinite(target[1, 30:]).all()  # client 2 starts later
    assert np.allclose(target[2], 10.0)


@pytest.mark.parametrize("bad, msg", [("fields", "malformed file"),
                                      ("value", r"line 8: value 'abc' of MT_003")])
def test_electricity_reader_names_the_bad_row(tmp_path, bad, msg):
    from dlx.data.panel import read_electricity

    write_electricity(tmp_path / "LD2011_2014.txt", bad)
    with pytest.raises(DlxError, match=msg):
        read_electricity(tmp_path / "LD2011_2014.txt")


def write_long_csv(path, bad: str | None = None):
    rows = []
    for item, n, level in (("a", 20 * 24, 50.0), ("b", 20 * 24, 8.0), ("short", 48, 5.0)):
        ts = pd.date_range("2024-01-21 00:00", periods=20 * 24, freq="h")[-n:]
        for i, t in enumerate(ts):
            rows.append({"item_id": item, "timestamp": f"{t:%Y-%m-%d %H:%M}",
                         "target": f"{level + 5 * np.sin(2 * np.pi * i / 24):.3f}",
                         "cat_region": "north" if item == "a" else "south", "feat_promo": int(i % 7 == 0)})
    df = pd.DataFrame(rows)
    df.loc[10, "target"] = ""  # a missing value
    if bad == "target":
        df.loc[25, "target"] = "n/a"
    if bad == "duplicate":
        df = pd.concat([df, df.iloc[[30]]])
    df.to_csv(path, index=False)


def test_long_csv_builds_a_panel_and_reports_the_short_series(tmp_path):
    from dlx.config import compose
    from dlx.data import build_data

    write_long_csv(tmp_path / "panel.csv")
    cfg = compose("forecast", ["data=panel_csv", f"data.root={tmp_path}", "data.train_range=7D",
                               "data.train_window=3D"]).data
    b = build_data(cfg)
    assert b.meta.extra["item_ids"] == ["a", "b", "short"] and b.meta.extra["n_kept"] == 2
    assert b.notes["skipped_series"][0]["item_id"] == "short"
    assert b.meta.extra["cardinalities"] == [3, 2] and b.meta.extra["n_features"] == 4 + 1  # time + promo
    batch = b.test.gather(torch.arange(len(b.test)))
    assert torch.isnan(b.test.t["target"][0, 10]) and batch["past_feat"].shape[-1] == 5


@pytest.mark.parametrize("bad, msg", [("target", r"line 27: target 'n/a' is not a number"),
                                      ("duplicate", "has a second row in period")])
def test_long_csv_errors_name_the_line(tmp_path, bad, msg):
    from dlx.data.panel import read_long_csv

    write_long_csv(tmp_path / "panel.csv", bad)
    with pytest.raises(DlxError, match=msg):
        read_long_csv(tmp_path / "panel.csv", parse_freq("H"))
    if bad == "duplicate":
        panel = read_long_csv(tmp_path / "panel.csv", parse_freq("H"), aggregate="sum")
        assert panel.target.shape == (3, 480)


@pytest.mark.parametrize("name, freq, length", [("co2", "W", 2284), ("sunspots", "Y", 309),
                                                ("nile", "Y", 100), ("elnino", "M", 732)])
def test_statsmodels_series_are_single_series_panels(name, freq, length):
    from dlx.config import compose
    from dlx.data import build_data

    b = build_data(compose("forecast", [f"data={name}"]).data)
    assert b.meta.extra["freq"] == freq and b.meta.extra["steps"] == length and len(b.test) == 1


# ---------------------------------------------------------------- task and baselines

class Quantiles(torch.nn.Module):
    is_forecaster = True

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, batch, levels=None):
        return {"quantiles": self.fn(batch, torch.tensor(levels))}


def test_forecast_task_scores_the_whole_split():
    from dlx.tasks import build_task
    from dlx.train import evaluate

    b = make_bundle(small_panel(S=4), OmegaConf.create({"horizon": 24, "rolling": 3, "train_range": "7D"}))
    task = build_task(OmegaConf.create({"name": "forecast", "quantiles": [0.1, 0.5, 0.9]}), b.meta)

    def naive(batch, lv):  # yesterday's values, +-1 for the p10/p90
        base = batch["past_target"][:, -24:]
        return torch.stack([base - 1, base, base + 1], -1)

    arrays: dict = {}
    m = evaluate(Quantiles(naive), task, b.test, batch_size=5, per_example=arrays)
    y, p50 = arrays["target"], arrays["p50"]
    assert m["ql50"] == pytest.approx(quantile_loss(y, p50, 0.5)) and m["ql50"] == pytest.approx(
        np.abs(y - p50).sum() / np.abs(y).sum())
    assert m["ql90"] == pytest.approx(quantile_loss(y, arrays["p90"], 0.9))
    assert m["coverage"] == pytest.approx(np.mean((y >= p50 - 1) & (y <= p50 + 1)), rel=1e-6)
    assert m["mase"] == pytest.approx(1.0, abs=0.15)  # seasonal naive on its own scale
    assert np.isnan(m["loss"]) and len(y) == 4 * 3 * 24


def test_local_baselines_forecast_a_seasonal_series():
    from dlx.forecast.local import arima, ets, seasonal_naive

    t = np.arange(24 * 10 + 24)
    rng = np.random.default_rng(0)
    y = 20 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, len(t))
    ctx, truth = y[:-24], y[-24:]
    lv = [0.1, 0.5, 0.9]
    exact = seasonal_naive(20 + 5 * np.sin(2 * np.pi * t[:-24] / 24), 48, 24, lv)
    np.testing.assert_allclose(exact[:, 1], np.tile(20 + 5 * np.sin(2 * np.pi * t[-24:] / 24), 2), atol=1e-9)
    np.testing.assert_allclose(exact[:, 0], exact[:, 2], atol=1e-9)  # no seasonal error seen: no spread
    for fn in (seasonal_naive, ets, arima):
        q = fn(ctx, 24, 24, lv)
        assert q.shape == (24, 3) and (np.diff(q, axis=1) >= 0).all()
        assert np.mean(np.abs(q[:, 1] - truth)) < 1.2, fn.__name__
        assert 0.5 < np.mean((truth >= q[:, 0]) & (truth <= q[:, 2])) <= 1.0, fn.__name__


# ---------------------------------------------------------------- models and the CLI

def panel_meta(**extra):
    return Meta("p", "forecast", (168, 4), num_outputs=24,
                extra={"freq": "H", "cardinalities": [3], "n_features": 4, "m": 24, "train_window": 72,
                       "horizon": 24, "count_data": False, **extra})


def test_models_refuse_what_they_cannot_do():
    from dlx.models import build_model

    with pytest.raises(DlxError, match="negbin needs non-negative integer targets"):
        build_model(OmegaConf.create({"name": "deepar", "likelihood": "negbin"}), panel_meta())
    with pytest.raises(DlxError, match="lags reach 168"):
        build_model(OmegaConf.create({"name": "deepar", "lags": [1, 168]}), panel_meta())
    with pytest.raises(DlxError, match="noise_bounds must be"):
        build_model(OmegaConf.create({"name": "deepstate", "noise_bounds": [-1.0, 1.0]}), panel_meta())
    with pytest.raises(DlxError, match="forecasts panels of series"):
        build_model(OmegaConf.create({"name": "deepstate"}),
                    Meta("digits", "classify", (64,), num_classes=10))


def test_deepar_negative_binomial_on_counts():
    from dlx.models import build_model

    rng = np.random.default_rng(0)
    z = rng.poisson(5 + 3 * np.sin(2 * np.pi * np.arange(20 * 24) / 24), (3, 20 * 24)).astype(float)
    f = parse_freq("H")
    cfg = OmegaConf.create({"horizon": 24, "rolling": 1, "train_range": "7D", "train_window": "3D"})
    b = make_bundle(Panel("c", f, period("2024-01-01", f), z, ["a", "b", "c"]), cfg)
    assert b.meta.extra["count_data"]
    model = build_model(OmegaConf.create({"name": "deepar", "likelihood": "negbin", "num_samples": 20,
                                          "hidden": 8, "layers": 1}), b.meta)
    batch = b.train.gather(torch.arange(4))
    nll, n = model(batch)
    assert torch.isfinite(nll) and n == 4 * (72 - 24)
    out = model(b.test.gather(torch.arange(3)), levels=(0.1, 0.5, 0.9))
    q = out["quantiles"]
    assert q.shape == (3, 24, 3) and (q >= 0).all() and torch.equal(q, q.round())  # counts


def test_forecast_cli_writes_quantile_forecasts_and_components(run_cli, tmp_path):
    rc, out, err = run_cli("forecast", *TINY, "--out", str(tmp_path), "--name", "f")
    assert rc == 0, err
    d = tmp_path / "forecast" / "f"
    fc = pd.read_csv(d / "forecasts.csv")
    assert list(fc.columns) == ["item_id", "timestamp", "window", "step", "target", "p5", "p10", "p50", "p90",
                                "p95"]
    assert len(fc) == 4 * 2 * 24 and (fc.p95 >= fc.p5).all()
    s = json.loads((d / "summary.json").read_text())
    assert s["status"] == "completed" and s["metrics"]["test_ql50"] == pytest.approx(
        quantile_loss(fc.target, fc.p50, 0.5), rel=1e-5)
    comp = pd.read_csv(d / "components.csv")
    assert {"component_level", "component_hour_of_day", "component_day_of_week", "sigma"} <= set(comp.columns)
    for png in ("fan_chart.png", "components.png"):
        assert (d / png).is_file()
    assert "ql50" in out
    rec = pd.read_csv(d / "recovery.csv")  # the synthetic panel knows its truth
    assert len(rec) == 4 and rec.sigma_true.gt(0).all()


def test_forecast_cli_baseline_and_skipped_series(run_cli, tmp_path):
    write_long_csv(tmp_path / "panel.csv")
    rc, out, err = run_cli("forecast", "model=seasonal_naive", "data=panel_csv", f"data.root={tmp_path}",
                           "data.train_range=7D", "trainer.threads=1", "--out", str(tmp_path), "--name", "b")
    assert rc == 0, err
    assert "skipped 1 of 3 series" in err
    d = tmp_path / "forecast" / "b"
    assert pd.read_csv(d / "skipped_series.csv").item_id.tolist() == ["short"]
    assert json.loads((d / "summary.json").read_text())["params"] == 0


@pytest.mark.parametrize("overrides, msg", [
    (["data.horizon=0"], "data.horizon must be an integer >= 1"),
    (["data.train_range=3D"], "shorter than a season"),
    (["data=panel_csv", "data.freq=X", "data.root=."], "unknown frequency 'X'"),
    (["data.noise=[-0.1,0.1]"], "data.noise must be"),
    (["model.noise_bounds=[-1.0,1.0]"], "model.noise_bounds must be"),
    (["model=mlp"], "is not a forecaster"),
    (["data=electricity"], "set data.root"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path, overrides, msg):
    rc, _, err = run_cli("forecast", *overrides, "trainer.threads=1", "--out", str(tmp_path))
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "forecast").exists()  # refused before the run directory appeared

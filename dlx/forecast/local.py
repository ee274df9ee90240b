"""Local baselines, fitted per series on its context window: seasonal naive, ETS and ARIMA (statsmodels).
Each function takes one context ``y`` (1-D, NaN = missing), a horizon ``h``, the season length ``m`` and
quantile ``levels``, and returns the quantile forecast ``(h, len(levels))``.

- ``seasonal_naive``: the last observed season repeated; its quantiles add the empirical quantiles of the
  in-sample seasonal differences y_t - y_{t-m} (scaled by sqrt(k) k seasons ahead), so the baseline is
  probabilistic rather than a point forecast scored as every quantile.
- ``ets``: additive-error ETS with additive seasonality (statsmodels ETSModel, heuristic initial states),
  trend chosen among ``trends`` by AICc -- a small version of R's ets(); Gaussian predictive quantiles
  (exact for these models).
- ``arima``: SARIMA(p,0,q)(0,1,0)_m -- an ARMA fitted by exact maximum likelihood (statsmodels SARIMAX) to
  the seasonally differenced series, integrated back; orders chosen among ``orders`` by AIC. Gaussian
  quantiles for h <= m, simulated paths beyond.

A fit that fails (statsmodels raises) falls back to seasonal naive; callers count those.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import norm


class FitFailed(Exception):
    pass


def _last_cycle(y: np.ndarray, m: int) -> np.ndarray:
    """The last season's values, each missing one replaced by the latest observed value of its slot (or,
    failing that, the last observed value)."""
    n = len(y)
    m = max(1, min(m, n))
    out = np.empty(m)
    fallback = y[np.isfinite(y)][-1] if np.isfinite(y).any() else 0.0
    for j in range(m):
        slot = y[n - m + j :: -m]  # the slot's values, latest first
        vals = slot[np.isfinite(slot)]
        out[j] = vals[0] if len(vals) else fallback
    return out


def seasonal_naive(y, h: int, m: int, levels) -> np.ndarray:
    y = np.asarray(y, np.float64)
    m = max(1, min(int(m), len(y)))
    base = _last_cycle(y, m)
    j = np.arange(h)
    point = base[j % m]
    k = j // m + 1
    diffs = y[m:] - y[:-m] if len(y) > m else np.array([])
    diffs = diffs[np.isfinite(diffs)]
    q = np.quantile(diffs, levels) if len(diffs) else np.zeros(len(levels))
    return point[:, None] + np.sqrt(k)[:, None] * q[None, :]


def _filled(y: np.ndarray) -> np.ndarray:
    """Missing values linearly interpolated (ends held), for models that cannot skip them."""
    ok = np.isfinite(y)
    if ok.all():
        return y
    if not ok.any():
        raise FitFailed("no observed values")
    idx = np.arange(len(y))
    return np.interp(idx, idx[ok], y[ok])


def _gaussian(mean: np.ndarray, sd: np.ndarray, levels) -> np.ndarray:
    return mean[:, None] + np.maximum(sd, 0)[:, None] * norm.ppf(np.asarray(levels))[None, :]


def ets(y, h: int, m: int, levels, trends=("none", "add", "add_damped")) -> np.ndarray:
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = _filled(np.asarray(y, np.float64))
    seasonal = "add" if m > 1 and len(y) >= 2 * m + 2 else None
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for trend in trends:
            try:
                model = ETSModel(pd.Series(y), error="add", trend=None if trend == "none" else "add",
                                 damped_trend=trend == "add_damped", seasonal=seasonal,
                                 seasonal_periods=m if seasonal else None, initialization_method="heuristic")
                res = model.fit(disp=False)
            except Exception:  # noqa: BLE001 -- statsmodels raises many kinds; another candidate may fit
                continue
            if np.isfinite(res.aicc) and (best is None or res.aicc < best.aicc):
                best = res
        if best is None:
            raise FitFailed("no ETS candidate could be fitted")
        pred = best.get_prediction(start=len(y), end=len(y) + h - 1)
        mean = np.asarray(pred.predicted_mean, np.float64)
        sd = np.sqrt(np.asarray(pred.forecast_variance, np.float64))
    if not (np.isfinite(mean).all() and np.isfinite(sd).all()):
        raise FitFailed("non-finite ETS forecast")
    return _gaussian(mean, sd, levels)


def arima(y, h: int, m: int, levels, orders=((2, 0, 1),), samples: int = 500, seed: int = 0) -> np.ndarray:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = np.asarray(y, np.float64)
    diff = m > 1 and len(y) > 2 * m
    d = y[m:] - y[:-m] if diff else y
    if np.isfinite(d).sum() < 10:
        raise FitFailed("too few observed values")
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for order in orders:
            try:
                res = SARIMAX(d, order=tuple(int(o) for o in order), trend="n" if diff else "c",
                              concentrate_scale=True).fit(disp=False)
            except Exception:  # noqa: BLE001
                continue
            if np.isfinite(res.aic) and (best is None or res.aic < best.aic):
                best = res
        if best is None:
            raise FitFailed("no ARIMA order could be fitted")
        if not diff:
            f = best.get_forecast(h)
            out = _gaussian(np.asarray(f.predicted_mean), np.sqrt(np.asarray(f.var_pred_mean)), levels)
        elif h <= m:
            f = best.get_forecast(h)
            base = _last_cycle(y, m)[:h]
            out = _gaussian(base + np.asarray(f.predicted_mean), np.sqrt(np.asarray(f.var_pred_mean)), levels)
        else:  # beyond one season the integrated forecast errors are correlated: simulate paths
            sims = np.asarray(best.simulate(h, repetitions=samples, anchor="end",
                                            random_state=np.random.default_rng(seed))).reshape(h, samples)
            hist = np.concatenate([np.repeat(_last_cycle(y, m)[:, None], samples, 1), np.zeros((h, samples))])
            for j in range(h):
                hist[m + j] = hist[j] + sims[j]
            out = np.quantile(hist[m:], levels, axis=1).T
    if not np.isfinite(out).all():
        raise FitFailed("non-finite ARIMA forecast")
    return out

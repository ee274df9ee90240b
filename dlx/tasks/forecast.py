"""Forecasting: probabilistic multi-step forecasts of a panel of series (data family ``forecast``).

Training minimises the model's negative log-likelihood per observed step (Kalman or autoregressive, in
units of the per-window scaled target). Evaluation asks the model for quantile forecasts of every window's
``horizon`` steps and scores them against the truth (missing targets left out):

- ``ql50``, ``ql90``: weighted quantile loss ``2 Σ|(y - ŷ_q)(1{y <= ŷ_q} - q)| / Σ|y|`` over the whole
  split (``dlx.metrics.quantile_loss``; ql50 is the normalised deviation ND) -- the headline is ql50;
- ``mean_wql``: the mean weighted quantile loss over the task's levels (an approximation of CRPS);
- ``mase``: per window, mean |y - ŷ_50| over the in-sample seasonal-naive MAE of its context; averaged;
- ``coverage``: the fraction of targets inside the p10-p90 band (0.8 for calibrated forecasts);
- ``rmse`` of the median; ``loss``: the NLL of the future given the past per step (NaN for baselines
  without a likelihood).

Per example and step the task emits the series, window, time index, target and quantiles, so
``task.save_predictions`` writes the forecasts themselves as CSV (one row per series, window and step).
"""

from __future__ import annotations

import numpy as np
import torch

from dlx.errors import DlxError
from dlx.tasks.base import Task
from dlx.tasks.registry import register_task

REQUIRED = (0.1, 0.5, 0.9)


def level_name(q: float) -> str:
    """0.1 -> 'p10', 0.025 -> 'p2.5'."""
    return f"p{100 * q:g}"


def _forecaster(model):
    inner = getattr(model, "module", model)  # DDP wraps the model
    if not getattr(inner, "is_forecaster", False):
        name = type(inner).__name__
        raise DlxError(f"task=forecast needs a forecaster model (deepstate, deepar, seasonal_naive, ets, "
                       f"arima), got {name}")
    return model


@register_task("forecast")
class Forecast(Task):
    name = "forecast"
    primary = "ql50"
    higher_is_better = False
    accepts = ("forecast",)
    loss_name = "negative log-likelihood per step (scaled target)"

    def __init__(self, cfg=None, meta=None):
        super().__init__(cfg, meta)
        given = list(cfg.get("quantiles", REQUIRED)) if cfg is not None else list(REQUIRED)
        try:
            levels = sorted({round(float(q), 6) for q in [*given, *REQUIRED]})
        except (TypeError, ValueError):
            raise DlxError(f"task.quantiles must be a list of numbers in (0, 1), got {given!r}") from None
        if any(not 0 < q < 1 for q in levels):
            raise DlxError(f"task.quantiles must lie in (0, 1), got {given!r}")
        self.levels = tuple(levels)
        self.names = [level_name(q) for q in self.levels]

    def loss(self, model, batch) -> torch.Tensor:
        nll, n = _forecaster(model)(batch)
        return nll / torch.clamp(torch.as_tensor(n, dtype=nll.dtype, device=nll.device), min=1)

    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        out = _forecaster(model)(batch, levels=self.levels)
        q = out["quantiles"].detach().float()  # (B, H, Q)
        y = batch["future_target"].float()
        B, H = y.shape
        if q.shape != (B, H, len(self.levels)):
            raise RuntimeError(f"forecaster returned quantiles of shape {tuple(q.shape)}, expected "
                               f"{(B, H, len(self.levels))}")
        q = torch.sort(q, -1).values  # quantiles never cross

        def per_step(v):
            return v.reshape(B, 1).expand(B, H).reshape(-1)

        rows = {"series": per_step(batch["series"]), "window": per_step(batch["window"]),
                "example": per_step(batch["example"]),
                "time": (batch["start"].reshape(B, 1) + torch.arange(H, device=y.device)).reshape(-1),
                "step": torch.arange(1, H + 1, device=y.device).repeat(B), "target": y.reshape(-1),
                "mase_scale": per_step(batch["mase_scale"].float())}
        for i, name in enumerate(self.names):
            rows[name] = q[..., i].reshape(-1)
        if "nll" in out:
            rows["nll_sum"] = out["nll"].detach().double().sum()
            rows["nll_n"] = torch.as_tensor(out["nll_n"]).double().sum()
        return rows

    def reduce(self, acc: dict) -> dict[str, float]:
        from dlx.metrics import quantile_loss, rmse

        y = np.asarray(acc["target"], np.float64)
        ok = np.isfinite(y)
        nan = float("nan")
        loss = acc["nll_sum"] / acc["nll_n"] if acc.get("nll_n") else nan
        if not ok.any() or np.abs(y[ok]).sum() == 0:
            return {"loss": loss, "ql50": nan, "ql90": nan, "mean_wql": nan, "mase": nan, "coverage": nan,
                    "rmse": nan}
        t = y[ok]
        pred = {n: np.asarray(acc[n], np.float64)[ok] for n in self.names}
        wql = {q: quantile_loss(t, pred[n], q) for q, n in zip(self.levels, self.names, strict=True)}
        p50 = pred["p50"]
        coverage = float(np.mean((t >= pred["p10"]) & (t <= pred["p90"])))
        ex = np.asarray(acc["example"])[ok]
        scale = np.asarray(acc["mase_scale"], np.float64)[ok]
        err = np.abs(t - p50)
        ids, inv = np.unique(ex, return_inverse=True)
        mae = np.bincount(inv, err) / np.bincount(inv)
        sc = np.bincount(inv, scale) / np.bincount(inv)
        good = np.isfinite(sc) & (sc > 0)
        mase = float(np.mean(mae[good] / sc[good])) if good.any() else nan
        return {"loss": loss, "ql50": wql[0.5], "ql90": wql[0.9],
                "mean_wql": float(np.mean(list(wql.values()))), "mase": mase, "coverage": coverage,
                "rmse": rmse(t, p50)}

"""Forecasters for panels of series (the ``forecast`` data family and task).

Every forecaster is an ``nn.Module`` with ``is_forecaster = True`` whose forward takes a panel batch (a
dict, see dlx/forecast/panel.py) and

- ``forward(batch)`` -> ``(nll_sum, n_obs)``: the negative log-likelihood of the whole window (past and
  future) summed over its observed steps, in units of the scaled target (trainable models only);
- ``forward(batch, levels=(0.1, 0.5, ...))`` -> ``{"quantiles": (B, H, Q) in the target's units, and,
  for models with a likelihood, "nll": (B,) the NLL of the future given the past, "nll_n": (B,)}``.

Models:

- ``deepstate`` (Rangapuram et al. 2018): an LSTM shared by all series maps the time features, covariates
  and series embeddings to the parameters of an ISSM at every step (noise sd σ_t, innovation strengths, a
  residual b_t, and from the first step the prior of l_0); trained by the exact Kalman log-likelihood
  (dlx/forecast/kalman.py); forecasts are the exact Gaussian predictive marginals after filtering the
  context (or quantiles of sampled paths with ``num_samples > 0``).
- ``deepar`` (Salinas et al. 2020): an autoregressive LSTM over lagged targets, features and embeddings with
  a Gaussian or negative-binomial output, forecasts from sampled paths.
- ``seasonal_naive``, ``ets``, ``arima``: parameter-free modules whose forward fits each series on its
  context (dlx/forecast/local.py); ``dlx.train.fit`` evaluates them once as epoch 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlx.errors import DlxError
from dlx.forecast import kalman
from dlx.forecast.issm import ISSM
from dlx.forecast.time import parse_freq
from dlx.models.layers import dropout_p, positive_int
from dlx.models.registry import register_model

GAUSS_CONST = 0.5 * math.log(2 * math.pi)


def _need_panel(meta, name: str) -> dict:
    if meta.task != "forecast":
        raise DlxError(f"model '{name}' forecasts panels of series; data '{meta.name}' is a '{meta.task}' "
                       "dataset (use data=issm_panel, electricity, panel_csv, co2, ...)")
    return meta.extra


def _bounds(cfg, key: str, default) -> tuple[float, float]:
    v = cfg.get(key, default)
    try:
        lo, hi = float(v[0]), float(v[1])
    except (TypeError, ValueError, IndexError):
        lo = hi = float("nan")
    if not (0 < lo < hi) or not math.isfinite(hi):
        raise DlxError(f"model.{key} must be [low, high] with 0 < low < high, got {v!r}")
    return lo, hi


def _bounded(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.sigmoid(x)


def _check_batch(batch) -> None:
    if not isinstance(batch, dict) or "past_target" not in batch:
        raise TypeError("a forecaster takes a panel batch (a dict with past_target, future_target, ...)")


class Embeddings(nn.Module):
    """One embedding per static category (the item id first): (B, K) codes -> (B, sum of dims)."""

    def __init__(self, cardinalities, dim):
        super().__init__()
        dims = [int(dim) if dim else min(50, (int(c) + 1) // 2) for c in cardinalities]
        self.tables = nn.ModuleList(nn.Embedding(int(c), max(d, 1)) for c, d in zip(cardinalities, dims,
                                                                                      strict=True))
        self.dim = sum(max(d, 1) for d in dims)

    def forward(self, static: torch.Tensor) -> torch.Tensor:
        return torch.cat([t(static[:, i]) for i, t in enumerate(self.tables)], -1)


class DeepState(nn.Module):
    is_forecaster = True

    def __init__(self, cfg, meta):
        super().__init__()
        ex = _need_panel(meta, "deepstate")
        freq = parse_freq(ex["freq"])
        self.issm = ISSM.for_freq(freq, trend=bool(cfg.get("trend", False)))
        self.noise = _bounds(cfg, "noise_bounds", (1e-6, 1.0))
        self.innov = _bounds(cfg, "innovation_bounds", (1e-6, 0.01))
        self.prior_sd = _bounds(cfg, "prior_cov_bounds", (1e-6, 1.0))
        self.num_samples = positive_int(cfg, "num_samples", 0, "deepstate", minimum=0)
        self.sample_seed = int(cfg.get("sample_seed", 0) or 0)
        hidden = positive_int(cfg, "hidden", 40, "deepstate")
        layers = positive_int(cfg, "layers", 2, "deepstate")
        self.embed = Embeddings(ex["cardinalities"], cfg.get("embedding_dim"))
        self.lstm = nn.LSTM(int(ex["n_features"]) + self.embed.dim, hidden, layers, batch_first=True,
                            dropout=dropout_p(cfg, "deepstate") if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, 2 + self.issm.n_strengths)  # σ_t, b_t, strengths
        self.prior = nn.Linear(hidden, 2 * self.issm.dim)  # prior mean and sd of l_0

    def _encode(self, feat: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        emb = self.embed(static).unsqueeze(1).expand(-1, feat.shape[1], -1)
        out, _ = self.lstm(torch.cat([feat.float(), emb], -1))
        return out

    def ssm_params(self, batch: dict, length: int | None = None) -> dict:
        """The ISSM parameters of every step of past + future (scaled units, float64)."""
        feat = torch.cat([batch["past_feat"], batch["future_feat"]], 1)
        season = torch.cat([batch["past_season"], batch["future_season"]], 1)
        if length is not None:
            feat, season = feat[:, :length], season[:, :length]
        h = self._encode(feat, batch["static"])
        out = self.head(h).double()
        a = self.issm.emission(season)
        strengths = _bounded(out[..., 2:], *self.innov)
        pr = self.prior(h[:, 0]).double()
        d = self.issm.dim
        return {"F": self.issm.transition(device=a.device), "a": a, "b": out[..., 1],
                "g": self.issm.innovation(strengths, a), "sigma": _bounded(out[..., 0], *self.noise),
                "mu0": pr[:, :d], "P0": torch.diag_embed(_bounded(pr[:, d:], *self.prior_sd) ** 2),
                "strengths": strengths}

    @staticmethod
    def _cut(p: dict, sl: slice) -> tuple:
        return p["F"], p["a"][:, sl], p["b"][:, sl], p["g"][:, sl], p["sigma"][:, sl]

    def forward(self, batch, levels=None):
        _check_batch(batch)
        scale = batch["scale"].double().unsqueeze(1)
        past = batch["past_target"].double() / scale
        P = past.shape[1]
        if levels is None:  # training: the exact likelihood of the whole window
            z = torch.cat([past, batch["future_target"].double() / scale], 1)
            p = self.ssm_params(batch)
            res = kalman.kalman_filter(z, *self._cut(p, slice(None)), p["mu0"], p["P0"])
            return -res.log_lik.sum(), res.n_obs.sum()
        H = batch["future_target"].shape[1]
        p = self.ssm_params(batch)
        res = kalman.kalman_filter(past, *self._cut(p, slice(0, P)), p["mu0"], p["P0"])
        fut = self._cut(p, slice(P, P + H))
        lv = torch.as_tensor(list(levels), dtype=torch.float64, device=past.device)
        if self.num_samples > 0:
            gen = torch.Generator(device=past.device).manual_seed(self.sample_seed)
            paths = kalman.sample(res.mean, res.cov, *fut, steps=H, num_samples=self.num_samples,
                                  generator=gen)
            q = torch.quantile(paths, lv, dim=1).permute(1, 2, 0)  # (B, H, Q)
        else:
            mean, sd = kalman.predict(res.mean, res.cov, *fut, steps=H)
            q = mean.unsqueeze(-1) + sd.unsqueeze(-1) * torch.special.ndtri(lv)
        future = batch["future_target"].double() / scale
        nxt = kalman.kalman_filter(future, *fut, res.mean, res.cov)
        return {"quantiles": (q * scale.unsqueeze(-1)).float(), "nll": -nxt.log_lik, "nll_n": nxt.n_obs}

    @torch.no_grad()
    def decompose(self, batch) -> dict[str, np.ndarray]:
        """The learned structure over past + future, in the target's units: each component's contribution
        to the one-step-ahead mean (filtered through the past, propagated through the future), b_t, σ_t and
        the innovation strengths; (B, P + H) arrays."""
        scale = batch["scale"].double().unsqueeze(1)
        past = batch["past_target"].double() / scale
        P, H = past.shape[1], batch["future_target"].shape[1]
        p = self.ssm_params(batch)
        res = kalman.kalman_filter(past, *self._cut(p, slice(0, P)), p["mu0"], p["P0"], return_means=True)
        means = [res.pred_means]
        m = res.mean
        Fm = p["F"]
        for _ in range(H):
            means.append(m.unsqueeze(1))
            m = (Fm @ m.unsqueeze(-1)).squeeze(-1)
        states = torch.cat(means, 1)  # (B, P + H, d): the state each step's target reads
        parts = self.issm.contributions(states, p["a"])
        out = {f"component_{k}": (v * scale).numpy() for k, v in parts.items()}
        out["residual_b"] = (p["b"] * scale).numpy()
        out["mean"] = sum(out[f"component_{k}"] for k in parts) + out["residual_b"]
        out["sigma"] = (p["sigma"] * scale).numpy()
        names = ["level"] + (["trend"] if self.issm.trend else []) + [s.name for s in self.issm.seasons]
        for i, n in enumerate(names):
            out[f"innovation_{n}"] = (p["strengths"][..., i] * scale).numpy()
        return out


class DeepAR(nn.Module):
    is_forecaster = True

    def __init__(self, cfg, meta):
        super().__init__()
        ex = _need_panel(meta, "deepar")
        self.likelihood = str(cfg.get("likelihood", "gaussian"))
        if self.likelihood not in ("gaussian", "negbin"):
            raise DlxError(f"model.likelihood must be gaussian or negbin, got {self.likelihood!r}")
        if self.likelihood == "negbin" and not ex.get("count_data"):
            raise DlxError(f"model.likelihood=negbin needs non-negative integer targets; '{meta.name}' has "
                           "real values (use likelihood=gaussian)")
        lags = cfg.get("lags", "auto")
        m = int(ex["m"])
        lags = sorted({1, m}) if lags in (None, "auto") else sorted({int(v) for v in lags})
        if not lags or min(lags) < 1:
            raise DlxError(f"model.lags must be 'auto' or a list of integers >= 1, got {cfg.get('lags')!r}")
        if max(lags) >= int(ex["train_window"]) - int(ex["horizon"]):
            raise DlxError(f"model.lags reach {max(lags)} steps back, but training windows have only "
                           f"{int(ex['train_window']) - int(ex['horizon'])} past steps (data.train_window)")
        self.lags = lags
        # the conditioning range at forecast time: what the training windows condition on (GluonTS's
        # context_length); an LSTM unrolled far longer than it was trained on drifts
        ctx = cfg.get("context_length")
        self.context = int(ex["train_window"]) - int(ex["horizon"]) if ctx is None else \
            positive_int(cfg, "context_length", 1, "deepar")
        if self.context <= max(lags):
            raise DlxError(f"model.context_length={self.context} must exceed the longest lag ({max(lags)})")
        self.num_samples = positive_int(cfg, "num_samples", 100, "deepar")
        self.sample_seed = int(cfg.get("sample_seed", 0) or 0)
        hidden = positive_int(cfg, "hidden", 40, "deepar")
        layers = positive_int(cfg, "layers", 2, "deepar")
        self.embed = Embeddings(ex["cardinalities"], cfg.get("embedding_dim"))
        self.lstm = nn.LSTM(len(lags) + int(ex["n_features"]) + self.embed.dim + 1, hidden, layers,
                            batch_first=True, dropout=dropout_p(cfg, "deepar") if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, 2)

    def _lagged(self, z: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """(B, stop - start, n_lags): z_{t - lag} for t in [start, stop), 0 where missing or before z."""
        cols = []
        for lag in self.lags:
            idx = torch.arange(start, stop, device=z.device) - lag
            v = z[:, idx.clamp_min(0)]
            v = torch.where((idx >= 0).unsqueeze(0) & torch.isfinite(v), v, torch.zeros_like(v))
            cols.append(v)
        return torch.stack(cols, -1)

    def _inputs(self, z, feat, static, scale, start, stop):
        emb = self.embed(static).unsqueeze(1).expand(-1, stop - start, -1)
        ls = torch.log(scale).float().view(-1, 1, 1).expand(-1, stop - start, 1)
        return torch.cat([self._lagged(z, start, stop).float(), feat[:, start:stop].float(), emb, ls], -1)

    def _dist(self, out: torch.Tensor, scale: torch.Tensor):
        """(loc, spread) of each step: Gaussian (μ, σ) in scaled units; negbin (mean, α) in counts."""
        if self.likelihood == "gaussian":
            return out[..., 0], F.softplus(out[..., 1]) + 1e-6
        s = scale.view(-1, *([1] * (out.dim() - 2)))
        return (F.softplus(out[..., 0]) + 1e-6) * s, (F.softplus(out[..., 1]) + 1e-6) / s.sqrt()

    def _nll(self, loc, spread, z, scale) -> torch.Tensor:
        """Per-step NLL of ``z`` (scaled for Gaussian; counts = z * scale for negbin), 0 where missing."""
        obs = torch.isfinite(z)
        zz = torch.where(obs, z, torch.zeros_like(z))
        if self.likelihood == "gaussian":
            nll = GAUSS_CONST + torch.log(spread) + 0.5 * ((zz - loc) / spread) ** 2
        else:
            k = torch.round(zz * scale.view(-1, *([1] * (z.dim() - 1))))
            r = 1.0 / spread
            nll = -(torch.lgamma(k + r) - torch.lgamma(k + 1) - torch.lgamma(r)
                    + r * torch.log(r / (r + loc)) + k * torch.log(loc / (r + loc)))
        return torch.where(obs, nll, torch.zeros_like(nll))

    def _draw(self, loc, spread, gen) -> torch.Tensor:
        """One sample per row, in scaled units for Gaussian, counts for negbin."""
        if self.likelihood == "gaussian":
            return loc + spread * torch.randn(loc.shape, generator=gen, device=loc.device, dtype=loc.dtype)
        r = 1.0 / spread
        rate = torch._standard_gamma(r.double(), generator=gen) * (loc / r).double()  # Gamma-Poisson mixture
        return torch.poisson(rate, generator=gen).to(loc.dtype)

    def forward(self, batch, levels=None):
        from dlx.forecast.panel import scale_of

        _check_batch(batch)
        scale = batch["scale"].float()
        past, past_feat = batch["past_target"].float(), batch["past_feat"]
        if levels is not None and past.shape[1] > self.context:  # condition on the trained range only
            past, past_feat = past[:, -self.context:], past_feat[:, -self.context:]
            scale = scale_of(past)
        past = past / scale.unsqueeze(1)
        future = batch["future_target"].float() / scale.unsqueeze(1)
        feat = torch.cat([past_feat, batch["future_feat"]], 1)
        P, H = past.shape[1], future.shape[1]
        z = torch.cat([past, future], 1)
        first = max(self.lags)
        if levels is None:  # training: teacher forcing over the window, scored after the longest lag
            out, _ = self.lstm(self._inputs(z, feat, batch["static"], scale, 0, P + H))
            loc, spread = self._dist(self.head(out[:, first:]), scale)
            nll = self._nll(loc, spread, z[:, first:], scale)
            return nll.sum(), torch.isfinite(z[:, first:]).sum()
        ctx, state = self.lstm(self._inputs(z, feat, batch["static"], scale, 0, P))
        # the future's NLL given the past (teacher forcing continues from the context's state)
        fut, _ = self.lstm(self._inputs(z, feat, batch["static"], scale, P, P + H), state)
        loc, spread = self._dist(self.head(fut), scale)
        nll = self._nll(loc, spread, future, scale)
        # sampled paths
        S, B = self.num_samples, past.shape[0]
        gen = torch.Generator(device=past.device).manual_seed(self.sample_seed)
        rep = lambda t: t.repeat_interleave(S, 0)  # noqa: E731
        seq = torch.cat([rep(past), torch.zeros(B * S, H, device=past.device)], 1)
        h = tuple(s.repeat_interleave(S, 1) for s in state)
        feat_r, static_r, scale_r = rep(feat), rep(batch["static"]), rep(scale)
        draws = []
        for t in range(P, P + H):
            o, h = self.lstm(self._inputs(seq, feat_r, static_r, scale_r, t, t + 1), h)
            loc_t, spread_t = self._dist(self.head(o[:, 0]), scale_r)
            draw = self._draw(loc_t, spread_t, gen)  # scaled (Gaussian) or counts (negbin)
            seq[:, t] = draw if self.likelihood == "gaussian" else draw / scale_r
            draws.append(draw * scale_r if self.likelihood == "gaussian" else draw)
        paths = torch.stack(draws, 1).reshape(B, S, H)
        lv = torch.as_tensor(list(levels), dtype=paths.dtype, device=paths.device)
        # count paths have count quantiles (the sample's own values, not interpolations)
        how = "linear" if self.likelihood == "gaussian" else "nearest"
        q = torch.quantile(paths, lv, dim=1, interpolation=how).permute(1, 2, 0)
        return {"quantiles": q, "nll": nll.sum(1).double(), "nll_n": torch.isfinite(future).sum(1)}


class LocalForecaster(nn.Module):
    """A parameter-free module that fits ``fn`` (dlx/forecast/local.py) to each series' context in its
    forward. Forecasts are deterministic, so a batch seen before is answered from a cache (the fit loop's
    evaluation and the run's forecast table ask for the same windows)."""

    is_forecaster = True
    per_row_fit = True  # its evaluation costs the same per row in any batch (dlx/estimate.py samples rows)

    def __init__(self, name: str, fn, season, m: int, **kwargs):
        super().__init__()
        self.name, self.fn, self.kwargs = name, fn, kwargs
        self.m = int(m) if season is None else positive_int({"season": season}, "season", 1, name)
        self.fallbacks = 0  # fits that failed and fell back to seasonal naive
        self.fits = 0
        self._cache: dict = {}

    def forward(self, batch, levels=None):
        from dlx.forecast.local import FitFailed, seasonal_naive

        _check_batch(batch)
        if levels is None:
            raise DlxError(f"model '{self.name}' is fitted per series at forecast time; it has nothing to "
                           "train")
        past = batch["past_target"].detach().cpu().double().numpy()
        H = int(batch["future_target"].shape[1])
        key = (tuple(batch["series"].tolist()), tuple(batch["start"].tolist()), past.shape, H, tuple(levels))
        if key not in self._cache:
            out = np.empty((len(past), H, len(levels)))
            for i, y in enumerate(past):
                self.fits += 1
                try:
                    out[i] = self.fn(y, H, self.m, list(levels), **self.kwargs)
                except FitFailed:
                    self.fallbacks += 1
                    out[i] = seasonal_naive(y, H, self.m, list(levels))
            self._cache = {key: out}  # one batch is enough to answer a repeated evaluation
        q = torch.as_tensor(self._cache[key], dtype=torch.float32, device=batch["past_target"].device)
        return {"quantiles": q}


@register_model("deepstate")
def build_deepstate(cfg, meta) -> nn.Module:
    return DeepState(cfg, meta)


@register_model("deepar")
def build_deepar(cfg, meta) -> nn.Module:
    return DeepAR(cfg, meta)


@register_model("seasonal_naive")
def build_seasonal_naive(cfg, meta) -> nn.Module:
    from dlx.forecast.local import seasonal_naive

    ex = _need_panel(meta, "seasonal_naive")
    return LocalForecaster("seasonal_naive", seasonal_naive, cfg.get("season"), ex["m"])


@register_model("ets")
def build_ets(cfg, meta) -> nn.Module:
    from dlx.forecast.local import ets

    ex = _need_panel(meta, "ets")
    trends = list(cfg.get("trends", ["none", "add", "add_damped"]))
    bad = [t for t in trends if t not in ("none", "add", "add_damped")]
    if not trends or bad:
        raise DlxError(f"model.trends must be a non-empty list of none, add, add_damped; got {trends!r}")
    return LocalForecaster("ets", ets, cfg.get("season"), ex["m"], trends=tuple(trends))


@register_model("arima")
def build_arima(cfg, meta) -> nn.Module:
    from dlx.forecast.local import arima

    ex = _need_panel(meta, "arima")
    orders = [tuple(o) for o in cfg.get("orders", [[2, 0, 1]])]
    if not orders or any(len(o) != 3 or any(int(v) < 0 for v in o) for o in orders):
        raise DlxError(f"model.orders must be a list of [p, d, q] with non-negative integers, got {orders!r}")
    return LocalForecaster("arima", arima, cfg.get("season"), ex["m"], orders=tuple(orders),
                           samples=positive_int(cfg, "samples", 500, "arima"),
                           seed=int(cfg.get("sample_seed", 0)))

"""A panel of time series and its forecasting splits.

A ``Panel`` holds many series on one regular time grid: a target matrix (NaN where a value is missing or
a series has not started), item ids, optional static categories and time-varying covariates; time
features and seasons follow from the frequency (dlx/forecast/time.py).

``make_bundle`` turns a panel into dlx's DataBundle for the ``forecast`` task:

- a forecast start T0 (``forecast_start``; default: ``rolling x horizon`` steps before the end);
- the test split: for every series and rolling window k = 0..rolling-1, the ``context_length`` steps before
  T0 + k*horizon (the history a model conditions on) and the ``horizon`` steps after (the truth);
- the training split: windows of ``train_window`` steps (the last ``horizon`` of them play the future)
  sampled per series from the ``train_range`` steps before T0 -- every start ``train_stride`` apart; the fit
  loop shuffles them.

Series whose history before T0 is shorter than the context are skipped and reported (``notes``).
A batch is a dict of tensors (see ``WindowSplit.batches``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dlx.data.bundle import DataBundle, Meta
from dlx.errors import DlxError
from dlx.forecast.time import Freq, grid, period, season_indices, steps_of, time_features


@dataclass
class Panel:
    name: str
    freq: Freq
    start: object  # pandas Period of step 0
    target: np.ndarray  # (series, steps) float64, NaN = missing
    item_ids: list[str]
    static: np.ndarray | None = None  # (series, k) int64 category codes
    static_names: list[str] = field(default_factory=list)
    cardinalities: list[int] = field(default_factory=list)
    covariates: np.ndarray | None = None  # (series, steps, c) float32, known in the future too
    covariate_names: list[str] = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, np.float64)
        if self.target.ndim != 2 or self.target.shape[0] < 1 or self.target.shape[1] < 2:
            raise DlxError(f"panel '{self.name}' needs at least one series of two or more steps, got shape "
                           f"{self.target.shape}")
        if len(self.item_ids) != self.target.shape[0]:
            raise DlxError(f"panel '{self.name}': {len(self.item_ids)} item ids for {self.target.shape[0]} "
                           "series")

    @property
    def steps(self) -> int:
        return self.target.shape[1]

    def index(self):
        return grid(self.start, self.steps, self.freq)

    def select(self, keep: np.ndarray) -> Panel:
        keep = np.asarray(keep)
        return Panel(self.name, self.freq, self.start, self.target[keep], [self.item_ids[i] for i in keep],
                     None if self.static is None else self.static[keep], list(self.static_names),
                     list(self.cardinalities), None if self.covariates is None else self.covariates[keep],
                     list(self.covariate_names), dict(self.notes))


class WindowSplit:
    """Windows of a panel: ``past`` steps to condition on followed by ``future`` steps to forecast, for
    the (series, begin) pairs given. The panel's tensors are shared by all windows; batches are gathered
    on the fly."""

    def __init__(self, tensors: dict, series, begin, past: int, future: int, window, m: int):
        self.t = tensors
        self.series = torch.as_tensor(series, dtype=torch.long)
        self.begin = torch.as_tensor(begin, dtype=torch.long)
        self.window = torch.as_tensor(window, dtype=torch.long)
        self.past, self.future, self.m = int(past), int(future), int(m)

    def __len__(self) -> int:
        return len(self.series)

    def to(self, device) -> WindowSplit:
        tensors = {k: (None if v is None else v.to(device)) for k, v in self.t.items()}
        return WindowSplit(tensors, self.series.to(device), self.begin.to(device), self.past, self.future,
                           self.window.to(device), self.m)

    def take(self, index) -> WindowSplit:
        return WindowSplit(self.t, self.series[index], self.begin[index], self.past, self.future,
                           self.window[index], self.m)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for i in range(0, n, batch_size):
            yield self.gather(order[i : i + batch_size].to(self.series.device))

    def gather(self, idx: torch.Tensor) -> dict:
        """The batch of windows ``idx``: a dict of tensors with a leading example axis."""
        s, b = self.series[idx], self.begin[idx]
        steps = b.unsqueeze(1) + torch.arange(self.past + self.future, device=b.device)  # (B, L)
        target = self.t["target"][s.unsqueeze(1), steps]
        feat = self.t["time_feat"][steps]
        if self.t.get("covariates") is not None:
            feat = torch.cat([feat, self.t["covariates"][s.unsqueeze(1), steps]], -1)
        season = self.t["season"][steps]
        p = self.past
        past = target[:, :p]
        return {"past_target": past, "future_target": target[:, p:], "past_feat": feat[:, :p],
                "future_feat": feat[:, p:], "past_season": season[:, :p], "future_season": season[:, p:],
                "static": self.t["static"][s], "scale": scale_of(past),
                "mase_scale": mase_scale(past, self.m),
                "series": s, "example": idx, "window": self.window[idx], "start": b + p}


def scale_of(past: torch.Tensor) -> torch.Tensor:
    """Mean absolute value of the observed past per window (1 where that is 0 or undefined)."""
    obs = torch.isfinite(past)
    total = torch.where(obs, past.abs(), torch.zeros_like(past)).sum(1)
    s = total / obs.sum(1).clamp_min(1)
    return torch.where(s > 0, s, torch.ones_like(s))


def mase_scale(past: torch.Tensor, m: int) -> torch.Tensor:
    """MASE's denominator: the mean absolute seasonal difference |z_t - z_{t-m}| over the observed past
    (NaN where the past has no such pair or the differences are all 0)."""
    if past.shape[1] <= m:
        return torch.full((past.shape[0],), float("nan"), dtype=past.dtype, device=past.device)
    d = past[:, m:] - past[:, :-m]
    obs = torch.isfinite(d)
    s = torch.where(obs, d.abs(), torch.zeros_like(d)).sum(1) / obs.sum(1).clamp_min(1)
    return torch.where((obs.sum(1) > 0) & (s > 0), s, torch.full_like(s, float("nan")))


def _opt(cfg, key, default=None):
    return cfg.get(key, default) if cfg is not None else default


def _int(value, key: str, lo: int) -> int:
    from dlx.config import number

    return number(value, key, lo=lo, integer=True)


@dataclass
class Layout:
    """Where the splits of a panel lie, in steps."""

    horizon: int
    rolling: int
    t0: int  # index of the forecast start
    train_range: int
    context: int
    window: int
    stride: int


def layout(panel: Panel, cfg) -> Layout:
    """The split settings of ``cfg`` checked against the panel: one clear error for each impossible one."""
    freq = panel.freq
    horizon = _int(_opt(cfg, "horizon", 1), "data.horizon", 1)
    rolling = _int(_opt(cfg, "rolling", 1), "data.rolling (number of rolling forecast windows)", 1)
    need = horizon * rolling
    fs = _opt(cfg, "forecast_start")
    if fs is None:
        t0 = panel.steps - need
    else:
        t0 = int((period(fs, freq) - panel.start).n)
    first = panel.index()
    if fs is None and t0 < 1:  # no forecast start asked for: the panel is too short for the windows
        raise DlxError(f"'{panel.name}' has {panel.steps} steps (from {first[0]} to {first[-1]}), but "
                       f"rolling x horizon = {rolling} x {horizon} = {need} steps to forecast plus at least "
                       f"one step of history need {need + 1}; give a smaller data.horizon or data.rolling, "
                       "or a longer series")
    if t0 + need > panel.steps or t0 < 1:
        where = first[min(max(t0, 0), panel.steps - 1)] if fs is None else fs
        raise DlxError(f"data.forecast_start={where} leaves {max(panel.steps - t0, 0)} steps of "
                       f"'{panel.name}' after it (from {first[0]} to {first[-1]}), but rolling x horizon = "
                       f"{rolling} x {horizon} = {need} are needed")
    rng = steps_of(_opt(cfg, "train_range"), freq, "data.train_range")
    rng = t0 if rng is None else rng
    if rng < 1 or rng > t0:
        raise DlxError(f"data.train_range={_opt(cfg, 'train_range')} is {rng} steps, but '{panel.name}' has "
                       f"{t0} steps before the forecast start {first[t0]}")
    ctx = steps_of(_opt(cfg, "context_length"), freq, "data.context_length")
    ctx = rng if ctx is None else ctx
    cycle = freq.longest_cycle
    if ctx < max(cycle, 2):
        longest = max(freq.seasons, key=lambda s: s.cycle).name if freq.seasons else "a step"
        raise DlxError(f"the context of {ctx} steps is shorter than a season ({longest} repeats every "
                       f"{cycle} {freq.label} steps); set data.context_length/data.train_range to at least "
                       f"{max(cycle, 2)}")
    if ctx > t0:
        raise DlxError(f"data.context_length={ctx} steps, but '{panel.name}' has {t0} steps before the "
                       f"forecast start")
    win = steps_of(_opt(cfg, "train_window"), freq, "data.train_window")
    win = rng if win is None else win
    if win <= horizon or win > rng:
        raise DlxError(f"data.train_window={win} steps must exceed the horizon ({horizon}) and fit in the "
                       f"training range ({rng} steps)")
    stride = _int(_opt(cfg, "train_stride", 1), "data.train_stride", 1)
    return Layout(horizon, rolling, t0, rng, ctx, win, stride)


def refuse_class_keys(cfg, name: str) -> None:
    """data/_common.yaml's classification keys mean nothing for a panel of series."""
    if float(_opt(cfg, "label_noise", 0.0) or 0.0) != 0.0:
        raise DlxError(f"data.label_noise is for classification data; '{name}' is a panel of series")
    if _opt(cfg, "augment", False):
        raise DlxError(f"data.augment is for images; '{name}' is a panel of series")
    if _opt(cfg, "n_train") is not None:
        raise DlxError(f"data.n_train subsets classification data; for '{name}' set data.series (how many "
                       "series) or data.train_range (how much history)")
    if float(_opt(cfg, "val_fraction", 0.0) or 0.0) != 0.0:
        raise DlxError(f"data.val_fraction is not used by '{name}': forecasts are scored on the windows "
                       "after data.forecast_start")


def make_bundle(panel: Panel, cfg) -> DataBundle:
    """The forecasting DataBundle of ``panel`` under the split settings of ``cfg`` (module docstring)."""
    refuse_class_keys(cfg, panel.name)
    n = _opt(cfg, "series")
    if n is not None:
        n = _int(n, "data.series (how many series)", 1)
        panel = panel.select(np.arange(min(n, len(panel.item_ids))))
    lay = layout(panel, cfg)
    freq, index = panel.freq, panel.index()
    obs = np.isfinite(panel.target)
    first_obs = np.where(obs.any(1), obs.argmax(1), panel.steps)
    # data.val_windows: the same protocol one test span earlier (rolling windows ending at the forecast
    # start) as a validation split; training ends where those windows begin, so nothing after it is seen
    val_windows = bool(_opt(cfg, "val_windows", False))
    end = lay.t0 - lay.rolling * lay.horizon if val_windows else lay.t0
    if val_windows and (end - lay.context < 0 or end - lay.train_range < 0):
        raise DlxError(f"data.val_windows needs the context ({lay.context} steps) and the training range "
                       f"({lay.train_range} steps) before the validation windows, which start "
                       f"{lay.rolling} x {lay.horizon} steps before {index[lay.t0]}; '{panel.name}' has "
                       f"{max(end, 0)} steps there")
    ctx_begin = min(lay.t0, end) - lay.context
    keep = np.flatnonzero(first_obs <= ctx_begin)
    skipped = [{"item_id": panel.item_ids[i],
                "reason": ("no observations" if first_obs[i] >= panel.steps else
                           f"starts at {index[first_obs[i]]}, after the context start {index[ctx_begin]}"
                           if first_obs[i] < lay.t0 else f"no observations before the forecast start "
                                                          f"{index[lay.t0]}")}
               for i in np.setdiff1d(np.arange(len(panel.item_ids)), keep)]
    if len(keep) == 0:
        raise DlxError(f"every series of '{panel.name}' is shorter than the context ({lay.context} steps "
                       f"before {index[lay.t0]}): nothing to forecast")
    # test: every kept series x rolling window
    ser = np.repeat(keep, lay.rolling)
    win = np.tile(np.arange(lay.rolling), len(keep))
    begin = lay.t0 + win * lay.horizon - lay.context
    # train: windows inside the training range whose past part has an observation
    starts = np.arange(end - lay.train_range, end - lay.window + 1, lay.stride)
    tr_s, tr_b = np.repeat(keep, len(starts)), np.tile(starts, len(keep))
    cum = np.concatenate([np.zeros((obs.shape[0], 1), np.int64), np.cumsum(obs, 1)], 1)
    past_len = lay.window - lay.horizon
    has = (cum[tr_s, tr_b + past_len] - cum[tr_s, tr_b]) > 0
    tr_s, tr_b = tr_s[has], tr_b[has]
    if len(tr_s) == 0:
        raise DlxError(f"'{panel.name}' has no training window with an observation in its training range")

    static = np.arange(len(panel.item_ids))[:, None]
    cards = [len(panel.item_ids)]
    names = ["item_id"]
    if panel.static is not None and panel.static.size:
        static = np.concatenate([static, panel.static], 1)
        cards += list(panel.cardinalities)
        names += list(panel.static_names)
    # copies: a panel's arrays may be read-only views (statsmodels data), which torch must not wrap
    tensors = {"target": torch.tensor(np.asarray(panel.target), dtype=torch.float32),
               "time_feat": torch.tensor(np.asarray(time_features(index, freq))),
               "season": torch.tensor(np.asarray(season_indices(index, freq))),
               "static": torch.tensor(np.asarray(static), dtype=torch.long),
               "covariates": None if panel.covariates is None or not panel.covariates.size else
               torch.tensor(np.asarray(panel.covariates), dtype=torch.float32)}
    n_feat = tensors["time_feat"].shape[1] + (0 if tensors["covariates"] is None else
                                              tensors["covariates"].shape[2])
    test = WindowSplit(tensors, ser, begin, lay.context, lay.horizon, win, freq.m)
    val = None if not val_windows else \
        WindowSplit(tensors, ser, begin - lay.rolling * lay.horizon, lay.context, lay.horizon, win, freq.m)
    train = WindowSplit(tensors, tr_s, tr_b, past_len, lay.horizon, np.full(len(tr_s), -1), freq.m)
    values = panel.target[np.isfinite(panel.target)]
    meta = Meta(panel.name, "forecast", (lay.context, max(n_feat, 1)), num_outputs=lay.horizon,
                feature_names=list(freq.features) + list(panel.covariate_names),
                extra={"freq": freq.code, "horizon": lay.horizon, "rolling": lay.rolling,
                       "context_length": lay.context, "train_range": lay.train_range,
                       "train_window": lay.window, "forecast_start": str(index[lay.t0]), "t0": lay.t0,
                       "start": str(panel.start), "steps": panel.steps, "n_series": len(panel.item_ids),
                       "n_kept": int(len(keep)), "item_ids": list(panel.item_ids), "cardinalities": cards,
                       "static_names": names, "n_features": n_feat, "m": freq.m,
                       "seasons": [[s.name, s.states, s.cycle] for s in freq.seasons],
                       "count_data": bool(values.size and (values >= 0).all()
                                          and np.allclose(values, np.round(values)))})
    notes = {"skipped_series": skipped, **panel.notes}
    return DataBundle(train=train, test=test, val=val, meta=meta, notes=notes)

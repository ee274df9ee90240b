"""A seeded synthetic panel drawn from a known ISSM: hourly series, each with its own level, daily and weekly
seasonal pattern, noise scale and innovation strengths, simulated with exactly the model DeepState fits
(level + hour-of-day + day-of-week components, one scalar innovation ε_t per step shared by the blocks):

    z_t = l_{t-1} + s^day_{t-1}[hour(t)] + s^week_{t-1}[weekday(t)] + σ ε'_t
    l_t = l_{t-1} + α ε_t,   s^day[hour(t)] += γ_day ε_t,   s^week[weekday(t)] += γ_week ε_t

Per series i (all drawn from ``numpy.random.default_rng(seed)``):

- level l_0 log-uniform in ``level`` (so series differ in scale, as in electricity);
- daily pattern: two harmonics of the 24-hour cycle with random phases, peak-to-peak amplitude a fraction
  ``daily`` of the level; weekly pattern: 7 standard-normal day effects, centred, scaled to a fraction
  ``weekly`` of the level;
- σ_i a fraction ``noise`` of the level; α_i and γ_i fractions ``level_innovation`` and
  ``seasonal_innovation`` of the level.

``truth`` keeps every parameter, so tests can check what a model recovers (noise scale, seasonality).
"""

from __future__ import annotations

import numpy as np

from dlx.errors import DlxError


def _range(v, key: str) -> tuple[float, float]:
    lo, hi = (float(v), float(v)) if isinstance(v, (int, float)) else (float(v[0]), float(v[1]))
    if not (0 <= lo <= hi) or not np.isfinite(hi):
        raise DlxError(f"data.{key} must be a number or [low, high] with 0 <= low <= high, got {v!r}")
    return lo, hi


def issm_panel(series: int = 40, days: int = 42, seed: int = 0, level=(10.0, 1000.0), noise=(0.04, 0.12),
               daily=(0.3, 0.8), weekly=(0.1, 0.3), level_innovation=(0.002, 0.008),
               seasonal_innovation=(0.002, 0.008)) -> tuple[np.ndarray, dict]:
    """(target (series, days*24), truth) of the hourly ISSM panel described in the module docstring; the
    first step is a Monday 00:00."""
    if int(series) < 1 or int(days) < 1:
        raise DlxError(f"data.series and data.days must be >= 1, got {series} and {days}")
    rng = np.random.default_rng(int(seed))
    S, T = int(series), int(days) * 24
    lo, hi = _range(level, "level")
    if lo <= 0:
        raise DlxError(f"data.level must be positive, got {level!r}")
    level0 = np.exp(rng.uniform(np.log(lo), np.log(hi), S))
    frac = {k: rng.uniform(*_range(v, k), S) for k, v in
            (("noise", noise), ("daily", daily), ("weekly", weekly), ("level_innovation", level_innovation),
             ("seasonal_innovation", seasonal_innovation))}
    hours = np.arange(24)
    day = np.zeros((S, 24))
    for k in (1, 2):
        phase = rng.uniform(0, 2 * np.pi, S)
        amp = rng.uniform(0.5, 1.0, S) / k
        day += amp[:, None] * np.cos(2 * np.pi * k * hours[None] / 24 + phase[:, None])
    day /= np.ptp(day, 1, keepdims=True)
    day *= (frac["daily"] * level0)[:, None]
    week = rng.standard_normal((S, 7))
    week -= week.mean(1, keepdims=True)
    week /= np.ptp(week, 1, keepdims=True)
    week *= (frac["weekly"] * level0)[:, None]
    sigma = frac["noise"] * level0
    alpha = frac["level_innovation"] * level0
    gamma = frac["seasonal_innovation"] * level0
    lev, sd, sw = level0.copy(), day.copy(), week.copy()
    z = np.empty((S, T))
    rows = np.arange(S)
    eps, eps_obs = rng.standard_normal((S, T)), rng.standard_normal((S, T))
    for t in range(T):
        h, w = t % 24, (t // 24) % 7  # step t is hour h of weekday w (0 = Monday)
        z[:, t] = lev + sd[rows, h] + sw[rows, w] + sigma * eps_obs[:, t]
        lev = lev + alpha * eps[:, t]
        sd[:, h] += gamma * eps[:, t]
        sw[:, w] += gamma * eps[:, t]
    truth = {"level0": level0, "sigma": sigma, "alpha": alpha, "gamma_day": gamma, "gamma_week": gamma,
             "daily": day, "weekly": week, "final_level": lev, "final_daily": sd, "final_weekly": sw}
    return z, truth

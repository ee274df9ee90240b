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

The negative control, :func:`nonlinear_panel` (``data.generator=nonlinear``), keeps everything of this
panel but the premise DeepState exploits, that the series *are* a linear-Gaussian ISSM. Drawn from the same
seed, each series has the same scale l_0, the same daily and weekly patterns and the same noise fraction
(the same draws, in the same order), the same length, start and hourly frequency; what changes is how they
evolve:

    r_t ∈ {0, 1}: a two-state Markov regime per series, flipping with probability 1/(24 d) per hour
                  (d uniform in ``regime_days``: a few days between switches);
    m_t = 1 + j (r_t - 1/2):                  the level jumps between (1 ± j/2) l_0 (j in ``regime_jump``),
                                              no random walk;
    μ_t = l_0 m_t (1 + (1 + κ (2 r_t - 1)) d[hour(t)] + w[weekday(t)]):
                                              the season is multiplicative (it scales with the level) and its
                                              daily swing switches with the regime (κ = ``season_swing``);
    z_t = μ_t + σ (μ_t / l_0) ε_t,  ε_t ~ Student-t(ν) scaled to unit variance (ν = ``tail_df``):
                                              heteroscedastic (the noise sd follows the current value) and
                                              heavy-tailed.

Nothing of that is a linear-Gaussian state-space model: the level moves by jumps of a hidden discrete
state, the season multiplies the level and changes shape with the regime, the noise is neither constant
nor Gaussian. On average it matches the default: the regimes are equally likely, so m_t averages to 1 and
the noise sd to about σ; the daily swing averages to the default's (times 1 + jκ/2, at most 1.06).
Its ``truth`` holds the time-averaged counterparts of the default's (``sigma``: the realised mean noise
sd; ``daily``, ``weekly``: the base patterns in target units) plus the regime path, so the same recovery
table can be read on it.
"""

from __future__ import annotations

import numpy as np

from dlx.errors import DlxError


def _range(v, key: str) -> tuple[float, float]:
    lo, hi = (float(v), float(v)) if isinstance(v, (int, float)) else (float(v[0]), float(v[1]))
    if not (0 <= lo <= hi) or not np.isfinite(hi):
        raise DlxError(f"data.{key} must be a number or [low, high] with 0 <= low <= high, got {v!r}")
    return lo, hi


def _draw_series(rng, series, days, level, noise, daily, weekly, level_innovation, seasonal_innovation):
    """Per series: the initial level, the fractions (noise, daily, weekly, innovations) and the daily and
    weekly patterns in target units -- the draws both generators share, in this order."""
    if int(series) < 1 or int(days) < 1:
        raise DlxError(f"data.series and data.days must be >= 1, got {series} and {days}")
    S = int(series)
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
    return level0, frac, day, week


def issm_panel(series: int = 40, days: int = 42, seed: int = 0, level=(10.0, 1000.0), noise=(0.04, 0.12),
               daily=(0.3, 0.8), weekly=(0.1, 0.3), level_innovation=(0.002, 0.008),
               seasonal_innovation=(0.002, 0.008)) -> tuple[np.ndarray, dict]:
    """(target (series, days*24), truth) of the hourly ISSM panel described in the module docstring; the
    first step is a Monday 00:00."""
    rng = np.random.default_rng(int(seed))
    level0, frac, day, week = _draw_series(rng, series, days, level, noise, daily, weekly, level_innovation,
                                           seasonal_innovation)
    S, T = len(level0), int(days) * 24
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


def nonlinear_panel(series: int = 40, days: int = 42, seed: int = 0, level=(10.0, 1000.0), noise=(0.04, 0.12),
                    daily=(0.3, 0.8), weekly=(0.1, 0.3), level_innovation=(0.002, 0.008),
                    seasonal_innovation=(0.002, 0.008), regime_jump=(0.2, 0.4), regime_days=(2.0, 5.0),
                    season_swing: float = 0.3, tail_df: float = 4.0) -> tuple[np.ndarray, dict]:
    """(target (series, days*24), truth) of the negative control described in the module docstring: the
    default's series (same seed, same scale, patterns and noise fraction; the innovation ranges are drawn
    only to keep the draws aligned) evolving by regime switches, a multiplicative regime-dependent season
    and heteroscedastic Student-t noise instead of an ISSM."""
    jump_lo, jump_hi = _range(regime_jump, "regime_jump")
    days_lo, days_hi = _range(regime_days, "regime_days")
    if jump_hi >= 2 or days_lo <= 0:
        raise DlxError(f"data.regime_jump must lie in [0, 2) and data.regime_days be positive, got "
                       f"{regime_jump!r} and {regime_days!r}")
    if not 0 <= float(season_swing) < 1 or not float(tail_df) > 2:
        raise DlxError(f"data.season_swing must lie in [0, 1) and data.tail_df be > 2 (finite variance), got "
                       f"{season_swing!r} and {tail_df!r}")
    rng = np.random.default_rng(int(seed))
    level0, frac, day, week = _draw_series(rng, series, days, level, noise, daily, weekly, level_innovation,
                                           seasonal_innovation)
    S, T = len(level0), int(days) * 24
    jump = rng.uniform(jump_lo, jump_hi, S)
    flip = 1.0 / (24.0 * rng.uniform(days_lo, days_hi, S))  # per-hour switching probability
    regime = np.empty((S, T), np.int64)
    regime[:, 0] = rng.integers(0, 2, S)
    flips = rng.random((S, T)) < flip[:, None]
    for t in range(1, T):
        regime[:, t] = np.where(flips[:, t], 1 - regime[:, t - 1], regime[:, t - 1])
    t = np.arange(T)
    hour, weekday = t % 24, (t // 24) % 7  # step t is hour h of weekday w (0 = Monday)
    up = 2.0 * regime - 1.0  # -1 | +1
    m = 1.0 + jump[:, None] * up / 2.0
    d = day[:, hour] / level0[:, None]
    w = week[:, weekday] / level0[:, None]
    mean = level0[:, None] * m * (1.0 + (1.0 + float(season_swing) * up) * d + w)
    nu = float(tail_df)
    eps = rng.standard_t(nu, (S, T)) / np.sqrt(nu / (nu - 2.0))
    sd = (frac["noise"] * level0)[:, None] * mean / level0[:, None]
    z = mean + sd * eps
    truth = {"level0": level0, "sigma": np.sqrt((sd ** 2).mean(1)), "daily": day, "weekly": week,
             "regime": regime, "jump": jump, "flip": flip, "mean": mean}
    return z, truth

"""Frequencies, the time grid of a panel, time features and seasons.

A panel lives on a regular grid of pandas Periods at one frequency: step ``i`` of a panel is the period
``start + i``. A frequency decides

- the time features a network sees (hour of day, day of week, ... each scaled to [-0.5, 0.5]);
- the seasonal components of an ISSM: each is a set of ``states`` seasons, one of which is active at a
  step (the hour of the day, the day of the week, ...), and it repeats every ``cycle`` steps;
- the season length ``m`` of seasonal naive forecasts and of MASE's scale (the shortest cycle; 1 if none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlx.errors import DlxError


@dataclass(frozen=True)
class Season:
    name: str
    states: int  # how many seasons the component has (24 hours of the day)
    cycle: int  # steps after which the pattern repeats (168 for day of week at hourly frequency)


@dataclass(frozen=True)
class Freq:
    code: str  # H, D, W, M, Q, Y
    period: str  # the pandas Period frequency
    label: str  # 'hourly', ...
    seasons: tuple[Season, ...]
    features: tuple[str, ...]
    per_day: float  # steps per day (for durations such as "14D")

    @property
    def m(self) -> int:
        """The season length of seasonal naive and MASE: the shortest cycle (1 without seasons)."""
        return min((s.cycle for s in self.seasons), default=1)

    @property
    def longest_cycle(self) -> int:
        return max((s.cycle for s in self.seasons), default=1)


FREQS = {
    "H": Freq("H", "h", "hourly", (Season("hour_of_day", 24, 24), Season("day_of_week", 7, 168)),
              ("hour_of_day", "day_of_week", "day_of_month", "day_of_year"), 24.0),
    "D": Freq("D", "D", "daily", (Season("day_of_week", 7, 7),),
              ("day_of_week", "day_of_month", "day_of_year"), 1.0),
    "W": Freq("W", "W", "weekly", (Season("week_of_year", 53, 52),), ("week_of_year", "month_of_year"),
              1 / 7),
    "M": Freq("M", "M", "monthly", (Season("month_of_year", 12, 12),), ("month_of_year",), 1 / 30.4375),
    "Q": Freq("Q", "Q", "quarterly", (Season("quarter_of_year", 4, 4),), ("quarter_of_year",), 1 / 91.3125),
    "Y": Freq("Y", "Y", "yearly", (), (), 1 / 365.25),
}
ALIASES = {"h": "H", "hourly": "H", "1h": "H", "d": "D", "daily": "D", "w": "W", "weekly": "W", "m": "M",
           "monthly": "M", "ms": "M", "q": "Q", "qs": "Q", "quarterly": "Q", "y": "Y", "a": "Y", "ys": "Y",
           "yearly": "Y", "annual": "Y"}


def parse_freq(code) -> Freq:
    """'H' (or 'h', 'hourly') -> the Freq record; anything else is one clear error."""
    key = str(code).strip()
    key = key if key in FREQS else ALIASES.get(key.lower(), key.upper() if key.upper() in FREQS else None)
    if key not in FREQS:
        raise DlxError(f"unknown frequency '{code}' (choose from: {', '.join(FREQS)})")
    return FREQS[key]


def to_periods(timestamps, freq: Freq):
    """Timestamps (strings or datetimes) -> a PeriodIndex at ``freq`` (each timestamp's period)."""
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(timestamps)).to_period(freq.period)


def period(value, freq: Freq):
    """One timestamp (or period string) -> its Period at ``freq``, or a clear error."""
    import pandas as pd

    try:
        return pd.Timestamp(value).to_period(freq.period)
    except (ValueError, TypeError) as err:
        raise DlxError(f"cannot read '{value}' as a time ({err})") from None


def grid(start, steps: int, freq: Freq):
    """The PeriodIndex of ``steps`` periods from ``start`` (a Period)."""
    import pandas as pd

    return pd.period_range(start=start, periods=int(steps), freq=freq.period)


def _calendar(index, name: str) -> np.ndarray:
    """Zero-based calendar position of each period: value and number of values."""
    ts = index.to_timestamp(how="start")
    if name == "hour_of_day":
        return np.asarray(ts.hour), 24
    if name == "day_of_week":
        return np.asarray(ts.day_of_week), 7
    if name == "day_of_month":
        return np.asarray(ts.day) - 1, 31
    if name == "day_of_year":
        return np.asarray(ts.day_of_year) - 1, 366
    if name == "week_of_year":
        return np.asarray(ts.isocalendar().week, dtype=np.int64) - 1, 53
    if name == "month_of_year":
        return np.asarray(ts.month) - 1, 12
    if name == "quarter_of_year":
        return np.asarray(ts.quarter) - 1, 4
    raise DlxError(f"unknown calendar feature '{name}'")


def time_features(index, freq: Freq) -> np.ndarray:
    """(steps, n_features) float32: each calendar position scaled to [-0.5, 0.5] (GluonTS's convention)."""
    cols = []
    for name in freq.features:
        v, n = _calendar(index, name)
        cols.append(v / max(n - 1, 1) - 0.5)
    if not cols:
        return np.zeros((len(index), 0), np.float32)
    return np.stack(cols, 1).astype(np.float32)


def season_indices(index, freq: Freq) -> np.ndarray:
    """(steps, n_seasonal_components) int64: the active season of each seasonal component."""
    if not freq.seasons:
        return np.zeros((len(index), 0), np.int64)
    return np.stack([_calendar(index, s.name)[0] for s in freq.seasons], 1).astype(np.int64)


def steps_of(value, freq: Freq, key: str) -> int | None:
    """A length given as a number of steps (336) or a duration ('14D', '2W', '36h') -> steps at ``freq``;
    null stays None. A duration must be a whole number of steps."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise DlxError(f"{key} must be a number of steps or a duration like '14D', got {value!r}")
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and float(value).is_integer()):
        return int(value)
    import pandas as pd

    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        days = pd.Timedelta(text).total_seconds() / 86400
    except ValueError:
        raise DlxError(f"{key} must be a number of steps or a duration like '14D', got {value!r}") from None
    steps = days * freq.per_day
    if abs(steps - round(steps)) > 1e-6:
        raise DlxError(f"{key}={value} is not a whole number of {freq.label} steps ({steps:g})")
    return int(round(steps))

"""Panels of time series for the ``forecast`` task (dlx/forecast/panel.py has the panel and its splits).

- ``issm_panel``: the embedded default, a seeded synthetic hourly panel drawn from a known ISSM
  (dlx/forecast/synthetic.py): level + daily + weekly seasonality, tens of series with their own scale,
  pattern and noise. ``data.generator=nonlinear`` draws its negative control instead: the same series'
  scale, patterns and noise fraction, evolving without an ISSM (regime switches, a multiplicative season,
  heteroscedastic Student-t noise).
- ``co2``, ``sunspots``, ``nile``, ``elnino``: single real series that ship with statsmodels (weekly,
  yearly, yearly, monthly), sanity cases.
- ``electricity``: the UCI ElectricityLoadDiagrams20112014 file ``LD2011_2014.txt`` under ``data.root``
  (';'-separated, decimal commas, a timestamp column then one column per client; 15-minute kW readings,
  summed to hourly: the readings stamped H:15, H:30, H:45 and H+1:00 make hour H). A client's leading zeros
  (before its meter started) are missing values.
- ``panel_csv``: a long CSV under ``data.root`` with columns ``item_id,timestamp,target`` (plus optional
  ``cat_*`` static categories and ``feat_*`` time-varying covariates). An empty target is a missing value;
  anything else unreadable is an error naming the line. The frequency (``infer_freq``) is the most common
  spacing between consecutive distinct timestamps of all items together: 1 hour -> H, 1 day -> D, 7 days
  -> W, 28-31 days -> M, 89-92 days -> Q, 365-366 days -> Y; any other spacing is refused. A ``data.freq``
  that contradicts the timestamps (finer than their spacing: most consecutive distinct timestamps more
  than one step apart) is refused, naming both; a coarser one combines readings with ``data.aggregate``.
  Without ``data.aggregate``, every timestamp must sit on the grid of the others (the same offset into its
  period, from its start or from its end): one that does not, which no step of the series can hold, is an
  error naming its line. Periods on the grid with no row are missing values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.data.registry import register_data
from dlx.errors import DlxError
from dlx.forecast.panel import Panel, make_bundle, refuse_class_keys
from dlx.forecast.time import parse_freq, period, to_periods


def _opt(cfg, key, default=None):
    return cfg.get(key, default) if cfg is not None else default


@register_data("issm_panel")
def build_issm(cfg):
    """The known-ISSM panel, or with ``data.generator=nonlinear`` its negative control (same scale, length,
    frequency and seasonal patterns; regime switches, a multiplicative regime-dependent season and
    heteroscedastic heavy-tailed noise instead of an ISSM; dlx/forecast/synthetic.py)."""
    from dlx.forecast.synthetic import issm_panel, nonlinear_panel

    refuse_class_keys(cfg, "issm_panel")
    freq = parse_freq("H")
    start = period(_opt(cfg, "start", "2024-01-01 00:00"), freq)
    if start.to_timestamp().day_of_week != 0 or start.hour != 0:
        raise DlxError(f"data.start must be a Monday 00:00 (the generator's weekday 0), got "
                       f"{_opt(cfg, 'start')}")
    generator = str(_opt(cfg, "generator", "issm"))
    keys = ("level", "noise", "daily", "weekly", "level_innovation", "seasonal_innovation")
    if generator == "issm":
        make, prefix = issm_panel, "issm"
    elif generator == "nonlinear":
        make, prefix = nonlinear_panel, "nonlinear"
        keys += ("regime_jump", "regime_days", "season_swing", "tail_df")
    else:
        raise DlxError(f"data.generator must be issm (the known ISSM) or nonlinear (its negative control), "
                       f"got {generator!r}")
    z, truth = make(int(_opt(cfg, "series", 40)), int(_opt(cfg, "days", 42)), int(_opt(cfg, "data_seed", 0)),
                    **{k: _list(_opt(cfg, k)) for k in keys if _opt(cfg, k) is not None})
    return make_bundle(Panel(f"{prefix}_panel", freq, start, z, [f"{prefix}_{i:03d}" for i in range(len(z))],
                             notes={"truth": truth}), cfg)


def _list(v):
    from omegaconf import ListConfig

    return list(v) if isinstance(v, (list, tuple, ListConfig)) else v


# statsmodels' bundled series: (loader, value column, frequency, first period)
STATSMODELS = {"co2": ("co2", "co2", "W", None), "sunspots": ("sunspots", "SUNACTIVITY", "Y", "1700"),
               "nile": ("nile", "volume", "Y", "1871"), "elnino": ("elnino", None, "M", "1950-01")}


def _statsmodels_series(name: str):
    import importlib

    loader, col, code, first = STATSMODELS[name]
    df = importlib.import_module(f"statsmodels.datasets.{loader}").load_pandas().data
    freq = parse_freq(code)
    if name == "co2":  # weekly (Saturdays), with gaps as NaN
        values = df["co2"].to_numpy(np.float64)
        start = period(df.index[0], freq)
    elif name == "elnino":  # one row per year, a column per month
        values = df.drop(columns="YEAR").to_numpy(np.float64).ravel()
        start = period(f"{int(df.YEAR.iloc[0])}-01-01", freq)
    else:
        values = df[col].to_numpy(np.float64)
        start = period(f"{first}-01-01", freq)
    return freq, start, values


def _make_statsmodels(name: str):
    def build(cfg):
        refuse_class_keys(cfg, name)
        freq, start, values = _statsmodels_series(name)
        return make_bundle(Panel(name, freq, start, values[None], [name]), cfg)

    build.__name__ = f"build_{name}"
    return build


for _name in STATSMODELS:
    register_data(_name)(_make_statsmodels(_name))


def _file(cfg, default_name: str, what: str) -> Path:
    root = _opt(cfg, "root")
    if root is None:
        raise DlxError(f"data={cfg.name} reads {what} from data.root (a directory holding {default_name}, or "
                       f"the file itself); set data.root=PATH")
    path = Path(str(root)).expanduser()
    if path.is_dir():
        path = path / str(_opt(cfg, "file") or default_name)
    if not path.is_file():
        raise DlxError(f"{path} not found ({what}; set data.root to the directory or the file)")
    return path


def read_electricity(path: Path, series: int | None = None, leading_zeros_missing: bool = True):
    """LD2011_2014.txt -> (hourly PeriodIndex start, (clients, hours) array, client names)."""
    import pandas as pd

    usecols = None
    if series is not None:
        header = path.open(encoding="utf-8", errors="replace").readline().rstrip("\n\r").split(";")
        usecols = list(range(min(len(header), int(series) + 1)))
    try:
        df = pd.read_csv(path, sep=";", decimal=",", index_col=0, usecols=usecols, keep_default_na=False,
                         na_values=[""], engine="c")
    except pd.errors.ParserError as err:
        raise DlxError(f"{path}: malformed file ({str(err).strip().splitlines()[0]})") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise DlxError(f"{path}: not an electricity file ({err})") from None
    if df.shape[1] == 0 or len(df) == 0:
        raise DlxError(f"{path}: no clients or no rows (expected ';'-separated columns: "
                       "timestamp;MT_001;...)")
    stamps = pd.to_datetime(pd.Series(df.index), format="%Y-%m-%d %H:%M:%S", errors="coerce")
    if stamps.isna().any():
        i = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise DlxError(f"{path}, line {i + 2}: cannot read timestamp {df.index[i]!r} "
                       "(expected YYYY-MM-DD HH:MM:SS)")
    for col in df.columns[[not pd.api.types.is_numeric_dtype(t) for t in df.dtypes]]:
        raw = df[col].astype(str).where(df[col].notna())  # a column pandas could not read as numbers
        num = pd.to_numeric(raw.str.replace(",", ".", regex=False), errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DlxError(f"{path}, line {i + 2}: value {raw.iloc[i]!r} of {col} is not a number")
        df[col] = num
    values = df.to_numpy(np.float64)
    hours = (pd.DatetimeIndex(stamps) - pd.Timedelta(minutes=15)).floor("h")
    hourly = pd.DataFrame(values, index=hours, columns=df.columns).groupby(level=0).sum(min_count=1)
    full = pd.date_range(hourly.index[0], hourly.index[-1], freq="h")
    hourly = hourly.reindex(full)
    target = hourly.to_numpy(np.float64).T
    if leading_zeros_missing:
        nz = np.where(np.isfinite(target) & (target != 0), 1, 0)
        started = np.cumsum(nz, 1) > 0
        target = np.where(started, target, np.nan)
    return pd.Timestamp(full[0]).to_period("h"), target, [str(c) for c in hourly.columns]


@register_data("electricity", root="required")
def build_electricity(cfg):
    refuse_class_keys(cfg, "electricity")
    path = _file(cfg, "LD2011_2014.txt", "the UCI electricity file LD2011_2014.txt")
    series = _opt(cfg, "series")
    start, target, names = read_electricity(path, None if series is None else int(series),
                                            bool(_opt(cfg, "leading_zeros_missing", True)))
    return make_bundle(Panel("electricity", parse_freq("H"), start, target, names), cfg)


# the spacings a frequency is inferred from (most common gap between consecutive distinct timestamps)
SPACINGS = (("H", 1 / 24, 1 / 24), ("D", 1, 1), ("W", 7, 7), ("M", 28, 31), ("Q", 89, 92), ("Y", 365, 366))


def _spacing(stamps):
    """The most common gap between consecutive distinct timestamps (the smallest on a tie), or None."""
    import pandas as pd

    t = np.unique(pd.DatetimeIndex(stamps).as_unit("ns").asi8)
    if len(t) < 2:
        return None
    gaps, counts = np.unique(np.diff(t), return_counts=True)
    return pd.Timedelta(int(gaps[np.argmax(counts)]), unit="ns")


def infer_freq(stamps):
    """(the Freq of ``stamps`` or None, their most common spacing as a Timedelta or None)."""
    gap = _spacing(stamps)
    if gap is None:
        return None, None
    days = gap.total_seconds() / 86400
    for code, lo, hi in SPACINGS:
        if lo - 1e-9 <= days <= hi + 1e-9:
            return parse_freq(code), gap
    return None, gap


def _step_mode(per) -> int:
    """The most common number of steps between consecutive distinct periods (1 when there is one period)."""
    pos = np.unique(np.asarray(per.asi8, np.int64))
    if len(pos) < 2:
        return 1
    steps, counts = np.unique(np.diff(pos), return_counts=True)
    return int(steps[np.argmax(counts)])


def _off_grid(stamps, per) -> int | None:
    """Index of the first timestamp off the grid of the others, or None when all share one offset into
    their period (from its start, or from its end: month-end stamps). Off the grid: an offset other than
    the most common one, measured from whichever edge most rows agree on."""
    import pandas as pd

    ts = pd.DatetimeIndex(stamps).as_unit("ns").asi8
    best = None
    for off in (ts - per.start_time.as_unit("ns").asi8, (per + 1).start_time.as_unit("ns").asi8 - ts):
        vals, counts = np.unique(off, return_counts=True)
        if len(vals) == 1:
            return None
        if best is None or counts.max() > best[2]:
            best = (off, vals[np.argmax(counts)], counts.max())
    off, mode, _ = best
    return int(np.flatnonzero(off != mode)[0])


def _describe(gap) -> str:
    """A Timedelta in words: '1 day', '2 hours', '15 minutes'."""
    sec = gap.total_seconds()
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if sec >= n and sec % n == 0:
            k = int(sec // n)
            return f"{k} {unit}{'s' if k != 1 else ''}"
    return str(gap)


def read_long_csv(path: Path, freq=None, aggregate: str | None = None) -> Panel:
    """A long CSV (item_id,timestamp,target[,cat_*][,feat_*]) -> a Panel on the grid of ``freq`` (a Freq,
    or None: inferred from the timestamps; the module docstring has the rules)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as err:
        raise DlxError(f"{path}: malformed CSV ({str(err).strip().splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise DlxError(f"{path} is empty (expected columns item_id,timestamp,target)") from None
    missing = [c for c in ("item_id", "timestamp", "target") if c not in df.columns]
    if missing:
        raise DlxError(f"{path}: missing column(s) {', '.join(missing)} (a long CSV has "
                       f"item_id,timestamp,target; found {', '.join(map(str, df.columns))})")
    if len(df) == 0:
        raise DlxError(f"{path} has a header but no rows")
    line = np.arange(len(df)) + 2
    if df.item_id.isna().any():
        raise DlxError(f"{path}, line {line[df.item_id.isna().to_numpy()][0]}: empty item_id")
    stamps = pd.to_datetime(df.timestamp, errors="coerce", format="mixed")
    if stamps.isna().any():
        i = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise DlxError(f"{path}, line {line[i]}: cannot read timestamp {df.timestamp.iloc[i]!r}")
    target = pd.to_numeric(df.target, errors="coerce")
    bad = target.isna() & df.target.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DlxError(f"{path}, line {line[i]}: target {df.target.iloc[i]!r} is not a number")
    feats = [c for c in df.columns if str(c).startswith("feat_")]
    cats = [c for c in df.columns if str(c).startswith("cat_")]
    for c in feats:
        num = pd.to_numeric(df[c], errors="coerce")
        bad = num.isna() & df[c].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DlxError(f"{path}, line {line[i]}: covariate {c}={df[c].iloc[i]!r} is not a number")
        df[c] = num
    inferred, gap = infer_freq(stamps)
    if freq is None:
        if inferred is None:
            if gap is None:
                raise DlxError(f"{path}: every row has the same timestamp {stamps.iloc[0]}: no frequency to "
                               "infer (give data.freq)")
            raise DlxError(f"{path}: the timestamps are {_describe(gap)} apart (their most common "
                           "spacing); dlx forecasts hourly, daily, weekly, monthly, quarterly or yearly "
                           "series: give data.freq=H|D|W|M|Q|Y with data.aggregate=sum|mean to combine finer "
                           "readings")
        freq = inferred
    per = to_periods(stamps, freq)
    if _step_mode(per) > 1:
        spaced = inferred.label if inferred is not None else f"{_describe(gap)} apart"
        fix = f", or give data.freq={inferred.code}" if inferred is not None else ""
        raise DlxError(f"data.freq={freq.code} ({freq.label}) contradicts the timestamps of {path.name}, "
                       f"which are {spaced} (most are {_describe(gap)} apart); leave data.freq out to use "
                       f"the inferred frequency{fix}")
    if aggregate is None:
        i = _off_grid(stamps, per)
        if i is not None:
            raise DlxError(f"{path}, line {line[i]}: timestamp {df.timestamp.iloc[i]!r} is off the "
                           f"{freq.label} grid of the other rows (no step of the series can hold it); fix "
                           f"it, or set data.aggregate=sum|mean to combine the readings of each period")
    first = per.min()
    pos = np.asarray([(p - first).n for p in per], np.int64)
    items = list(dict.fromkeys(df.item_id))
    code = {k: i for i, k in enumerate(items)}
    row = df.item_id.map(code).to_numpy()
    key = pd.Series(row * (pos.max() + 1) + pos)
    dup = key.duplicated(keep="first").to_numpy()
    frame = pd.DataFrame({"row": row, "pos": pos, "target": target.to_numpy(np.float64)})
    if dup.any():
        if aggregate not in ("sum", "mean"):
            i = int(np.flatnonzero(dup)[0])
            raise DlxError(f"{path}, line {line[i]}: item {df.item_id.iloc[i]!r} has a second row in period "
                           f"{per[i]} ({freq.label}); set data.aggregate=sum or mean to combine them")
        frame = frame.groupby(["row", "pos"], as_index=False).agg({"target": aggregate})
    steps = int(pos.max()) + 1
    z = np.full((len(items), steps), np.nan)
    z[frame.row.to_numpy(), frame.pos.to_numpy()] = frame.target.to_numpy()
    static, cards = None, []
    if cats:
        static = np.zeros((len(items), len(cats)), np.int64)
        for j, c in enumerate(cats):
            per_item = df.groupby(df.item_id, sort=False)[c].nunique(dropna=False)
            if (per_item > 1).any():
                raise DlxError(f"{path}: static category {c} changes within item "
                               f"{per_item[per_item > 1].index[0]!r}")
            levels = {v: i for i, v in enumerate(dict.fromkeys(df[c].fillna("")))}
            firsts = df.groupby(df.item_id, sort=False)[c].first().reindex(items).fillna("")
            static[:, j] = [levels[v] for v in firsts]
            cards.append(len(levels))
    cov = None
    if feats:
        cov = np.full((len(items), steps, len(feats)), np.nan, np.float32)
        for j, c in enumerate(feats):
            cov[row, pos, j] = df[c].to_numpy(np.float32)
        filled = pd.DataFrame(cov.transpose(0, 2, 1).reshape(-1, steps).T).ffill().bfill().fillna(0.0)
        cov = filled.to_numpy(np.float32).T.reshape(len(items), len(feats), steps).transpose(0, 2, 1).copy()
    return Panel(path.stem, freq, first, z, [str(i) for i in items], static, cats, cards, cov, feats)


@register_data("panel_csv", root="required")
def build_panel_csv(cfg):
    refuse_class_keys(cfg, "panel_csv")
    given = _opt(cfg, "freq")
    freq = None if given is None else parse_freq(given)  # null: inferred from the timestamps
    path = _file(cfg, "panel.csv", "a long CSV item_id,timestamp,target")
    agg = _opt(cfg, "aggregate")
    if agg not in (None, "sum", "mean"):
        raise DlxError(f"data.aggregate must be null, sum or mean, got {agg!r}")
    panel = read_long_csv(path, freq, agg)
    panel.name = "panel_csv"
    return make_bundle(panel, cfg)

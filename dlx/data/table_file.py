"""``csv``: the user's own table -- a ``.csv`` (``.tsv``, ``.csv.gz``) or ``.parquet`` file at ``data.root``,
one example a row, one column the target (``data.target``) -- for task=classify, binary or regress.

The rules (conf/data/csv.yaml states them to the user):

- inputs: ``data.features`` (default: every column but the target). A column of numbers is a number; any
  other column (text, or a numeric code listed in ``data.categorical``) is categorical and one-hot encoded
  over the categories of the training rows (sorted); a category the training rows lack, or an empty cell,
  encodes as all zeros. A text column with more than ``data.max_categories`` categories is refused (an id or
  free text is not a feature). A column that is mostly numbers but holds a stray word is refused, naming
  the line, rather than silently becoming categorical.
- empty cells (and pandas' NA markers: NA, N/A, NaN, null): ``data.impute=refuse`` (the default) names the
  feature columns and counts; ``data.impute=median`` fills a number with its training-rows median. An
  empty target is always refused.
- test rows: ``data.test`` is a fraction of the file (seeded by ``data.split_seed``; stratified by class for
  classify and binary) or a second file with the same columns. ``data.val_fraction``/``n_train`` then act
  on the training rows as for every dataset.
- everything learned from data (categories, medians, the standardization of every input column and of a
  regression target) is learned on the training split only: after the test rows, the validation rows and
  the rows an ``n_train`` subset leaves out are set aside.
- targets: regress needs numbers; classify takes any labels (strings too) and maps the sorted distinct
  labels to class indices (``meta.class_names``), numbers only if integer-like; binary needs exactly two
  labels, the second in sorted order (or ``data.positive``) being the positive class.

classify goes through the shared class-based prep (dlx/data/prep.py: subsets, label noise); binary and
regress through the feature-table steps (dlx/data/tabular.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.data.bundle import DataBundle, Meta
from dlx.data.prep import Raw, carve_val, opt, subset
from dlx.data.registry import register_data
from dlx.data.tabular import pick, table_bundle
from dlx.errors import DlxError

TASKS = ("classify", "binary", "regress")
IMPUTE = ("refuse", "median")


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
        return "csv"
    raise DlxError(f"data=csv reads a .csv, .tsv or .parquet file; {path} is neither (data.root names the "
                   "file itself)")


def _line(kind: str, i: int) -> str:
    """Where row ``i`` (0-based) is: a CSV line (after the header) or a Parquet row."""
    return f"line {i + 2}" if kind == "csv" else f"row {i + 1}"


def read_table(path: Path):
    """A .csv/.tsv/.parquet file -> a DataFrame with string column names, or one clear error."""
    import pandas as pd

    if path.is_dir():
        raise DlxError(f"data.root {path} is a folder; data=csv reads one .csv or .parquet file")
    if not path.is_file():
        raise DlxError(f"{path} not found (data=csv reads the .csv or .parquet file at data.root)")
    kind = _kind(path)
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DlxError(f"{path} is a Parquet file; reading it needs pyarrow: pip install "
                           "pyarrow") from None
        try:
            df = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises its own types for a damaged file
            why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DlxError(f"{path}: not a readable Parquet file ({why})") from None
    else:
        sep = "\t" if ".tsv" in path.name.lower() else ","
        try:
            df = pd.read_csv(path, sep=sep)
        except pd.errors.EmptyDataError:
            raise DlxError(f"{path} is empty (expected a header line of column names, then one row per "
                           "example)") from None
        except pd.errors.ParserError as err:
            raise DlxError(f"{path}: malformed CSV ({str(err).strip().splitlines()[0]})") from None
        except UnicodeDecodeError:
            raise DlxError(f"{path} is not UTF-8 text (data=csv reads comma-separated UTF-8 text)") from None
    df.columns = [str(c) for c in df.columns]
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise DlxError(f"{path}: column name(s) {', '.join(dup)} appear more than once")
    if len(df) == 0:
        raise DlxError(f"{path} has a header but no rows")
    return df


def _names(value, key: str) -> list[str] | None:
    """A list-valued key (a list, or one column name as a string) -> column names; null stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value]
    except TypeError:
        raise DlxError(f"{key} must be a list of column names, got {value!r}") from None


def columns(cfg, df, path: Path) -> tuple[str, list[str], list[str]]:
    """(target, feature columns, forced-categorical columns) of ``cfg`` checked against ``df``'s columns."""
    cols = list(df.columns)
    listed = ", ".join(cols)
    target = opt(cfg, "target")
    if target is None:
        raise DlxError(f"data.target is required for data=csv: the column to predict (columns of "
                       f"{path.name}: {listed})")
    target = str(target)
    if target not in cols:
        raise DlxError(f"data.target={target} is not a column of {path.name}; its columns: {listed}")
    features = _names(opt(cfg, "features"), "data.features")
    if features is None:
        features = [c for c in cols if c != target]
    missing = [c for c in features if c not in cols]
    if missing:
        raise DlxError(f"data.features names {', '.join(missing)}, not a column of {path.name}; its columns: "
                       f"{listed}")
    if target in features:
        raise DlxError(f"data.features lists the target column {target}: a model must not see what it "
                       "predicts")
    if len(set(features)) != len(features):
        raise DlxError(f"data.features lists a column twice: {features}")
    if not features:
        raise DlxError(f"{path.name} has no feature columns besides the target {target}")
    categorical = _names(opt(cfg, "categorical"), "data.categorical") or []
    stray = [c for c in categorical if c not in features]
    if stray:
        raise DlxError(f"data.categorical names {', '.join(stray)}, not among the feature columns "
                       f"({', '.join(features)})")
    return target, features, categorical


def check(cfg) -> None:
    """What data=csv refuses before any work: the keys, the file's kind, and (for a CSV, from its header
    alone) the column names. Called by dlx.data.check_data (a sweep, before its children start)."""
    task = opt(cfg, "task")
    if task not in TASKS:
        raise DlxError(f"data=csv serves task=classify, binary or regress, not {task}"
                       + ("; for time series use data=panel_csv" if task == "forecast" else ""))
    if str(opt(cfg, "impute", "refuse")) not in IMPUTE:
        raise DlxError(f"data.impute must be refuse or median, got {opt(cfg, 'impute')!r}")
    if opt(cfg, "target") is None:
        raise DlxError("data.target is required for data=csv: the column to predict (data.target=<column>)")
    path = Path(str(opt(cfg, "root"))).expanduser()
    if path.is_file() and _kind(path) == "csv":
        import pandas as pd

        try:
            head = pd.read_csv(path, sep="\t" if ".tsv" in path.name.lower() else ",", nrows=0)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            return  # the builder names what is wrong with the file
        head.columns = [str(c) for c in head.columns]
        columns(cfg, head, path)


def _is_number_column(s) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s)


def _text(values) -> np.ndarray:
    """Cell values as category strings: integer-like numbers without a trailing '.0' (so 3 and 3.0 match)."""
    out = []
    for v in values:
        if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
            v = int(v)
        out.append(str(v))
    return np.asarray(out, dtype=object)


def _refuse_stray_words(df, col: str, path: Path, kind: str) -> None:
    """A text column that is mostly numbers is a numeric column with a typo: name the line."""
    import pandas as pd

    s = df[col]
    present = s.notna()
    num = pd.to_numeric(s.where(present), errors="coerce")
    bad = present & num.isna()
    if bad.any() and (present & num.notna()).sum() > bad.sum():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DlxError(f"{path}, {_line(kind, i)}: column {col} holds numbers but also {s.iloc[i]!r}; fix "
                       f"the value, or list {col} in data.categorical to encode it as categories")


class TableEncoder:
    """Feature columns -> float32 matrix (the rules of the module docstring), learned by ``fit`` on the
    training rows only."""

    def __init__(self, numeric: list[str], categorical: list[str], order: list[str], impute: str,
                 max_categories: int):
        self.numeric, self.categorical, self.order = set(numeric), set(categorical), order
        self.impute, self.max_categories = impute, max_categories
        self.median: dict[str, float] = {}
        self.levels: dict[str, list[str]] = {}
        self.names: list[str] = []

    def fit(self, rows) -> TableEncoder:
        self.names = []
        for c in self.order:
            if c in self.numeric:
                v = rows[c].to_numpy(np.float64)
                if self.impute == "median":
                    if not np.isfinite(v).any():
                        raise DlxError(f"feature column {c} has no value in the training rows to take a "
                                       "median of; drop it from data.features")
                    self.median[c] = float(np.nanmedian(v))
                self.names.append(c)
            else:
                present = rows[c].notna().to_numpy()
                levels = sorted(set(_text(rows[c].to_numpy()[present])))
                if len(levels) > self.max_categories:
                    raise DlxError(f"column {c} has {len(levels)} categories in the training rows, more than "
                                   f"data.max_categories={self.max_categories}: an id or free text is not a "
                                   "feature; drop it from data.features (or raise data.max_categories)")
                self.levels[c] = levels
                self.names += [f"{c}={v}" for v in levels]
        return self

    def transform(self, rows) -> np.ndarray:
        blocks = []
        for c in self.order:
            if c in self.numeric:
                v = rows[c].to_numpy(np.float64)
                if c in self.median:
                    v = np.where(np.isnan(v), self.median[c], v)
                blocks.append(v[:, None])
            else:
                present = rows[c].notna().to_numpy()
                text = _text(rows[c].to_numpy())
                levels = self.levels[c]
                onehot = np.zeros((len(rows), len(levels)))
                code = {v: j for j, v in enumerate(levels)}
                for i in np.flatnonzero(present):
                    j = code.get(text[i])
                    if j is not None:  # a category the training rows lack: all zeros
                        onehot[i, j] = 1.0
                blocks.append(onehot)
        return np.concatenate(blocks, 1).astype(np.float32)


def _numeric_features(df, features, categorical, path, kind) -> list[str]:
    numeric = []
    for c in features:
        if c in categorical:
            continue
        if _is_number_column(df[c]):
            numeric.append(c)
        else:
            _refuse_stray_words(df, c, path, kind)
    return numeric


def _check_frame(df, target, features, numeric, path, kind, impute) -> None:
    """Per file: an empty target, non-numbers in a numeric column (a test file read differently), infinite
    values, and (under impute=refuse) empty feature cells are refused."""
    import pandas as pd

    empty = df[target].isna().to_numpy()
    if empty.any():
        raise DlxError(f"{path}: the target column {target} is empty on {int(empty.sum())} row(s) (first: "
                       f"{_line(kind, int(np.flatnonzero(empty)[0]))}); remove those rows")
    for c in numeric:
        if not _is_number_column(df[c]):
            num = pd.to_numeric(df[c], errors="coerce")
            bad = (num.isna() & df[c].notna()).to_numpy()
            i = int(np.flatnonzero(bad)[0])
            raise DlxError(f"{path}, {_line(kind, i)}: column {c} holds numbers in the training file but "
                           f"{df[c].iloc[i]!r} here")
        inf = np.isinf(df[c].to_numpy(np.float64))
        if inf.any():
            raise DlxError(f"{path}, {_line(kind, int(np.flatnonzero(inf)[0]))}: column {c} is infinite")
    if impute == "refuse":
        counts = {c: int(df[c].isna().sum()) for c in features}
        gaps = {c: n for c, n in counts.items() if n}
        if gaps:
            listed = ", ".join(f"{c} ({n})" for c, n in gaps.items())
            raise DlxError(f"{path} has empty values in feature column(s) {listed}; fill them, drop those "
                           "columns from data.features, or set data.impute=median")


def _test_file(cfg, root: Path) -> Path | None:
    """``data.test`` as a file path (None when it is a fraction)."""
    test = opt(cfg, "test", 0.2)
    if isinstance(test, (int, float)) and not isinstance(test, bool):
        if not 0.0 < float(test) < 1.0:
            raise DlxError(f"data.test must be a fraction in (0, 1) or a file of test rows, got {test}")
        return None
    text = str(test).strip()
    try:
        frac = float(text)
    except ValueError:
        frac = None
    if frac is not None:
        if not 0.0 < frac < 1.0:
            raise DlxError(f"data.test must be a fraction in (0, 1) or a file of test rows, got {test}")
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() and not path.exists() and (root.parent / path).exists():
        path = root.parent / path  # a test file named next to the training file
    if not path.is_file():
        raise DlxError(f"data.test={text}: no such file (a fraction in (0, 1), or the file of test rows; a "
                       "relative path is looked up in the current folder, then beside data.root)")
    return path


def _labels(df_y, test_y, target: str, task: str, path: Path, kind: str, positive):
    """Targets -> (train labels, test labels, class names): numbers for regress, class indices otherwise."""
    import pandas as pd

    if task == "regress":
        for s, where in ((df_y, path), (test_y, None)):
            if s is None or _is_number_column(s):
                continue
            num = pd.to_numeric(s, errors="coerce")
            i = int(np.flatnonzero(num.isna().to_numpy())[0])
            raise DlxError(f"data.target={target} is not numeric ({s.iloc[i]!r} on {_line(kind, i)} of "
                           f"{where or 'the test file'}): task=regress needs numbers; for labels use "
                           "task=classify")
        return (df_y.to_numpy(np.float64), None if test_y is None else test_y.to_numpy(np.float64), None)

    both = [df_y] + ([] if test_y is None else [test_y])
    if all(_is_number_column(t) and t.dtype != bool for t in both):  # numbers: integer-like class ids
        for t in both:
            v = t.to_numpy(np.float64)
            off = np.flatnonzero(v != np.round(v))
            if off.size:
                raise DlxError(f"data.target={target} holds non-integer numbers (e.g. {v[off[0]]:g}): task="
                               f"{task} needs class labels; for a quantity use task=regress")
        v, tv = (None if t is None else t.to_numpy(np.float64).astype(np.int64) for t in (df_y, test_y))
    else:  # any other labels as text (3 and 3.0 alike)
        v, tv = (None if t is None else _text(t.to_numpy()) for t in (df_y, test_y))
    classes = sorted(set(v.tolist()))
    if tv is not None:
        unseen = sorted(set(tv.tolist()) - set(classes), key=str)
        if unseen:
            raise DlxError(f"the test rows have label(s) {', '.join(map(str, unseen[:5]))} that the training "
                           f"file {path.name} lacks (its classes: {', '.join(map(str, classes[:20]))})")
    names = [str(c) for c in classes]
    if len(classes) < 2:
        raise DlxError(f"data.target={target} has a single label ({names[0]}): nothing to classify")
    if task == "binary":
        if len(classes) != 2:
            raise DlxError(f"task=binary needs exactly two labels in data.target={target}, found "
                           f"{len(classes)} ({', '.join(names[:10])}); use task=classify")
        if positive is not None:
            if str(positive) not in names:
                raise DlxError(f"data.positive={positive} is not a label of {target} (labels: "
                               f"{', '.join(names)})")
            if names.index(str(positive)) == 0:
                classes, names = classes[::-1], names[::-1]
    code = {c: i for i, c in enumerate(classes)}
    y = np.asarray([code[c] for c in v.tolist()], np.int64)
    yt = None if tv is None else np.asarray([code[c] for c in tv.tolist()], np.int64)
    return y, yt, names


def training_rows(cfg, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Row numbers of the training split the shared classification prep will fit on: its validation
    carve-out and ``n_train`` subset applied to row numbers (both draw from the labels and seeds alone)."""
    seed = int(opt(cfg, "subset_seed", 0))
    idx, y_tr, _, _ = carve_val(np.arange(len(y)), y, float(opt(cfg, "val_fraction", 0.0)), seed, num_classes)
    idx, _ = subset(idx, y_tr, opt(cfg, "n_train"), seed, num_classes)
    return idx


@register_data("csv", root="required", check=check)
def build_csv(cfg) -> Raw | DataBundle:
    check(cfg)
    task = str(opt(cfg, "task"))
    path = Path(str(opt(cfg, "root"))).expanduser()
    df = read_table(path)
    kind = _kind(path)
    target, features, categorical = columns(cfg, df, path)
    impute = str(opt(cfg, "impute", "refuse"))
    numeric = _numeric_features(df, features, categorical, path, kind)
    test_path = _test_file(cfg, path)
    test = None
    if test_path is not None:
        test = read_table(test_path)
        lacking = [c for c in [target, *features] if c not in test.columns]
        if lacking:
            raise DlxError(f"the test file {test_path} lacks column(s) {', '.join(lacking)} of the training "
                           f"file {path.name}")
    _check_frame(df, target, features, numeric, path, kind, impute)
    if test is not None:
        _check_frame(test, target, features, numeric, test_path, _kind(test_path), impute)
    y, y_test, names = _labels(df[target], None if test is None else test[target], target, task, path, kind,
                               opt(cfg, "positive"))
    x = df[features].reset_index(drop=True)
    if test is None:
        frac = float(opt(cfg, "test", 0.2))
        k = int(round(frac * len(y)))
        if k < 1 or len(y) - k < 2:
            raise DlxError(f"data.test={frac} of the {len(y)} rows of {path.name} leaves {k} test and "
                           f"{len(y) - k} training rows; give more rows, another fraction or a test file")
        te, tr = pick(len(y), k, int(opt(cfg, "split_seed", 0)), None if task == "regress" else y)
        x, x_test, y, y_test = x.iloc[tr], x.iloc[te], y[tr], y[te]
    else:
        x_test = test[features].reset_index(drop=True)
    encoder = TableEncoder(numeric, [c for c in features if c not in numeric], features, impute,
                           int(opt(cfg, "max_categories", 100)))
    held = str(test_path) if test_path is not None else f"a fraction {float(opt(cfg, 'test', 0.2))}"
    extra = {"source": str(path), "target": target, "test_source": held}
    if task == "classify":
        c = len(names)
        rows = training_rows(cfg, y, c)
        encoder.fit(x.iloc[rows])
        meta = Meta("csv", "classify", (len(encoder.names),), c, names, feature_names=list(encoder.names),
                    extra=extra)
        return Raw(encoder.transform(x), y, encoder.transform(x_test), y_test, meta)
    meta = Meta("csv", task, (len(features),), class_names=names, num_outputs=1, extra=extra)
    return table_bundle(cfg, x, y, meta, x_test, y_test, encode=encoder)

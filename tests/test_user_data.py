"""Bring your own data: a CSV/Parquet table (data=csv), a folder of images (data=image_folder), a panel CSV
whose frequency is inferred, and a data.root refused where a dataset reads no files. Every file is tiny and
written here in the real format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlx.config import compose
from dlx.data import build_data
from dlx.errors import DlxError

QUICK = ["trainer=quick", "trainer.threads=1"]


def table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Two numeric features, a text category, a string label and a numeric target that depends on all."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(2.0, 3.0, size=n)
    city = np.array(["oslo", "paris", "rome"])[np.arange(n) % 3]
    y = 2 * a - 0.5 * b + (city == "rome") * 3.0 + 0.1 * rng.normal(size=n)
    label = np.where(a + (city == "paris") > 0.3, "yes", "no")
    return pd.DataFrame({"a": a.round(4), "b": b.round(4), "city": city, "label": label, "y": y.round(4)})


def csv_file(tmp_path, df=None, name="data.csv"):
    path = tmp_path / name
    (table() if df is None else df).to_csv(path, index=False)
    return path


def data_cfg(task: str, *overrides: str):
    return compose("train", [f"task={task}", "data=csv", *overrides]).data


def one_line(rc: int, err: str) -> bool:
    return rc == 2 and len(err.strip().splitlines()) == 1


# --- tables -------------------------------------------------------------------------------------------------

def test_csv_regress_trains_and_reports_rmse(run_cli, tmp_path):
    csv = csv_file(tmp_path)
    rc, out, err = run_cli("train", "task=regress", "data=csv", f"data.root={csv}", "data.target=y", *QUICK,
                           "--out", str(tmp_path), "--name", "r")
    assert rc == 0, err
    s = json.loads((tmp_path / "train" / "r" / "summary.json").read_text())
    assert s["status"] == "completed" and s["metrics"]["test_rmse"] > 0 and "rmse" in out
    cfg = (tmp_path / "train" / "r" / "config.yaml").read_text()
    assert "task: regress" in cfg  # data.task follows the run's task and is recorded resolved


def test_a_wrong_target_lists_the_columns(run_cli, tmp_path):
    csv = csv_file(tmp_path)
    rc, _, err = run_cli("train", "task=regress", "data=csv", f"data.root={csv}", "data.target=nope", *QUICK,
                         "--out", str(tmp_path))
    assert one_line(rc, err) and "data.target=nope" in err and "a, b, city, label, y" in err, err
    assert not (tmp_path / "train").exists()


@pytest.mark.parametrize("task, args, needle", [
    ("regress", ["data.target=label"], "is not numeric ('no' on line 2"),
    ("classify", ["data.target=a"], "holds non-integer numbers"),
    ("binary", ["data.target=city"], "needs exactly two labels"),
    ("regress", [], "data.target is required"),
    ("regress", ["data.target=y", "data.features=[a,zz]"], "data.features names zz"),
    ("regress", ["data.target=y", "data.test=1.5"], "data.test must be a fraction"),
    ("regress", ["data.target=y", "data.test=nope.csv"], "data.test=nope.csv: no such file"),
    ("regress", ["data.target=y", "data.impute=mean"], "data.impute must be refuse or median"),
])
def test_table_mistakes_are_one_line(run_cli, tmp_path, task, args, needle):
    csv = csv_file(tmp_path)
    rc, _, err = run_cli("train", f"task={task}", "data=csv", f"data.root={csv}", *args, *QUICK,
                         "--out", str(tmp_path))
    assert one_line(rc, err) and needle in err, err


def test_empty_missing_and_unknown_files_are_one_line(run_cli, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,y\n")
    (tmp_path / "data.xlsx").write_text("x")
    for root, needle in ((tmp_path / "empty.csv", "is empty"), (tmp_path / "header.csv", "no rows"),
                         (tmp_path / "gone.csv", "does not exist"), (tmp_path / "data.xlsx", "neither"),
                         (tmp_path, "is a folder")):
        rc, _, err = run_cli("train", "task=regress", "data=csv", f"data.root={root}", "data.target=y",
                             *QUICK, "--out", str(tmp_path / "o"))
        assert one_line(rc, err) and needle in err, (root, err)


def test_missing_values_are_refused_or_imputed_from_the_training_rows(tmp_path):
    df = table(12)
    df.loc[2, "a"] = np.nan
    df.loc[5, "city"] = np.nan
    df.loc[7, "a"] = np.nan
    csv = csv_file(tmp_path, df)
    test = table(3, seed=1)
    test.loc[0, "a"] = np.nan
    test.loc[1, "city"] = "lima"  # a category the training rows lack
    test_csv = csv_file(tmp_path, test, "test.csv")
    base = [f"data.root={csv}", "data.target=y", "data.features=[a,city]", f"data.test={test_csv}"]
    with pytest.raises(DlxError, match=r"empty values in feature column\(s\) a \(2\), city \(1\).*impute"):
        build_data(data_cfg("regress", *base))
    b = build_data(data_cfg("regress", *base, "data.impute=median", "data.normalize=false"))
    assert b.meta.feature_names == ["a", "city=oslo", "city=paris", "city=rome"]
    median = float(np.nanmedian(df.a))  # every row of the training file is a training row here
    x, xt = b.train.x.numpy(), b.test.x.numpy()
    assert x[2, 0] == pytest.approx(median) and x[7, 0] == pytest.approx(median)
    assert xt[0, 0] == pytest.approx(median)  # the test row is filled with the *training* median
    assert x[5, 1:].sum() == 0 and (x[np.arange(12) != 5, 1:].sum(1) == 1).all()  # empty category: zeros
    assert xt[1, 1:].tolist() == [0, 0, 0]  # unseen category 'lima': all zeros
    assert xt[0, 1:].tolist() == [1, 0, 0]  # oslo


def test_a_stray_word_in_a_numeric_column_names_the_line(tmp_path):
    df = table(10).astype({"a": object})
    df.loc[4, "a"] = "n/a?"
    csv = csv_file(tmp_path, df)
    with pytest.raises(DlxError, match=r"line 6: column a holds numbers but also 'n/a\?'.*data.categorical"):
        build_data(data_cfg("regress", f"data.root={csv}", "data.target=y"))


def test_standardisation_is_fitted_on_the_training_rows_only(tmp_path):
    df, test = table(30), table(10, seed=3)
    csv, test_csv = csv_file(tmp_path, df), csv_file(tmp_path, test, "test.csv")
    b = build_data(data_cfg("regress", f"data.root={csv}", f"data.test={test_csv}", "data.target=y",
                            "data.features=[a,b]"))
    mean, std = df[["a", "b"]].mean().to_numpy(), df[["a", "b"]].std(ddof=0).to_numpy()
    assert np.allclose(b.meta.extra["norm_mean"], mean, atol=1e-5)
    assert np.allclose(b.meta.extra["norm_std"], std, atol=1e-5)
    assert np.allclose(b.test.x.numpy(), (test[["a", "b"]].to_numpy() - mean) / std, atol=1e-4)
    assert b.meta.extra["target_mean"] == pytest.approx(df.y.mean())
    assert b.meta.extra["target_std"] == pytest.approx(df.y.std(ddof=0))
    assert np.allclose(b.test.y.numpy(), (test.y - df.y.mean()) / df.y.std(ddof=0), atol=1e-5)
    # with a validation carve-out, the statistics come from the rows left for training
    v = build_data(data_cfg("regress", f"data.root={csv}", f"data.test={test_csv}", "data.target=y",
                            "data.features=[a,b]", "data.val_fraction=0.3"))
    assert len(v.val) == 9 and len(v.train) == 21
    assert np.allclose(v.train.x.numpy().mean(0), 0, atol=1e-5) and not np.allclose(
        v.meta.extra["norm_mean"], mean, atol=1e-3)


@pytest.mark.parametrize("task", ["classify", "regress"])
def test_categories_are_learned_on_the_training_split(tmp_path, task):
    """The categories are those of the rows the model trains on (after the test split, the validation
    carve-out and an n_train subset): any other row whose category they lack encodes as all zeros."""
    df = table(40).assign(row=np.arange(40.0))
    df.loc[17, "city"] = "rare"
    csv = csv_file(tmp_path, df)
    target = "label" if task == "classify" else "y"
    unseen = 0
    for seed in range(4):
        b = build_data(data_cfg(task, f"data.root={csv}", f"data.target={target}", "data.features=[row,city]",
                                "data.val_fraction=0.25", "data.n_train=10", f"data.subset_seed={seed}",
                                "data.normalize=false"))
        city = lambda split: df.city.to_numpy()[split.x.numpy()[:, 0].astype(int)]  # noqa: E731
        learned = sorted(set(city(b.train)))
        assert b.meta.feature_names == ["row"] + [f"city={c}" for c in learned]
        for split in (b.train, b.val, b.test):
            onehot = split.x.numpy()[:, 1:]
            for c, code in zip(city(split), onehot, strict=True):
                want = [float(c == v) for v in learned]
                assert code.tolist() == want, (seed, c, code)
                unseen += c not in learned
    assert unseen > 0  # the check saw rows whose category the training rows lacked


def test_classify_with_string_labels_maps_sorted_classes(run_cli, tmp_path):
    df = table(60)
    df["label"] = np.array(["cat", "dog", "emu"])[np.arange(60) % 3]
    csv = csv_file(tmp_path, df)
    b = build_data(data_cfg("classify", f"data.root={csv}", "data.target=label"))
    assert b.meta.class_names == ["cat", "dog", "emu"] and b.meta.num_classes == 3
    assert b.meta.task == "classify" and len(b.test) == 12
    assert np.bincount(b.test.y.numpy()).tolist() == [4, 4, 4]  # a stratified test split
    assert b.meta.feature_names == ["a", "b", "city=oslo", "city=paris", "city=rome", "y"]
    rc, _, err = run_cli("train", "data=csv", f"data.root={csv}", "data.target=label", "data.label_noise=0.1",
                         *QUICK, "--out", str(tmp_path), "--name", "c")
    assert rc == 0, err
    assert json.loads((tmp_path / "train" / "c" / "summary.json").read_text())["status"] == "completed"


def test_binary_labels_and_the_positive_class(tmp_path):
    csv, test = csv_file(tmp_path), csv_file(tmp_path, table(10, seed=2), "test.csv")
    b = build_data(data_cfg("binary", f"data.root={csv}", f"data.test={test}", "data.target=label"))
    assert b.meta.class_names == ["no", "yes"] and b.meta.num_outputs == 1
    assert b.train.y.numpy().tolist() == (table().label == "yes").astype(int).tolist()
    flipped = build_data(data_cfg("binary", f"data.root={csv}", f"data.test={test}", "data.target=label",
                                  "data.positive=no"))
    assert flipped.meta.class_names == ["yes", "no"]
    assert (flipped.train.y.numpy() == 1 - b.train.y.numpy()).all()


def test_fit_a_baseline_on_a_csv(run_cli, tmp_path):
    csv = csv_file(tmp_path)
    rc, _, err = run_cli("fit", "task=regress", "baseline=ridge", "data=csv", f"data.root={csv}",
                         "data.target=y", "--out", str(tmp_path), "--name", "f")
    assert rc == 0, err
    s = json.loads((tmp_path / "fit" / "f" / "summary.json").read_text())
    assert s["status"] == "completed" and s["metrics"]["test_rmse"] < 0.5  # a linear target


def test_sweep_grid_on_a_csv(run_cli, tmp_path):
    csv = csv_file(tmp_path)
    rc, _, err = run_cli("sweep", "grid", "model.width=4,8", "task=regress", "data=csv", f"data.root={csv}",
                         "data.target=y", *QUICK, "launcher=inline", "--out", str(tmp_path), "--name", "s")
    assert rc == 0, err
    res = pd.read_csv(tmp_path / "sweep" / "s" / "results.csv")
    assert sorted(res.width) == [4, 8] and (res.status == "completed").all() and res.test_rmse.notna().all()
    rc, _, err = run_cli("sweep", "grid", "model.width=4,8", "task=regress", "data=csv", f"data.root={csv}",
                         "data.target=nope", *QUICK, "launcher=inline", "--out", str(tmp_path), "--name", "t")
    assert one_line(rc, err) and "a, b, city, label, y" in err  # refused before any child starts
    assert not (tmp_path / "sweep" / "t" / "runs").exists()


def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path, monkeypatch):
    import sys

    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    with pytest.raises(DlxError, match="pip install pyarrow"):
        build_data(data_cfg("regress", f"data.root={tmp_path / 'd.parquet'}", "data.target=y"))


def test_parquet_trains_like_the_csv(run_cli, tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    table().to_parquet(path)
    a = build_data(data_cfg("regress", f"data.root={path}", "data.target=y"))
    b = build_data(data_cfg("regress", f"data.root={csv_file(tmp_path)}", "data.target=y"))
    assert np.allclose(a.train.x.numpy(), b.train.x.numpy(), atol=1e-5)
    rc, _, err = run_cli("train", "task=regress", "data=csv", f"data.root={path}", "data.target=y", *QUICK,
                         "--out", str(tmp_path))
    assert rc == 0, err


# --- image folders ------------------------------------------------------------------------------------------

def write_images(folder, classes=("cat", "dog"), per=6, size=10, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, c in enumerate(classes):
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per):
            px = np.clip(rng.normal(60 + 120 * k, 20, size=(size, size + 2, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(folder / c / f"{c}_{i}.png")


def test_image_folder_with_a_held_out_fraction(run_cli, tmp_path):
    write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("not an image")  # ignored
    cfg = compose("train", ["data=image_folder", f"data.root={tmp_path / 'imgs'}", "data.size=8",
                            "data.test_fraction=0.25", "data.normalize=false"]).data
    b = build_data(cfg)
    assert b.meta.input_shape == (3, 8, 8) and b.meta.class_names == ["cat", "dog"]
    assert len(b.train) == 9 and len(b.test) == 3
    x = b.train.x.numpy()
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x[b.train.y.numpy() == 1].mean() > x[b.train.y.numpy() == 0].mean() + 0.3  # dog pixels brighter
    rc, _, err = run_cli("train", "model=cnn5", "model.width=2", "data=image_folder",
                         f"data.root={tmp_path / 'imgs'}", "data.size=8", "data.augment=true",
                         "data.label_noise=0.1", *QUICK, "--out", str(tmp_path), "--name", "i")
    assert rc == 0, err


def test_image_folder_with_train_and_test_folders_in_grayscale(tmp_path):
    write_images(tmp_path / "imgs" / "train", per=4)
    write_images(tmp_path / "imgs" / "test", per=2, seed=1)
    b = build_data(compose("train", ["data=image_folder", f"data.root={tmp_path / 'imgs'}", "data.size=6",
                                     "data.channels=1"]).data)
    assert b.meta.input_shape == (1, 6, 6) and len(b.train) == 8 and len(b.test) == 4
    assert b.meta.extra["layout"] == "train/ and test/ folders"
    assert np.bincount(b.test.y.numpy()).tolist() == [2, 2]


def test_image_folder_mistakes_name_the_file(run_cli, tmp_path):
    write_images(tmp_path / "imgs", per=2)
    (tmp_path / "imgs" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    rc, _, err = run_cli("train", "data=image_folder", f"data.root={tmp_path / 'imgs'}", *QUICK,
                         "--out", str(tmp_path))
    assert one_line(rc, err) and "broken.png" in err and "not a readable image" in err, err
    write_images(tmp_path / "one", classes=("cat",), per=2)
    with pytest.raises(DlxError, match="single class folder"):
        build_data(compose("train", ["data=image_folder", f"data.root={tmp_path / 'one'}"]).data)
    write_images(tmp_path / "split" / "train", per=2)
    write_images(tmp_path / "split" / "test", classes=("cat", "owl"), per=1)
    with pytest.raises(DlxError, match="class folder\\(s\\) owl"):
        build_data(compose("train", ["data=image_folder", f"data.root={tmp_path / 'split'}"]).data)


# --- a data.root where it is not read -----------------------------------------------------------------------

@pytest.mark.parametrize("command, data", [("train", "diabetes"), ("train", "digits"), ("fit", "synthetic"),
                                           ("forecast", "issm_panel")])
def test_a_root_given_to_a_dataset_that_reads_no_files_is_refused(run_cli, tmp_path, command, data):
    csv = csv_file(tmp_path, name="x.csv")
    task = ["task=regress"] if data == "diabetes" else []
    rc, _, err = run_cli(command, f"data={data}", f"data.root={csv}", *task, "--out", str(tmp_path / "o"))
    assert one_line(rc, err) and f"data={data} reads no files" in err, err
    assert not (tmp_path / "o").exists()
    with pytest.raises(DlxError, match="reads no files"):
        build_data({"name": data, "root": str(csv)})


def test_a_sweep_refuses_a_root_that_would_be_ignored_before_its_children(run_cli, tmp_path):
    csv = csv_file(tmp_path, name="x.csv")
    rc, _, err = run_cli("sweep", "grid", "seed=0,1", "task=regress", "data=diabetes", f"data.root={csv}",
                         *QUICK, "launcher=inline", "--out", str(tmp_path), "--name", "s")
    assert one_line(rc, err) and "reads no files" in err, err


# --- panel CSV: the frequency comes from the timestamps -----------------------------------------------------

def write_panel(path, freq="D", periods=60, off_grid: bool = False):
    rows = []
    for item, level in (("a", 20.0), ("b", 5.0)):
        for i, t in enumerate(pd.date_range("2024-01-01", periods=periods, freq=freq)):
            rows.append({"item_id": item, "timestamp": f"{t:%Y-%m-%d %H:%M}",
                         "target": f"{level + 2 * np.sin(2 * np.pi * i / 7):.3f}"})
    df = pd.DataFrame(rows).drop(index=[5, 6])  # a gap on the grid: two missing days of item a
    if off_grid:
        df.loc[40, "timestamp"] = "2024-02-10 12:00"
    df.to_csv(path, index=False)


def test_a_daily_panel_forecasts_daily_without_data_freq(run_cli, tmp_path):
    write_panel(tmp_path / "daily.csv")
    rc, out, err = run_cli("forecast", "model=seasonal_naive", "data=panel_csv",
                           f"data.root={tmp_path / 'daily.csv'}", "data.horizon=7", "trainer.threads=1",
                           "--out", str(tmp_path), "--name", "d")
    assert rc == 0, err
    s = json.loads((tmp_path / "forecast" / "d" / "summary.json").read_text())
    assert s["status"] == "completed" and s["freq"] == "D"
    fc = pd.read_csv(tmp_path / "forecast" / "d" / "forecasts.csv")
    stamps = pd.to_datetime(fc.timestamp.drop_duplicates()).sort_values()
    assert (stamps.diff().dropna() == pd.Timedelta(days=1)).all() and len(stamps) == 7


def test_a_contradicting_freq_and_off_grid_timestamps_are_one_line(run_cli, tmp_path):
    write_panel(tmp_path / "daily.csv")
    rc, _, err = run_cli("forecast", "data=panel_csv", f"data.root={tmp_path / 'daily.csv'}", "data.freq=H",
                         "trainer.threads=1", "--out", str(tmp_path))
    assert one_line(rc, err) and "data.freq=H (hourly) contradicts" in err and "daily" in err, err
    write_panel(tmp_path / "off.csv", off_grid=True)
    rc, _, err = run_cli("forecast", "data=panel_csv", f"data.root={tmp_path / 'off.csv'}",
                         "trainer.threads=1", "--out", str(tmp_path))
    assert one_line(rc, err) and "'2024-02-10 12:00' is off the daily grid" in err, err
    assert not (tmp_path / "forecast").exists()


@pytest.mark.parametrize("freq, code", [("h", "H"), ("D", "D"), ("W-SAT", "W"), ("MS", "M"), ("ME", "M"),
                                        ("QS", "Q"), ("YS", "Y")])
def test_the_inferred_frequency_of_each_supported_spacing(freq, code):
    from dlx.data.panel import infer_freq

    stamps = pd.Series(pd.date_range("2001-01-01", periods=30, freq=freq)).drop(index=[3, 4, 9])
    assert infer_freq(stamps)[0].code == code
    assert infer_freq(pd.Series(pd.date_range("2001-01-01", periods=9, freq="15min")))[0] is None

"""data=smallnorb: tiny files written in exactly small NORB's binary-matrix format (header + data, raw and
gzipped), read back through the shared prep; every malformed input is one DlxError line; the CLI and the
symnets paper preset."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from dlx.config import compose
from dlx.data import build_data
from dlx.data.smallnorb import SPLITS
from dlx.errors import DlxError

UINT8, INT32, FLOAT32 = 0x1E3D4C55, 0x1E3D4C54, 0x1E3D4C51
N_TRAIN, N_TEST = 10, 6


def write_mat(path, arr, magic=None, gz=False, dims=None):
    """One binary-matrix file: int32 LE magic, int32 ndim, max(3, ndim) int32 dims (unused ones 1), data."""
    arr = np.ascontiguousarray(arr, np.uint8 if arr.dtype == np.uint8 else "<i4")
    magic = magic if magic is not None else (UINT8 if arr.dtype == np.uint8 else INT32)
    dims = list(arr.shape if dims is None else dims)
    body = struct.pack("<Ii", magic, len(dims)) + struct.pack(f"<{max(3, len(dims))}i", *dims,
                                                              *[1] * (3 - len(dims))) + arr.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        body = gzip.compress(body)
    path.write_bytes(body)
    return path


def images(n: int, offset: int) -> np.ndarray:
    """(n, 2, 96, 96) uint8: left camera (r + 2c + offset + i) mod 256, right camera 255 - left."""
    r, c = np.mgrid[:96, :96]
    left = np.stack([(r + 2 * c + offset + i) % 256 for i in range(n)]).astype(np.uint8)
    return np.stack([left, 255 - left], 1)


def split_arrays(split: str):
    n, offset = (N_TRAIN, 0) if split == "train" else (N_TEST, 7)
    y = (np.arange(n) + (0 if split == "train" else 2)) % 5
    info = np.stack([np.arange(n) % 10, np.arange(n) % 9, 2 * (np.arange(n) % 18), np.arange(n) % 6], 1)
    return {"dat": images(n, offset), "cat": y.astype(np.int32), "info": info.astype(np.int32)}


def write_norb(root, gz=False):
    """The six files under ``root``; returns {split: {kind: array}}."""
    root.mkdir(parents=True, exist_ok=True)
    data = {s: split_arrays(s) for s in SPLITS}
    for s, arrays in data.items():
        for kind, arr in arrays.items():
            write_mat(root / f"{SPLITS[s]}-{kind}.mat", arr, gz=gz)
    return data


def path_of(root, split, kind):
    return root / f"{SPLITS[split]}-{kind}.mat"


def load(root, *overrides: str, normalize: bool = False):
    cfg = compose("train", ["data=smallnorb", f"data.root={root}", f"data.normalize={str(normalize).lower()}",
                            *overrides])
    return build_data(cfg.data)


# ---------------------------------------------------------------- reading


def test_reads_both_splits_scaled_and_area_downsampled(tmp_path):
    data = write_norb(tmp_path)
    b = load(tmp_path)  # the defaults: size 48, the left camera
    assert b.meta.name == "smallnorb" and b.meta.task == "classify" and b.meta.num_classes == 5
    assert b.meta.class_names == ["animal", "human", "airplane", "truck", "car"]
    assert b.meta.input_shape == (1, 48, 48)
    x, xt = b.train.x.numpy(), b.test.x.numpy()
    assert x.shape == (N_TRAIN, 1, 48, 48) and xt.shape == (N_TEST, 1, 48, 48)
    assert b.train.y.tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert b.test.y.tolist() == [2, 3, 4, 0, 1, 2]
    assert 0.0 <= x.min() and x.max() <= 1.0
    # by hand: the 2x2 block at (0, 0) of training image 0 holds r + 2c = 0, 2, 1, 3 -> mean 1.5
    assert x[0, 0, 0, 0] == pytest.approx(1.5 / 255, abs=1e-7)
    # test image 3 (offset 7 + 3): the block at output (5, 2) holds rows 10-11, cols 4-5 -> mean 10.5 + 9 + 10
    assert xt[3, 0, 5, 2] == pytest.approx((10.5 + 9 + 10) / 255, abs=1e-7)
    # every output pixel is its block's mean
    left = data["train"]["dat"][:, 0].astype(np.float64)
    np.testing.assert_allclose(x[:, 0], left.reshape(N_TRAIN, 48, 2, 48, 2).mean((2, 4)) / 255, atol=1e-6)
    np.testing.assert_array_equal(b.meta.extra["test_info"], data["test"]["info"])
    assert b.meta.extra["info_columns"] == ["instance", "elevation", "azimuth", "lighting"]


@pytest.mark.parametrize("size, f", [(96, 1), (32, 3), (24, 4), (8, 12)])
def test_other_sizes_are_block_means(tmp_path, size, f):
    data = write_norb(tmp_path)
    x = load(tmp_path, f"data.size={size}").train.x.numpy()
    assert x.shape == (N_TRAIN, 1, size, size)
    left = data["train"]["dat"][:, 0].astype(np.float64)
    np.testing.assert_allclose(x[:, 0], left.reshape(N_TRAIN, size, f, size, f).mean((2, 4)) / 255, atol=1e-6)
    if size == 24:  # by hand: rows 0-3, cols 0-3 of image 2 -> mean(r) + 2 mean(c) + 2 = 1.5 + 3 + 2
        assert x[2, 0, 0, 0] == pytest.approx(6.5 / 255, abs=1e-7)


def test_both_channels(tmp_path):
    write_norb(tmp_path)
    b = load(tmp_path, "data.channels=both", "data.size=96")
    x = b.train.x.numpy()
    assert b.meta.input_shape == (2, 96, 96) and x.shape == (N_TRAIN, 2, 96, 96)
    np.testing.assert_allclose(x[:, 1], 1.0 - x[:, 0], atol=1e-6)  # the right camera is 255 - left


def test_gzipped_files_read_the_same(tmp_path):
    write_norb(tmp_path / "raw")
    write_norb(tmp_path / "gz", gz=True)
    assert not path_of(tmp_path / "gz", "train", "dat").exists()
    a, b = load(tmp_path / "raw", "data.size=24"), load(tmp_path / "gz", "data.size=24")
    for s in ("train", "test"):
        assert np.array_equal(getattr(a, s).x.numpy(), getattr(b, s).x.numpy())
        assert np.array_equal(getattr(a, s).y.numpy(), getattr(b, s).y.numpy())


def test_test_limit_takes_the_first_test_images(tmp_path):
    write_norb(tmp_path)
    full, cut = load(tmp_path, "data.size=24"), load(tmp_path, "data.size=24", "data.test_limit=4")
    assert len(cut.test) == 4 and len(cut.train) == N_TRAIN and cut.test.y.tolist() == [2, 3, 4, 0]
    assert np.array_equal(cut.test.x.numpy(), full.test.x.numpy()[:4])
    assert len(cut.meta.extra["test_info"]) == 4
    assert len(load(tmp_path, "data.size=24", "data.test_limit=100").test) == N_TEST  # more: all of them


def test_shared_prep_subset_validation_and_normalisation(tmp_path):
    write_norb(tmp_path)
    b = load(tmp_path, "data.size=24", "data.n_train=5", "data.val_fraction=0.2", normalize=True)
    assert len(b.train) == 5 and len(b.val) == 2 and len(b.test) == N_TEST
    assert sorted(b.train.y.tolist()) == [0, 1, 2, 3, 4]  # stratified: one of each class
    assert abs(float(b.train.x.mean())) < 1e-5 and b.meta.extra["norm_mean"]


def test_a_changed_file_is_read_again(tmp_path):
    write_norb(tmp_path)
    assert len(load(tmp_path, "data.size=24").train) == N_TRAIN
    arrays = split_arrays("train")
    for kind, arr in arrays.items():
        write_mat(path_of(tmp_path, "train", kind), arr[:5])
    assert len(load(tmp_path, "data.size=24").train) == 5


# ---------------------------------------------------------------- malformed input: one line each


def one_line(root, *overrides, match):
    with pytest.raises(DlxError, match=match) as e:
        load(root, *overrides)
    assert "\n" not in str(e.value), str(e.value)
    return str(e.value)


def test_wrong_magic(tmp_path):
    write_norb(tmp_path)
    write_mat(path_of(tmp_path, "train", "dat"), split_arrays("train")["dat"], magic=FLOAT32)
    msg = one_line(tmp_path, match="magic 0x1e3d4c51")
    assert "float32" in msg and "training-dat.mat" in msg
    write_norb(tmp_path / "b")
    write_mat(path_of(tmp_path / "b", "test", "cat"), split_arrays("test")["cat"], magic=0x12345678)
    one_line(tmp_path / "b", match="testing-cat.mat: magic 0x12345678")


def test_truncated_data(tmp_path):
    write_norb(tmp_path)
    p = path_of(tmp_path, "test", "dat")
    p.write_bytes(p.read_bytes()[:-100])
    one_line(tmp_path, match="truncated small NORB file .*testing-dat.mat")
    write_norb(tmp_path / "gz", gz=True)  # a gzip stream cut short
    p = tmp_path / "gz" / f"{SPLITS['train']}-info.mat.gz"
    p.write_bytes(p.read_bytes()[:-10])
    one_line(tmp_path / "gz", match="cannot read .*training-info.mat.gz")


def test_wrong_dimensions(tmp_path):
    write_norb(tmp_path)
    write_mat(path_of(tmp_path, "train", "dat"), np.zeros((N_TRAIN, 2, 32, 32), np.uint8))
    one_line(tmp_path, match="dimensions 10 x 2 x 32 x 32, expected N x 2 x 96 x 96")
    write_norb(tmp_path / "b")
    write_mat(path_of(tmp_path / "b", "test", "info"), np.zeros((N_TEST, 4, 1), np.int32))
    one_line(tmp_path / "b", match="header says 3 dimensions, expected 2")


def test_count_mismatch_between_dat_and_cat(tmp_path):
    write_norb(tmp_path)
    write_mat(path_of(tmp_path, "train", "cat"), split_arrays("train")["cat"][:9])
    one_line(tmp_path, match="disagree: .*training-dat.mat has 10 examples, .*training-cat.mat 9")


def test_label_out_of_range(tmp_path):
    write_norb(tmp_path)
    y = split_arrays("test")["cat"]
    y[3] = 7
    write_mat(path_of(tmp_path, "test", "cat"), y)
    one_line(tmp_path, match="label 7 at example 3 is outside 0..4")


def test_missing_root_folder_or_file(tmp_path):
    with pytest.raises(DlxError, match="data.root is required for smallnorb"):
        build_data(compose("train", ["data=smallnorb"]).data)
    with pytest.raises(DlxError, match="does not exist"):
        build_data(compose("train", ["data=smallnorb", f"data.root={tmp_path / 'nowhere'}"]).data)
    write_norb(tmp_path)
    path_of(tmp_path, "test", "info").unlink()
    one_line(tmp_path, match=r"missing .*testing-info.mat\[.gz\]")


@pytest.mark.parametrize("override, match", [
    ("data.size=50", "data.size must divide 96"),
    ("data.size=0", "data.size must divide 96"),
    ("data.channels=right", "data.channels must be left"),
    ("data.test_limit=0", "data.test_limit must be an integer >= 1"),
])
def test_bad_options(tmp_path, override, match):
    write_norb(tmp_path)
    one_line(tmp_path, override, match=match)


# ---------------------------------------------------------------- the CLI and the paper preset


def test_train_through_the_cli(run_cli, tmp_path):
    write_norb(tmp_path)
    rc, out, err = run_cli("train", "data=smallnorb", f"data.root={tmp_path}", "data.size=24",
                           "model=convnet", "trainer=quick", "trainer.threads=1",
                           "--out", str(tmp_path / "o"))
    assert rc == 0, err
    assert "test_accuracy" in out or "test_error" in out, out


def test_cli_refusals_are_one_line_and_exit_2(run_cli, tmp_path):
    rc, _, err = run_cli("train", "data=smallnorb", "model=convnet", "trainer=quick",
                         "--out", str(tmp_path / "o"))
    assert rc == 2 and "data.root is required for smallnorb" in err, err
    assert len(err.strip().splitlines()) == 1, err
    write_norb(tmp_path / "d")
    y = split_arrays("train")["cat"]
    y[0] = 7
    write_mat(path_of(tmp_path / "d", "train", "cat"), y)
    rc, _, err = run_cli("train", "data=smallnorb", f"data.root={tmp_path / 'd'}", "data.size=24",
                         "model=convnet", "trainer=quick", "--out", str(tmp_path / "o"))
    assert rc == 2 and "label 7 at example 0" in err and len(err.strip().splitlines()) == 1, err


def test_symnets_norb_preset_composes():
    cfg = compose("symnets", ["experiment=symnets_norb"])
    assert cfg.data.name == "smallnorb" and cfg.data.size == 48 and cfg.model.name == "symnet"
    assert max(cfg.sweep.n_train) <= 24300 and list(cfg.invariance.models) == []
    assert set(cfg.sweep.models) <= set(cfg.variants)


def test_symnets_norb_preset_runs_on_tiny_files(run_cli, tmp_path):
    write_norb(tmp_path / "d")
    rc, out, err = run_cli("reproduce", "symnets", "experiment=symnets_norb", f"data.root={tmp_path / 'd'}",
                           "data.size=24", "sweep.n_train=[5]", "sweep.seeds=1", "ablation.n_train=[]",
                           "trainer.steps=2", "baseline_steps=2", "trainer.threads=1",
                           "--out", str(tmp_path / "o"), "--name", "t")
    assert rc == 0, err
    assert all(m in out for m in ("convnet", "p4cnn", "symnet")), out

"""Dataset builders: IDX and CIFAR file formats, safe unpickling, mnist1d, digits, the registry."""

import gzip
import os
import pickle
import random
import struct

import numpy as np
import pytest
from omegaconf import OmegaConf

from dlx.data import build_data, list_data
from dlx.data.mnist1d import generate
from dlx.errors import DlxError

RAW = {"normalize": False}


def write_idx(path, arr, gz=False):
    """Exactly the IDX layout: magic 0x0000080<ndim>, big-endian uint32 dims, then uint8 data."""
    body = struct.pack(">I", 0x800 + arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        body = gzip.compress(body)
    path.write_bytes(body)
    return path


def make_mnist(root, gz=False, n=(20, 10)):
    rng = np.random.default_rng(0)
    data = {}
    for prefix, m in (("train", n[0]), ("t10k", n[1])):
        x = rng.integers(0, 256, (m, 28, 28), dtype=np.uint8)
        y = (np.arange(m) % 10).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", y, gz)
        data[prefix] = (x, y)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_roundtrip(tmp_path, gz):
    data = make_mnist(tmp_path, gz)
    b = build_data({"name": "mnist", "root": str(tmp_path), **RAW})
    assert b.meta.input_shape == (1, 28, 28) and b.meta.num_classes == 10
    np.testing.assert_allclose(b.train.x.numpy()[:, 0], data["train"][0] / 255.0, atol=1e-7)
    assert np.array_equal(b.train.y.numpy(), data["train"][1])
    np.testing.assert_allclose(b.test.x.numpy()[:, 0], data["t10k"][0] / 255.0, atol=1e-7)
    assert np.array_equal(b.test.y.numpy(), data["t10k"][1])


def test_fashion_mnist_same_format(tmp_path):
    make_mnist(tmp_path)
    b = build_data({"name": "fashion_mnist", "root": str(tmp_path)})
    assert b.meta.name == "fashion_mnist" and b.meta.class_names[9] == "Ankle boot"


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated_file_names_it(tmp_path, gz):
    make_mnist(tmp_path, gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = tmp_path / name
    raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    path.write_bytes(gzip.compress(raw[:-100]) if gz else raw[:-100])
    with pytest.raises(DlxError, match=name):
        build_data({"name": "mnist", "root": str(tmp_path)})


def test_mnist_truncated_gzip_stream(tmp_path):
    make_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DlxError, match="t10k-labels-idx1-ubyte.gz"):
        build_data({"name": "mnist", "root": str(tmp_path)})


def test_mnist_wrong_magic_and_count_mismatch(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(19, np.uint8))
    with pytest.raises(DlxError, match="train-labels-idx1-ubyte"):
        build_data({"name": "mnist", "root": str(tmp_path)})
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x803, 20) + bytes(20))
    with pytest.raises(DlxError, match="magic"):
        build_data({"name": "mnist", "root": str(tmp_path)})


def test_mnist_missing_root_or_file(tmp_path):
    with pytest.raises(DlxError, match="data.root"):
        build_data({"name": "mnist"})
    with pytest.raises(DlxError, match="train-images-idx3-ubyte"):
        build_data({"name": "mnist", "root": str(tmp_path)})


def write_cifar10(folder, n_per=4, learnable=False):
    """Tiny batches pickled exactly like the real ones: dicts with bytes keys, uint8 rows, label lists.
    learnable: each image is its label's grey level plus noise, so a classifier can fit it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(v) for v in rng.integers(0, 10, n_per)]
        data = rng.integers(0, 256, (n_per, 3072), dtype=np.uint8)
        if learnable:
            noise = rng.integers(0, 20, (n_per, 3072))
            data = (np.asarray(labels)[:, None] * 23 + noise).astype(np.uint8)
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(n_per)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        rows.append((data, labels))
    names = [f"c{i}".encode() for i in range(10)]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": n_per, b"num_vis": 3072}, f)
    return rows


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_roundtrip_and_pixel_layout(tmp_path, nested):
    rows = write_cifar10(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    rows[1][0][2, 1024 + 32 * 5 + 7] = 200  # batch 2, example 2: green channel, row 5, col 7
    folder = tmp_path / "cifar-10-batches-py" if nested else tmp_path
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"labels": rows[1][1], b"data": rows[1][0]}, f)
    b = build_data({"name": "cifar10", "root": str(tmp_path), **RAW})
    assert b.train.x.shape == (20, 3, 32, 32) and b.test.x.shape == (4, 3, 32, 32)
    assert b.meta.class_names == [f"c{i}" for i in range(10)]
    assert b.train.x[4 + 2, 1, 5, 7].item() == pytest.approx(200 / 255)
    x = np.concatenate([r[0] for r in rows[:5]])
    np.testing.assert_allclose(b.train.x.numpy(), x.reshape(20, 3, 32, 32) / 255.0, atol=1e-7)
    assert b.train.y.tolist() == sum((r[1] for r in rows[:5]), [])
    assert b.test.y.tolist() == rows[5][1]


@pytest.mark.parametrize("protocol", [2, 4, 5])  # 2 stores bytes via _codecs.encode, 5 via _frombuffer
def test_cifar100_fine_and_coarse(tmp_path, protocol):
    rng = np.random.default_rng(2)
    for name, n in (("train", 6), ("test", 3)):
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"fine_labels": list(range(90, 90 + n)), b"coarse_labels": [19] * n}, f, protocol)
    fine = build_data({"name": "cifar100", "root": str(tmp_path)})
    coarse = build_data({"name": "cifar100", "root": str(tmp_path), "label_kind": "coarse"})
    assert fine.meta.num_classes == 100 and fine.train.y.tolist() == list(range(90, 96))
    assert coarse.meta.num_classes == 20 and coarse.test.y.tolist() == [19] * 3
    with pytest.raises(DlxError, match="label_kind"):
        build_data({"name": "cifar100", "root": str(tmp_path), "label_kind": "medium"})


class Pwn:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecPwn:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [Pwn, ExecPwn])
def test_cifar_malicious_pickle_refused_and_not_run(tmp_path, payload):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": payload(marker)}, f)
    with pytest.raises(DlxError, match="refusing to unpickle .*data_batch_3"):
        build_data({"name": "cifar10", "root": str(tmp_path)})
    assert not marker.exists()


def test_cifar_missing_and_corrupt(tmp_path):
    with pytest.raises(DlxError, match="data_batch_1"):
        build_data({"name": "cifar10", "root": str(tmp_path)})
    write_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes((tmp_path / "test_batch").read_bytes()[:500])
    with pytest.raises(DlxError, match="test_batch"):
        build_data({"name": "cifar10", "root": str(tmp_path)})


def test_mnist1d_keeps_global_rng_state():
    generate.cache_clear()  # force a real make_dataset call, which reseeds the global RNGs
    np.random.seed(123)
    random.seed(7)
    before_np, before_py = np.random.get_state(), random.getstate()
    b = build_data({"name": "mnist1d", "num_samples": 400, "seed": 3})
    after = np.random.get_state()
    assert before_np[0] == after[0] and np.array_equal(before_np[1], after[1]) and before_np[2:] == after[2:]
    assert random.getstate() == before_py
    assert b.meta.input_shape == (1, 40) and b.meta.num_classes == 10
    assert len(b.train) == 320 and len(b.test) == 80 and b.train.x.shape == (320, 1, 40)
    again = build_data({"name": "mnist1d", "num_samples": 400, "seed": 3})
    assert np.array_equal(again.train.x.numpy(), b.train.x.numpy())


def test_digits_shapes_and_classes():
    b = build_data({"name": "digits", **RAW})
    assert b.meta.input_shape == (1, 8, 8) and b.meta.num_classes == 10
    assert len(b.train) + len(b.test) == 1797 and len(b.test) == 449
    assert b.train.x.min() >= 0 and b.train.x.max() <= 1 and b.train.x.max() > 0.9
    assert set(b.test.y.tolist()) == set(range(10))
    other = build_data({"name": "digits", "split_seed": 1, **RAW})
    assert not np.array_equal(other.test.y.numpy(), b.test.y.numpy())


def test_synthetic_seeded_shapes():
    cfg = {"name": "synthetic", "n": 60, "n_test": 20, "classes": 3, "shape": [1, 4, 4], "seed": 9}
    a, b = build_data(cfg), build_data(cfg)
    assert a.train.x.shape == (60, 1, 4, 4) and a.meta.num_classes == 3
    assert np.bincount(a.train.y.numpy()).tolist() == [20, 20, 20]
    assert np.array_equal(a.train.x.numpy(), b.train.x.numpy())
    assert not np.array_equal(build_data({**cfg, "seed": 10}).train.x.numpy(), a.train.x.numpy())


def test_unknown_dataset_lists_choices():
    with pytest.raises(DlxError) as e:
        build_data({"name": "imagenet"})
    assert "imagenet" in str(e.value) and all(n in str(e.value) for n in list_data())
    names = {"digits", "mnist", "fashion_mnist", "mnist1d", "cifar10", "cifar100", "synthetic"}
    assert names <= set(list_data())


def test_omegaconf_config_with_null_keys():
    cfg = OmegaConf.create({"name": "synthetic", "root": None, "n_train": None, "subset_seed": 0,
                            "label_noise": 0.0, "noise_seed": 0, "val_fraction": 0.0, "normalize": True,
                            "augment": False, "crop_pad": 4, "flip": True, "shape": [2, 6]})
    b = build_data(cfg)
    assert b.meta.input_shape == (2, 6) and len(b.train) == 512 and b.val is None

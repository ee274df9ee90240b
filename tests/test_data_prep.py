"""Shared prep steps: val carve-out, stratified subset, label noise, normalization, augmentation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlx.data import build_data
from dlx.data.bundle import Meta
from dlx.data.prep import Raw, add_label_noise, carve_val, make_augment, prepare, subset
from dlx.errors import DlxError


def balanced(n=300, k=5):
    y = np.arange(n) % k
    return np.arange(n, dtype=np.float64)[:, None], y


def test_label_noise_exact_count_and_never_true_label():
    y = np.arange(1000) % 10
    noisy, clean, mask = add_label_noise(y, 0.3, 10, seed=1)
    assert mask.sum() == 300
    assert np.array_equal(clean, y)
    assert np.array_equal(noisy != clean, mask)  # every masked label changed, no other did
    assert noisy.min() >= 0 and noisy.max() < 10


def test_label_noise_seeded():
    y = np.arange(500) % 4
    a = add_label_noise(y, 0.2, 4, seed=3)
    b = add_label_noise(y, 0.2, 4, seed=3)
    c = add_label_noise(y, 0.2, 4, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])
    assert not np.array_equal(a[2], c[2])


def test_label_noise_wrong_labels_cover_all_alternatives():
    y = np.zeros(3000, dtype=int)
    noisy, _, mask = add_label_noise(y, 0.9, 4, seed=0)
    counts = np.bincount(noisy[mask], minlength=4)
    assert counts[0] == 0 and counts[1:].min() > 800  # uniform over the 3 wrong labels


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_label_noise_out_of_range(p):
    with pytest.raises(DlxError, match="label_noise"):
        add_label_noise(np.arange(10) % 2, p, 2, seed=0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), p=st.floats(0, 0.999), k=st.integers(2, 12), seed=st.integers(0, 2**32 - 1))
def test_label_noise_property(n, p, k, seed):
    y = np.random.default_rng(seed).integers(0, k, n)
    noisy, clean, mask = add_label_noise(y, p, k, seed)
    assert mask.sum() == round(p * n)
    assert np.all(noisy[mask] != clean[mask])
    assert np.array_equal(noisy[~mask], clean[~mask])
    assert np.all((noisy >= 0) & (noisy < k))
    assert np.array_equal(noisy, add_label_noise(y, p, k, seed)[0])


def test_subset_stratified_and_seeded():
    x, y = balanced(1000, 10)
    xs, ys = subset(x, y, 97, seed=0, num_classes=10)
    counts = np.bincount(ys, minlength=10)
    assert len(ys) == 97 and counts.max() - counts.min() <= 1
    assert np.array_equal(x[xs[:, 0].astype(int), 0], xs[:, 0])  # rows keep their labels
    assert np.array_equal(y[xs[:, 0].astype(int)], ys)
    assert np.array_equal(subset(x, y, 97, 0, 10)[0], xs)
    assert not np.array_equal(subset(x, y, 97, 1, 10)[0], xs)


def test_subset_all_and_too_small():
    x, y = balanced(50, 5)
    assert len(subset(x, y, None, 0, 5)[1]) == 50
    assert len(subset(x, y, 50, 0, 5)[1]) == 50
    with pytest.raises(DlxError, match="more than the 50"):
        subset(x, y, 500, 0, 5)
    with pytest.raises(DlxError, match="n_train"):
        subset(x, y, 4, 0, 5)


def test_val_carve_out_disjoint_and_stratified():
    x, y = balanced(400, 4)
    xt, yt, xv, yv = carve_val(x, y, 0.25, seed=0, num_classes=4)
    assert len(yv) == 100 and len(yt) == 300
    assert np.bincount(yv).tolist() == [25] * 4
    assert not set(xt[:, 0]) & set(xv[:, 0])
    with pytest.raises(DlxError, match="val_fraction"):
        carve_val(x, y, 1.0, 0, 4)


def test_normalization_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    xtr = rng.normal(5.0, 2.0, (200, 3, 4, 4))
    xte = rng.normal(50.0, 9.0, (100, 3, 4, 4))  # very different: test stats must not leak in
    y = np.arange(200) % 2
    raw = Raw(xtr, y, xte, np.arange(100) % 2, Meta("t", "classify", (3, 4, 4), 2))
    b = prepare({"normalize": True}, raw)
    mean = xtr.mean(axis=(0, 2, 3), keepdims=True)
    std = xtr.std(axis=(0, 2, 3), keepdims=True)
    assert torch.allclose(b.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(b.train.x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    np.testing.assert_allclose(b.test.x.numpy(), (xte - mean) / std, rtol=1e-4, atol=1e-4)
    assert b.test.x.mean() > 10
    off = prepare({"normalize": False}, raw)
    np.testing.assert_allclose(off.test.x.numpy(), xte, rtol=1e-6)


def test_normalization_after_subset_uses_subset_statistics():
    b = build_data({"name": "synthetic", "n_train": 40, "shape": [1, 32]})
    assert abs(float(b.train.x.mean())) < 1e-5 and abs(float(b.train.x.std(unbiased=False)) - 1) < 1e-4


def test_augment_shape_and_determinism():
    x = torch.randn(16, 3, 8, 8)
    aug = make_augment(crop_pad=2, flip=True)
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    c = aug(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augment_flip_only_flips():
    x = torch.randn(64, 2, 5, 7)
    out = make_augment(crop_pad=0, flip=True)(x, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert torch.all(same | flipped) and same.any() and flipped.any() and not same.all()
    assert torch.equal(make_augment(crop_pad=0, flip=False)(x, torch.Generator()), x)


def test_augment_crop_is_a_shifted_window_of_zero_padded_input():
    x = torch.rand(20, 1, 6, 6) + 1  # strictly positive so padding zeros are recognisable
    out = make_augment(crop_pad=2, flip=False)(x, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert (out == 0).any()  # some crop reached into the padding


def test_augment_only_for_images():
    with pytest.raises(DlxError, match="augment"):
        build_data({"name": "synthetic", "shape": [1, 32], "augment": True})
    b = build_data({"name": "synthetic", "shape": [1, 8, 8], "augment": True, "crop_pad": 1})
    x, y = b.augment((b.train.x, b.train.y), torch.Generator())  # acts on whole (x, y) batches
    assert x.shape == b.train.x.shape and torch.equal(y, b.train.y)
    assert build_data({"name": "synthetic", "shape": [1, 8, 8]}).augment is None


def test_bundle_noise_fields_consistent():
    b = build_data({"name": "synthetic", "n": 200, "label_noise": 0.25, "noise_seed": 5, "val_fraction": 0.1})
    assert len(b.train) == 180 and len(b.val) == 20
    noise = b.notes["label_noise"]
    assert noise.mask.dtype == bool and noise.mask.sum() == 45
    assert np.array_equal(b.train.y.numpy() != noise.clean, noise.mask)
    assert b.train.x.dtype == torch.float32 and b.train.y.dtype == torch.int64

"""Generated datasets are kept on disk (dlx/data/generated.py): read back equal, regenerated when the file
is damaged, and still returned where nothing can be written."""

from __future__ import annotations

import numpy as np

from dlx.data import generated


def test_arrays_are_generated_once_then_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path))
    calls = []

    def make():
        calls.append(1)
        return np.arange(6.0).reshape(2, 3), np.array([1, 2], dtype=np.int64)

    a = generated.cached("toy", {"n": 2}, make)
    b = generated.cached("toy", {"n": 2}, make)
    assert len(calls) == 1 and len(list(tmp_path.glob("toy-*.npz"))) == 1
    assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b, strict=True))
    generated.cached("toy", {"n": 3}, make)  # other arguments: another file
    assert len(calls) == 2 and len(list(tmp_path.glob("toy-*.npz"))) == 2
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed


def test_a_damaged_file_is_generated_again(tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path))
    generated.cached("toy", {"n": 1}, lambda: (np.ones(3),))
    (path,) = tmp_path.glob("toy-*.npz")
    path.write_bytes(b"not a zip")
    out = generated.cached("toy", {"n": 1}, lambda: (np.zeros(3),))
    assert np.array_equal(out[0], np.zeros(3))
    assert np.array_equal(generated.cached("toy", {"n": 1}, lambda: (np.ones(3),))[0], np.zeros(3))


def test_an_unwritable_cache_still_gives_the_data(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("DLX_CACHE_DIR", str(blocked / "dlx"))
    out = generated.cached("toy", {"n": 1}, lambda: (np.arange(3),))
    assert np.array_equal(out[0], np.arange(3))


def test_mnist1d_from_the_cache_equals_the_generator(tmp_path, monkeypatch):
    from dlx.data.mnist1d import generate

    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path))
    generate.cache_clear()
    try:
        fresh = generate(200, 3)
        generate.cache_clear()
        again = generate(200, 3)
    finally:
        generate.cache_clear()
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 1
    assert [a.shape for a in again] == [(160, 1, 40), (160,), (40, 1, 40), (40,)]
    for x, y in zip(fresh, again, strict=True):
        assert np.array_equal(x, y) and x.dtype == y.dtype and not y.flags.writeable

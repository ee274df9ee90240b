"""Sweep machinery: grid expansion, deterministic ids, skip-completed resume, failure recording."""

from __future__ import annotations

import pytest

from dlx.errors import DlxError
from dlx.sweep import collect, execute, expand, run_id

BASE = ["trainer=quick", "trainer.steps=3", "trainer.threads=1", "model.width=8", "data.n_train=100"]


def test_expand_cartesian_and_zip():
    kids = expand({"model.width": [4, 8], "seed": [0, 1, 2]})
    assert len(kids) == 6 and kids[0].overrides == ("model.width=4", "seed=0")
    zipped = expand({"model.width": [4, 8], "seed": [0, 1]}, zipped=True)
    assert [c.overrides for c in zipped] == [("model.width=4", "seed=0"), ("model.width=8", "seed=1")]
    with pytest.raises(DlxError, match="equal length"):
        expand({"model.width": [4, 8], "seed": [0]}, zipped=True)
    with pytest.raises(DlxError, match="empty"):
        expand({})
    with pytest.raises(DlxError, match="no values"):
        expand({"model.width": []})


def test_run_ids_are_deterministic_and_distinct():
    a = run_id({"model.width": 8, "seed": 0})
    assert a == run_id({"model.width": 8, "seed": 0})
    assert a != run_id({"model.width": 8, "seed": 1})
    assert run_id({"a.width": 8}) != run_id({"b.width": 8})  # same short name, different keys
    # null values stay out of the readable part (no 'n_trainnull'), but still tell ids apart
    assert run_id({"model.width": 8, "data.n_train": None}).startswith("width8-")
    assert run_id({"model.width": 8, "data.n_train": None}) != run_id({"model.width": 8})
    assert run_id({"data.n_train": None}).startswith("run-")


def test_execute_skips_completed_children_and_records_failures(tmp_path):
    kids = expand({"model.width": [4, 8], "seed": [0]})
    statuses = execute(kids, "train", BASE, tmp_path, launcher="inline", progress="none")
    assert set(statuses.values()) == {"completed"}
    first = {c.run_id: (tmp_path / "runs" / c.run_id / "summary.json").stat().st_mtime_ns for c in kids}
    (tmp_path / "runs" / kids[0].run_id / "summary.json").unlink()  # as if killed mid-run
    execute(kids, "train", BASE, tmp_path, launcher="inline", progress="none")
    after = {c.run_id: (tmp_path / "runs" / c.run_id / "summary.json").stat().st_mtime_ns for c in kids}
    assert after[kids[1].run_id] == first[kids[1].run_id]  # untouched
    assert after[kids[0].run_id] != first[kids[0].run_id]  # re-run

    bad = expand({"model.depth": [-1]})
    st = execute(bad, "train", BASE, tmp_path, launcher="inline", progress="none")
    assert list(st.values()) == ["failed"]
    results, _ = collect(tmp_path, bad)
    assert results.status.tolist() == ["failed"] and "depth" in results.error.iloc[0]


def test_local_pool_matches_inline(tmp_path):
    kids = expand({"model.width": [4, 8]})
    execute(kids, "train", BASE, tmp_path / "a", launcher="inline", progress="none")
    execute(kids, "train", BASE, tmp_path / "b", launcher="local", workers=2, progress="none")
    ra, _ = collect(tmp_path / "a", kids)
    rb, _ = collect(tmp_path / "b", kids)
    assert ra.test_loss.tolist() == pytest.approx(rb.test_loss.tolist(), rel=1e-5)


def test_unknown_launcher(tmp_path):
    with pytest.raises(DlxError, match="unknown launcher"):
        execute(expand({"seed": [0]}), "train", BASE, tmp_path, launcher="moon")

"""Double descent: the detection rule on synthetic curves, input validation, and a tiny sweep end to
end through the CLI including resume after a child is deleted."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from dlx.papers.double_descent.analysis import curve_stats

W = [2, 4, 8, 16, 32, 64, 128]
TRAIN = [0.8, 0.6, 0.3, 0.08, 0.02, 0.0, 0.0]


def test_detects_a_peak_when_present():
    test = [0.60, 0.50, 0.45, 0.56, 0.52, 0.47, 0.44]
    s = curve_stats(W, test, TRAIN, epsilon=0.1, min_rise=0.02)
    assert s["detected"] and s["peak_width"] == 16 and s["threshold_width"] == 16
    assert s["best_before"] == 0.45 and s["best_after"] == 0.44
    assert s["rise"] == pytest.approx(0.56 - 0.45)
    assert s["peak_over_widest"] == pytest.approx(0.12)


@pytest.mark.parametrize("test", [
    [0.60, 0.55, 0.50, 0.45, 0.44, 0.43, 0.42],  # monotone decreasing
    [0.40, 0.42, 0.45, 0.50, 0.55, 0.57, 0.60],  # monotone increasing
    [0.50, 0.45, 0.451, 0.44, 0.445, 0.43, 0.43],  # wiggles below min_rise
])
def test_no_peak_when_monotone_or_flat(test):
    assert not curve_stats(W, test, TRAIN, epsilon=0.1, min_rise=0.02)["detected"]


def test_threshold_none_when_never_interpolating():
    assert curve_stats(W, [0.5] * 7, [0.5] * 7, epsilon=0.1, min_rise=0.02)["threshold_width"] is None


QUICK = ["sweep.widths=[2,6]", "sweep.seeds=2", "launcher=inline", "trainer.epochs=3",
         "trainer.eval_points=3", "data.num_samples=600", "trainer.threads=1"]


def test_tiny_sweep_end_to_end_and_resume(run_cli, tmp_path):
    rc, out, err = run_cli("sweep", "double-descent", *QUICK, "--out", str(tmp_path), "--name", "dd")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "dd"
    results = pd.read_csv(d / "results.csv")
    assert len(results) == 4 and set(results.width) == {2, 6} and set(results.seed) == {0, 1}
    assert (results.status == "completed").all() and (results.n_train == 480).all()
    assert {"width", "params", "n_train", "label_noise", "seed", "train_error", "test_error", "train_loss",
            "test_loss", "epochs", "status", "wall_s"} <= set(results.columns)
    curves = pd.read_csv(d / "curves.csv")
    assert set(curves.epoch) == {1, 2, 3} and len(curves) == 12
    summary = json.loads((d / "summary.json").read_text())
    assert summary["kind"] == "double_descent" and summary["status"] == "completed"
    assert "threshold_width" in summary["metrics"] and summary["analysis"]["children"] == 4
    for png in ("error_vs_width.png", "heatmap_width_epoch.png", "epochwise.png"):
        assert (d / png).stat().st_size > 1000

    victim = results.run_id.iloc[0]
    shutil.rmtree(d / "runs" / victim)
    kept = results.run_id.iloc[1]
    mtime = (d / "runs" / kept / "summary.json").stat().st_mtime_ns
    rc, _, err = run_cli("sweep", "double-descent", *QUICK, "--out", str(tmp_path), "--name", "dd")
    assert rc == 0, err
    again = pd.read_csv(d / "results.csv")
    assert (again.status == "completed").all()
    assert (d / "runs" / kept / "summary.json").stat().st_mtime_ns == mtime  # skipped, not retrained
    pd.testing.assert_series_equal(again.test_error, results.test_error)  # same seeds, same numbers

    (d / "error_vs_width.png").unlink()
    assert run_cli("plot", str(d))[0] == 0 and (d / "error_vs_width.png").is_file()

    rc, _, err = run_cli("sweep", "double-descent", *QUICK, "trainer.epochs=4", "--out", str(tmp_path),
                         "--name", "dd")
    assert rc == 2 and "other overrides" in err

    # one output tree whichever spelling runs it: `dlx reproduce double-descent` continues the same sweep
    rc, _, err = run_cli("reproduce", "double-descent", *QUICK, "--out", str(tmp_path), "--name", "dd")
    assert rc == 0, err
    assert (d / "runs" / kept / "summary.json").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reproduce"]
    # a sweep an older dlx wrote under outputs/sweep/ is continued there, not started again elsewhere
    (tmp_path / "sweep").mkdir()
    shutil.move(d, tmp_path / "sweep" / "dd")
    rc, out, err = run_cli("sweep", "double-descent", *QUICK, "--out", str(tmp_path), "--name", "dd")
    assert rc == 0, err
    summary = tmp_path / "sweep" / "dd" / "runs" / kept / "summary.json"
    assert not d.exists() and summary.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("override, needle", [
    ("sweep.widths=[]", "sweep.widths is empty"),
    ("sweep.label_noise=[1.0]", "label_noise"),
    ("sweep.label_noise=[-0.1]", "label_noise"),
    ("experiment=dd_nope", "unknown experiment 'dd_nope'"),
])
def test_bad_sweep_input(run_cli, tmp_path, override, needle):
    rc, _, err = run_cli("sweep", "double-descent", override, "--out", str(tmp_path))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1

"""Tasks beyond classification, end to end: the task protocol (sums and concatenations), the binary and
regress tasks on their embedded datasets, baselines fit as sweep children, and callback state through a
checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

from dlx.build import build
from dlx.config import compose
from dlx.data import build_data
from dlx.data.bundle import Meta, TensorSplit
from dlx.errors import DlxError
from dlx.tasks import TASKS, Task, build_task
from dlx.train import evaluate

QUICK = ["trainer=quick", "trainer.threads=1"]


class Fixed(torch.nn.Module):
    """A 'model' that returns given outputs for inputs 0..n-1 (x is the row index)."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = torch.as_tensor(outputs, dtype=torch.float32)

    def forward(self, x):
        return self.outputs[x.long().reshape(-1)]


def test_binary_metrics_are_over_the_whole_split_not_averaged_per_batch():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 101)
    y[:2] = [0, 1]
    logits = rng.normal(size=101) + 1.5 * y
    split = TensorSplit((torch.arange(101), torch.as_tensor(y)))
    meta = Meta("t", "binary", (1,), num_outputs=1)
    task = build_task({"name": "binary"}, meta)
    m = evaluate(Fixed(logits[:, None]), task, split, batch_size=7)  # 15 batches: AUC needs concatenation
    assert m["auc"] == pytest.approx(roc_auc_score(y, logits))
    assert m["error"] == pytest.approx(np.mean((logits > 0) != y))
    bce = np.mean(np.logaddexp(0, logits) - y * logits)
    assert m["loss"] == pytest.approx(bce, rel=1e-5)


def test_regress_reports_errors_in_the_targets_units():
    y = np.linspace(-1, 1, 50)
    pred = y + np.sin(np.arange(50))
    meta = Meta("t", "regress", (1,), num_outputs=1, extra={"target_std": 40.0})
    task = build_task({"name": "regress"}, meta)
    split = TensorSplit((torch.arange(50), torch.as_tensor(y)))
    m = evaluate(Fixed(pred[:, None]), task, split, batch_size=8)
    assert m["rmse"] == pytest.approx(40 * mean_squared_error(y, pred) ** 0.5, rel=1e-5)
    assert m["mae"] == pytest.approx(40 * mean_absolute_error(y, pred), rel=1e-5)
    assert m["loss"] == pytest.approx(mean_squared_error(y, pred), rel=1e-5)


def test_a_task_only_trains_on_its_data_family():
    with pytest.raises(DlxError, match="use task=regress"):
        build_task({"name": "classify"}, Meta("diabetes", "regress", (10,), num_outputs=1))
    with pytest.raises(DlxError, match="task 'rank' does not fit data 'digits'.*use task=classify"):
        build_task({"name": "rank"}, Meta("digits", "classify", (64,), num_outputs=10))
    with pytest.raises(DlxError, match=r"unknown task 'ranking' \(choose from: .*rank, regress\)"):
        build_task({"name": "ranking"})


def test_every_task_declares_its_headline():
    for name, cls in TASKS.items():
        assert issubclass(cls, Task) and cls.name == name
        d = cls.describe()
        assert set(d) == {"task", "primary", "higher_is_better", "loss_name"}
    assert (TASKS["binary"].primary, TASKS["binary"].higher_is_better) == ("auc", True)
    assert TASKS["regress"].best([3.0, 2.0, float("nan")]) == 2.0
    assert TASKS["binary"].best([0.7, 0.9, float("nan")]) == 0.9


def test_diabetes_and_synthetic_binary_are_offline_tables():
    d = build_data(compose("train", ["data=diabetes"]).data)
    assert d.meta.task == "regress" and d.meta.input_shape == (10,) and d.meta.num_outputs == 1
    assert len(d.train) + len(d.test) == 442 and len(d.test) == round(0.25 * 442)
    y = d.train.y.numpy()
    assert abs(y.mean()) < 1e-6 and y.std() == pytest.approx(1.0, abs=1e-6)  # standardized on train
    assert 50 < d.meta.extra["target_std"] < 100  # disease progression: std about 77 on the full table
    b = build_data(compose("train", ["data=synthetic_binary", "data.signal_fraction=0.2"]).data)
    assert b.meta.task == "binary" and len(b.train) == 2000 and len(b.test) == 1000
    assert 0.15 < b.train.y.float().mean() < 0.25
    again = build_data(compose("train", ["data=synthetic_binary", "data.signal_fraction=0.2"]).data)
    assert torch.equal(b.train.x, again.train.x)  # seeded
    with pytest.raises(DlxError, match="label_noise is for classification"):
        build_data(compose("train", ["data=diabetes", "data.label_noise=0.1"]).data)


@pytest.mark.parametrize("task, data, primary, better", [
    ("regress", "diabetes", "rmse", lambda v: 40 < v < 90),
    ("binary", "synthetic_binary", "auc", lambda v: 0.7 < v <= 1.0),
])
def test_train_other_tasks_end_to_end(run_cli, tmp_path, task, data, primary, better):
    rc, out, err = run_cli("train", f"task={task}", f"data={data}", "model=mlp", "model.width=32",
                           "trainer.epochs=6", "trainer.threads=1", "trainer.progress=plain",
                           "--out", str(tmp_path), "--name", "t")
    assert rc == 0, err
    assert f"test {primary}" in err  # progress shows the task's headline metric
    s = json.loads((tmp_path / "train" / "t" / "summary.json").read_text())
    assert s["primary"] == primary and s["task"] == task
    assert better(s["metrics"][f"test_{primary}"]) and f"best_test_{primary}" in s["metrics"]
    assert "test_error" not in s["metrics"] or task == "binary"
    df = pd.read_csv(tmp_path / "train" / "t" / "metrics.csv")
    assert f"train_{primary}" in df and len(df) == 6
    assert f"best_test_{primary}" in out


def test_grid_over_a_regression_collects_rmse_and_picks_the_lowest(run_cli, tmp_path):
    rc, _, err = run_cli("sweep", "grid", "model.width=4,32", "task=regress", "data=diabetes", *QUICK,
                         "launcher=inline", "--out", str(tmp_path), "--name", "g")
    assert rc == 0, err
    res = pd.read_csv(tmp_path / "sweep" / "g" / "results.csv")
    assert {"test_rmse", "train_rmse", "best_test_rmse"} <= set(res.columns)
    s = json.loads((tmp_path / "sweep" / "g" / "summary.json").read_text())
    assert s["primary"] == "rmse" and s["metrics"]["best_test_rmse"] == pytest.approx(res.test_rmse.min())


def test_baselines_are_sweep_children_with_the_same_contract(run_cli, tmp_path):
    args = ["sweep", "grid", "baseline=ridge,gbt", "task=regress", "data=diabetes",
            "sweep.child=fit", "launcher=local", "--out", str(tmp_path), "--name", "b"]
    rc, _, err = run_cli(*args)
    assert rc == 0, err
    d = tmp_path / "sweep" / "b"
    res = pd.read_csv(d / "results.csv")
    assert sorted(res.baseline) == ["gbt", "ridge"] and (res.status == "completed").all()
    assert res.test_rmse.between(40, 90).all()
    for rid in res.run_id:
        s = json.loads((d / "runs" / rid / "summary.json").read_text())
        assert s["kind"] == "fit" and s["primary"] == "rmse"
        assert (d / "runs" / rid / "config.yaml").is_file() and (d / "runs" / rid / "metrics.csv").is_file()
    first = {rid: (d / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in res.run_id}
    assert run_cli(*args)[0] == 0  # resumes: nothing to redo
    assert first == {rid: (d / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in res.run_id}


def test_fit_command_and_bad_baselines(run_cli, tmp_path):
    rc, out, err = run_cli("fit", "baseline=logistic", "--out", str(tmp_path), "--name", "f")
    assert rc == 0, err
    s = json.loads((tmp_path / "fit" / "f" / "summary.json").read_text())
    assert s["kind"] == "fit" and s["metrics"]["test_error"] < 0.1  # logistic regression on digits
    rc, _, err = run_cli("fit", "baseline=ridge", "--out", str(tmp_path), "--name", "r")
    assert rc == 2 and "does not fit task 'classify'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "fit" / "r").exists()


def test_callback_state_travels_in_the_checkpoint(tmp_path):
    """A stateful callback gets its state back on resume (what an evolutionary search needs)."""
    from dlx.train import fit
    from dlx.train.callbacks import Callback, Checkpointer

    class Counter(Callback):
        def __init__(self):
            self.batches = 0

        def state_dict(self):
            return {"batches": self.batches}

        def load_state_dict(self, state):
            self.batches = state["batches"]

        def on_batch_end(self, state):
            self.batches += 1

    cfg = compose("train", [*QUICK, "trainer.epochs=2"])
    parts = build(cfg)
    first = Counter()
    fit(parts.model, parts.task, parts.data, parts.precision, cfg.trainer, cfg.optimizer,
        callbacks=[first, Checkpointer(tmp_path / "c.pt")])
    assert first.batches > 0
    cfg3 = compose("train", [*QUICK, "trainer.epochs=3"])
    parts = build(cfg3)
    resumed = Counter()
    fit(parts.model, parts.task, parts.data, parts.precision, cfg3.trainer, cfg3.optimizer,
        callbacks=[resumed], resume_from=tmp_path / "c.pt")
    assert resumed.batches == first.batches * 3 // 2  # restored, then one more epoch counted


def test_a_model_with_nothing_to_train_is_evaluated_once(tmp_path):
    """Fitted or fixed scorers (ranking baselines) run as ordinary train children: epoch 0, no steps."""
    from dlx.train import fit
    from dlx.train.callbacks import Checkpointer

    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.randn(64, 10, generator=torch.Generator().manual_seed(0)))

        def forward(self, x):
            return x.flatten(1) @ self.w

    cfg = compose("train", QUICK)
    parts = build(cfg)
    hist = fit(Fixed(), parts.task, parts.data, parts.precision, cfg.trainer, cfg.optimizer,
               callbacks=[Checkpointer(tmp_path / "c.pt")])
    assert (hist.status, hist.epoch, hist.step) == ("completed", 0, 0)
    assert len(hist.rows) == 1 and hist.rows[0]["epoch"] == 0 and 0.5 < hist.rows[0]["test_error"] < 1
    assert (tmp_path / "c.pt").is_file()


def test_per_example_predictions_are_saved_for_the_splits_asked(run_cli, tmp_path):
    rc, _, err = run_cli("train", "task=binary", "data=synthetic_binary", "trainer=quick",
                         "trainer.threads=1", "task.save_predictions=[test]", "--out", str(tmp_path),
                         "--name", "p")
    assert rc == 0, err
    d = tmp_path / "train" / "p"
    pred = pd.read_csv(d / "predictions_test.csv")
    assert list(pred.columns) == ["score", "label"] and len(pred) == 1000
    s = json.loads((d / "summary.json").read_text())
    assert roc_auc_score(pred.label, pred.score) == pytest.approx(s["metrics"]["test_auc"], abs=1e-6)
    assert not (d / "predictions_train.csv").exists()
    rc, _, err = run_cli("fit", "task=binary", "data=synthetic_binary", "task.save_predictions=[test]",
                         "--out", str(tmp_path), "--name", "f")
    assert rc == 0 and len(pd.read_csv(tmp_path / "fit" / "f" / "predictions_test.csv")) == 1000

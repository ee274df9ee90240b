"""TensorBoard and MLflow beside the run directory, read back with each library's own reader."""

from __future__ import annotations

import json

import pandas as pd
import pytest

QUICK = ["trainer=quick", "trainer.threads=1", "data.n_train=300"]


def test_tensorboard_events_match_metrics_csv(run_cli, tmp_path):
    pytest.importorskip("tensorboard", reason="the tracking extra: pip install -e '.[track]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rc, _, err = run_cli("train", *QUICK, "logger=tensorboard", "--out", str(tmp_path), "--name", "t")
    assert rc == 0, err
    run = tmp_path / "train" / "t"
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    df = pd.read_csv(run / "metrics.csv")
    got = [e.value for e in acc.Scalars("test_error")]
    assert got == pytest.approx(df.test_error.tolist(), rel=1e-6)
    assert [e.step for e in acc.Scalars("test_error")] == df.step.tolist()
    assert "figures/learning_curves" in acc.Tags()["images"]
    assert (run / "metrics.csv").is_file() and (run / "summary.json").is_file()  # the contract stays


def test_mlflow_sqlite_store_has_the_run_and_a_sweep_with_nested_children(run_cli, tmp_path):
    pytest.importorskip("mlflow", reason="the tracking extra: pip install -e '.[track]'")
    from mlflow.tracking import MlflowClient

    rc, _, err = run_cli("train", *QUICK, "logger=mlflow", "--out", str(tmp_path), "--name", "m")
    assert rc == 0, err
    rc, _, err = run_cli("sweep", "grid", "model.width=8,16", *QUICK, "logger=[tensorboard,mlflow]",
                         "launcher=local", "--out", str(tmp_path), "--name", "g")
    assert rc == 0, err
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    train = client.get_experiment_by_name("dlx/train")
    (run,) = client.search_runs([train.experiment_id])
    metrics = pd.read_csv(tmp_path / "train" / "m" / "metrics.csv")
    history = client.get_metric_history(run.info.run_id, "test_error")
    assert [h.value for h in history] == pytest.approx(metrics.test_error.tolist())
    summary = json.loads((tmp_path / "train" / "m" / "summary.json").read_text())
    assert run.data.metrics["final.best_test_error"] == pytest.approx(summary["metrics"]["best_test_error"])
    assert run.data.params["model.name"] == "mlp" and run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")] == \
        ["figures/learning_curves.png"]
    grid = client.get_experiment_by_name("dlx/grid")
    runs = client.search_runs([grid.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert len(parent) == 1 and len(children) == 2
    assert sorted(r.data.params["model.width"] for r in children) == ["16", "8"]
    assert parent[0].data.tags["dlx.axes"] == "['model.width']"


def test_a_tracker_failure_never_loses_the_run(run_cli, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the tracking extra: pip install -e '.[track]'")
    from dlx.tracking.mlflow import MLflow

    def broken(self, row, step):
        raise OSError("database is locked")

    monkeypatch.setattr(MLflow, "metrics", broken)
    rc, _, err = run_cli("train", *QUICK, "logger=mlflow", "--out", str(tmp_path), "--name", "b")
    assert rc == 0 and "dlx: warning: tracking with mlflow: OSError: database is locked" in err
    s = json.loads((tmp_path / "train" / "b" / "summary.json").read_text())
    assert s["status"] == "completed" and "database is locked" in s["tracking_errors"][0]


def test_a_missing_tracker_package_is_one_line(run_cli, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    rc, _, err = run_cli("train", *QUICK, "logger=tensorboard", "--out", str(tmp_path))
    assert rc == 2 and "pip install -e '.[track]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "train").exists()


def test_logger_choices_are_checked(run_cli, tmp_path):
    rc, _, err = run_cli("train", "logger=[tensorboard,wandb]", "--out", str(tmp_path))
    assert rc == 2 and "unknown logger 'wandb'" in err

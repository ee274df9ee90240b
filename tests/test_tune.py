"""dlx tune: Optuna's search on the validation split, each trial a train run; resumable and shared."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

QUICK = ["data=digits", "trainer.epochs=2", "trainer.threads=1",
         "tune.space.optimizer.lr=tag(log, interval(0.01, 0.3))", "tune.space.model.width=choice(16, 32, 64)"]


def trials_of(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv")


def test_tune_writes_its_tables_and_figures_and_train_composes_best(run_cli, tmp_path):
    rc, out, err = run_cli("tune", *QUICK, "tune.trials=4", "--out", str(tmp_path), "--name", "t")
    assert rc == 0, err
    d = tmp_path / "tune" / "t"
    df = trials_of(d)
    assert len(df) == 4 and (df["state"] == "complete").all()
    assert {"val_error", "optimizer.lr", "model.width", "seconds"} <= set(df.columns)
    assert df["model.width"].isin([16, 32, 64]).all() and df["optimizer.lr"].between(0.01, 0.3).all()
    best = yaml.safe_load((d / "best.yaml").read_text())
    i = int(df["val_error"].idxmin())
    assert best["value"] == pytest.approx(df["val_error"][i]) and best["trial"] == int(df["trial"][i])
    width = int(df["model.width"][i])
    assert "data=digits" in best["overrides"] and f"model.width={width}" in best["overrides"]
    assert not any(o.startswith(("tune.", "data.val_fraction")) for o in best["overrides"])
    assert (d / "history.png").is_file() and (d / "importances.png").is_file()
    assert "tune: best val_error" in out
    # every trial scored on a validation split carved from training, and never on test
    for t in df["dir"]:
        s = json.loads((d / t / "summary.json").read_text())
        assert "val_error" in s["metrics"] and not any(k.startswith("test_") for k in s["metrics"])
        assert "data.val_fraction=0.2" in (d / t / "overrides.yaml").read_text()
    rc, _, err = run_cli("train", f"+tune={d}/best.yaml", "trainer.epochs=1", "--out", str(tmp_path),
                         "--name", "chosen")
    assert rc == 0, err
    cfg = yaml.safe_load((tmp_path / "train" / "chosen" / "config.yaml").read_text())
    assert cfg["model"]["width"] == int(df["model.width"][i])
    assert cfg["optimizer"]["lr"] == pytest.approx(float(df["optimizer.lr"][i]))
    assert cfg["trainer"]["epochs"] == 1 and cfg["data"]["val_fraction"] == 0.0  # later overrides win


def test_tune_never_reads_the_test_split(run_cli, tmp_path, monkeypatch):
    """The data's test split raises on any use: tuning finishes; a train run on the same data fails."""
    import dataclasses

    import dlx.data

    class Sealed:
        def __len__(self):
            raise AssertionError("test split read")

        def batches(self, *a, **k):
            raise AssertionError("test split read")

    real = dlx.data.build_data
    def sealed(cfg, device="cpu"):
        return dataclasses.replace(real(cfg, device=device), test=Sealed())

    monkeypatch.setattr(dlx.data, "build_data", sealed)
    rc, _, err = run_cli("tune", *QUICK, "tune.trials=2", "--out", str(tmp_path), "--name", "sealed")
    assert rc == 0, err
    assert (trials_of(tmp_path / "tune" / "sealed")["state"] == "complete").all()
    rc, _, err = run_cli("train", *QUICK[:3], "--out", str(tmp_path))
    assert rc != 0


def _tune_process(tmp_path: Path, name: str, trials: int, epochs: int) -> subprocess.Popen:
    args = ["data=digits", f"trainer.epochs={epochs}", "trainer.threads=1", f"tune.trials={trials}",
            "tune.space.optimizer.lr=tag(log, interval(0.01, 0.3))"]
    return subprocess.Popen([sys.executable, "-m", "dlx", "tune", *args, "--out", str(tmp_path),
                             "--name", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_a_killed_tune_resumes_and_runs_only_the_remaining_trials(run_cli, tmp_path):
    d = tmp_path / "tune" / "k"
    proc = _tune_process(tmp_path, "k", 4, 30)
    deadline = time.time() + 120
    while not (d / "trials" / "0001" / "summary.json").is_file():  # the second trial has started
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = json.loads((d / "trials" / "0000" / "summary.json").read_text())
    assert first["status"] == "completed"
    rc, _, err = run_cli("tune", "data=digits", "trainer.epochs=30", "trainer.threads=1", "tune.trials=4",
                         "tune.space.optimizer.lr=tag(log, interval(0.01, 0.3))", "--out", str(tmp_path),
                         "--name", "k")
    assert rc == 0, err
    df = trials_of(d)
    assert (df["state"] == "complete").sum() == 4
    assert set(df["state"]) <= {"complete", "restarted"}
    # trial 0 was not trained again; the killed one ran again in its own directory, continued there
    assert json.loads((d / "trials" / "0000" / "summary.json").read_text())["started"] == first["started"]
    assert df.loc[df["state"] == "complete", "dir"].is_unique
    assert len(list((d / "trials").iterdir())) == 4


def test_two_processes_share_one_study_and_run_each_trial_once(tmp_path):
    a = _tune_process(tmp_path, "shared", 6, 3)
    time.sleep(1.0)
    b = _tune_process(tmp_path, "shared", 6, 3)
    for p in (a, b):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    d = tmp_path / "tune" / "shared"
    df = trials_of(d)
    assert len(df) == 6 and (df["state"] == "complete").all() and df["dir"].is_unique
    owners = {json.loads((d / t / "summary.json").read_text()).get("invocations", 1) for t in df["dir"]}
    assert owners == {1}  # no trial trained twice


def test_tpe_models_the_results_after_tune_startup_trials():
    from optuna.samplers import RandomSampler, TPESampler

    from dlx.kinds.tune.study import _sampler

    tpe = _sampler("tpe", 0, 3)
    assert isinstance(tpe, TPESampler) and tpe._n_startup_trials == 3  # Optuna's own setting
    assert isinstance(_sampler("random", 0), RandomSampler)


def test_search_space_syntax():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from dlx.errors import DlxError
    from dlx.kinds.tune.space import distributions, flat, overrides

    d = distributions({"optimizer.lr": "tag(log, interval(1e-4, 0.1))", "model.width": "int(interval(8, 64))",
                       "model.depth": "range(1, 4)", "optimizer.name": "choice(sgd, adam)"})
    assert d["optimizer.lr"] == FloatDistribution(1e-4, 0.1, log=True)
    assert d["model.width"] == IntDistribution(8, 64)
    assert d["model.depth"] == IntDistribution(1, 3)
    assert d["optimizer.name"] == CategoricalDistribution(["sgd", "adam"])
    assert flat({"optimizer": {"lr": "x"}, "model.width": "y"}) == {"optimizer.lr": "x", "model.width": "y"}
    assert overrides({"a.b": 0.5, "c": 3, "d": "it's"}) == ["a.b=0.5", "c=3", "d='it\\'s'"]
    for bad in ("0.1", "interval(0.1, 0.01)", "tag(log, interval(0, 1))", "choice(", "range(0.5, 2)"):
        with pytest.raises(DlxError):
            distributions({"optimizer.lr": bad})


@pytest.mark.parametrize("args,words", [
    (["tune.trials=0"], "tune.trials"),
    (["tune.sampler=grid"], "tune.sampler"),
    (["tune.startup=0"], "tune.startup"),
    (["model=resnet"], "no default search space"),
    (["tune.space.optimizer.lr=5"], "one value"),
    (["tune.child=forecast", "data=issm_panel", "task=forecast", "model=deepar", "data.days=22",
      "tune.space.optimizer.lr=interval(0.01, 0.1)"], "data.val_windows"),  # no history for validation
])
def test_bad_tune_settings_are_one_line_and_exit_2(run_cli, tmp_path, args, words):
    rc, _, err = run_cli("tune", *args, "--out", str(tmp_path))
    assert rc == 2 and words in err and "Traceback" not in err
    assert not (tmp_path / "tune").exists()


def test_a_pruned_trial_stops_and_is_reported(tmp_path):
    """The reporter hands each validation value to the trial; when the pruner says stop, the run ends
    'pruned' at that epoch and the trial is told PRUNED."""
    from optuna.trial import TrialState

    from dlx.kinds.tune.trial import run_trial

    class Trial:
        params = {"optimizer.lr": 0.05}
        user_attrs = {"dir": "trials/0000"}
        reported: list = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= 2

    trial = Trial()
    state, value = run_trial(trial, tmp_path, ["data=digits", "data.val_fraction=0.2", "trainer.epochs=6",
                                               "trainer.threads=1"], "error")
    assert state == TrialState.PRUNED and value is None
    assert [s for s, _ in trial.reported] == [1, 2]
    summary = json.loads((tmp_path / "trials" / "0000" / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["epochs"] == 2


def test_ctrl_c_stops_the_study_with_a_resume_line_and_the_resume_continues_the_trial(run_cli, tmp_path):
    d = tmp_path / "tune" / "c"
    proc = _tune_process(tmp_path, "c", 1, 100)
    deadline = time.time() + 120
    csv = d / "trials" / "0000" / "metrics.csv"
    while not (csv.is_file() and len(csv.read_text().splitlines()) > 5):  # the first trial is training
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "resume with: dlx tune" in err and "--name c" in err
    stopped = json.loads((d / "trials" / "0000" / "summary.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["epochs"] < 100  # mid-training, checkpoint saved
    assert (d / "trials" / "0000" / "checkpoint.pt").is_file()
    rc, _, err = run_cli("tune", "data=digits", "trainer.epochs=100", "trainer.threads=1", "tune.trials=1",
                         "tune.space.optimizer.lr=tag(log, interval(0.01, 0.3))", "--out", str(tmp_path),
                         "--name", "c")
    assert rc == 0, err
    first = json.loads((d / "trials" / "0000" / "summary.json").read_text())
    assert first["status"] == "completed" and first["resumed"] and first["invocations"] == 2
    assert list(trials_of(d)["state"]) == ["restarted", "complete"]  # trial 1 continued trial 0's directory


def test_a_baseline_fit_is_tuned_like_a_network(run_cli, tmp_path):
    """tune.child=fit: each trial a baseline fit scored on validation (never on test); `dlx fit +tune=`
    composes the choice."""
    rc, out, err = run_cli("tune", "tune.child=fit", "baseline=logistic", "data=digits", "tune.trials=3",
                           "--out", str(tmp_path), "--name", "lr")
    assert rc == 0, err
    d = tmp_path / "tune" / "lr"
    df = trials_of(d)
    assert (df["state"] == "complete").all() and df["baseline.C"].between(0.001, 1000).all()
    for t in df["dir"]:
        s = json.loads((d / t / "summary.json").read_text())
        assert s["kind"] == "fit" and "val_error" in s["metrics"]
        assert not any(k.startswith("test_") for k in s["metrics"])
    best = yaml.safe_load((d / "best.yaml").read_text())
    rc, _, err = run_cli("fit", f"+tune={d}", "--out", str(tmp_path), "--name", "chosen")
    assert rc == 0, err
    cfg = yaml.safe_load((tmp_path / "fit" / "chosen" / "config.yaml").read_text())
    chosen = next(o for o in best["overrides"] if o.startswith("baseline.C="))
    assert cfg["baseline"]["C"] == pytest.approx(float(chosen.split("=")[1]))
    assert "use it: dlx fit +tune=" in out


def test_a_ranking_model_is_tuned_on_held_out_queries(run_cli, tmp_path):
    """Text pairs hold out training queries for validation (data.val_fraction): the matching baselines
    get tuned on them, scored by P@1 (higher is better)."""
    small = ["data.pairs=400", "data.test_queries=60", "data.vocab_size=120", "data.domains=2",
             "data.aspects=4", "data.domain_words=20", "data.aspect_words=10", "data.test_negatives=4"]
    rc, out, err = run_cli("tune", "model=bilinear", "data=textpairs", "task=rank", "optimizer=adam", *small,
                           "trainer.epochs=2", "trainer.threads=1", "tune.trials=2", "--out", str(tmp_path),
                           "--name", "rank")
    assert rc == 0, err
    df = trials_of(tmp_path / "tune" / "rank")
    assert (df["state"] == "complete").all() and df["val_p_at_1"].between(0, 1).all()
    summary = json.loads((tmp_path / "tune" / "rank" / "summary.json").read_text())
    assert summary["higher_is_better"] and summary["best_value"] == pytest.approx(df["val_p_at_1"].max())


@pytest.mark.parametrize("text,words", [(None, "cannot read"), ("x: [", "is not YAML"),
                                        ("overrides: 3", "no list of overrides")])
def test_a_bad_best_yaml_is_one_line_and_exit_2(run_cli, tmp_path, text, words):
    path = tmp_path / "best.yaml"
    if text is not None:
        path.write_text(text)
    rc, _, err = run_cli("train", f"+tune={path}", "--out", str(tmp_path))
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "train").exists()


def test_slurm_array_jobs_share_one_study_and_run_each_trial_once(run_cli, tmp_path):
    """launcher=slurm on submitit's local executor: two array jobs ask the one study for trials."""
    rc, _, err = run_cli("tune", *QUICK, "tune.trials=4", "tune.workers=2", "launcher=slurm",
                         "launcher.cluster=local", "launcher.cpus_per_task=1", "--out", str(tmp_path),
                         "--name", "s")
    assert rc == 0, err
    d = tmp_path / "tune" / "s"
    df = trials_of(d)
    assert len(df) == 4 and (df["state"] == "complete").all() and df["dir"].is_unique
    assert len(list((d / "trials").iterdir())) == 4
    assert len(list((d / ".submitit").glob("*_log.out"))) == 2  # two jobs (local: a process each)
    assert {json.loads((d / t / "summary.json").read_text()).get("invocations", 1) for t in df["dir"]} == {1}
    rc, _, err = run_cli("tune", *QUICK, "tune.trials=2", "launcher=slurm", "launcher.detach=true",
                         "--out", str(tmp_path), "--name", "d")
    assert rc == 2 and "launcher.detach" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tune" / "d").exists()

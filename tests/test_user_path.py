"""The first hour of a new user: Ctrl-C, resume, names, sweeps refused up front, threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

QUICK = ["trainer=quick", "trainer.threads=1"]


def _dlx(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "dlx", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_ctrl_c_saves_metrics_and_a_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path):
    args = ["train", "trainer.epochs=150", "trainer.threads=1", "trainer.progress=plain",
            "--out", str(tmp_path)]
    proc = _dlx(*args, "--name", "cut", cwd=tmp_path)
    csv = tmp_path / "train" / "cut" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (csv.is_file() and len(csv.read_text().splitlines()) > 20):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # a real Ctrl-C, mid-run
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert "interrupted at epoch" in last and "trainer.resume=true --name cut" in last
    assert "Traceback" not in err
    run = tmp_path / "train" / "cut"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["epochs"] < 150
    assert summary["metrics"]["test_error"] < 0.5  # the metrics so far, not {}
    assert (run / "checkpoint.pt").is_file()

    resume = _dlx(*args, "trainer.resume=true", "--name", "cut", cwd=tmp_path)
    assert resume.wait(timeout=300) == 0, resume.stderr.read()
    assert _dlx(*args, "--name", "full", cwd=tmp_path).wait(timeout=300) == 0
    cut = pd.read_csv(run / "metrics.csv").drop(columns="wall_s")
    full = pd.read_csv(tmp_path / "train" / "full" / "metrics.csv").drop(columns="wall_s")
    pd.testing.assert_frame_equal(cut, full)  # bit-identical on CPU, though it stopped mid-epoch
    assert json.loads((run / "summary.json").read_text())["invocations"] == 2


def test_resume_without_a_checkpoint_is_refused(run_cli, tmp_path):
    rc, _, err = run_cli("train", *QUICK, "trainer.resume=true", "--out", str(tmp_path), "--name", "none")
    assert rc == 2 and "no checkpoint" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "train").exists()
    assert run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "r")[0] == 0
    before = (tmp_path / "train" / "r" / "metrics.csv").read_text()
    (tmp_path / "train" / "r" / "checkpoint.pt").unlink()
    rc, _, err = run_cli("train", *QUICK, "trainer.resume=true", "--out", str(tmp_path), "--name", "r")
    assert rc == 2 and "no checkpoint" in err
    assert (tmp_path / "train" / "r" / "metrics.csv").read_text() == before  # nothing overwritten


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ".hidden", "/abs"])
def test_names_stay_inside_the_output_root(run_cli, tmp_path, name):
    out = tmp_path / "out"
    rc, _, err = run_cli("train", *QUICK, "--out", str(out), "--name", name)
    assert rc == 2 and "--name must be a plain directory name" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("axis, needle", [("model.width=8,abc", "model.width expects int"),
                                          ("model=mlp,nope", "unknown model 'nope'")])
def test_sweep_axis_values_are_checked_before_any_child_runs(run_cli, tmp_path, axis, needle):
    rc, _, err = run_cli("sweep", "grid", axis, *QUICK, "launcher=inline", "--out", str(tmp_path),
                         "--name", "g")
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sweep").exists()  # no child trained, no directory made


def test_a_taken_name_says_where_the_run_went(run_cli, tmp_path):
    assert run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "x")[0] == 0
    rc, _, err = run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "x")
    assert rc == 0 and f"{tmp_path / 'train' / 'x'} exists; writing to {tmp_path / 'train' / 'x-1'}" in err


def test_default_names_carry_the_precision_and_the_run_dir_is_announced_first(run_cli, tmp_path):
    rc, out, err = run_cli("train", *QUICK, "precision=bf16", "--out", str(tmp_path))
    assert rc == 0
    (run,) = (tmp_path / "train").iterdir()
    assert run.name.endswith("_mlp_digits_bf16")
    assert err.splitlines()[0] == f"run directory: {run}"


def test_thread_rule_is_recorded(run_cli, tmp_path):
    rc, _, _ = run_cli("train", "trainer=quick", "model.width=8", "--out", str(tmp_path), "--name", "small")
    env = json.loads((tmp_path / "train" / "small" / "summary.json").read_text())["env"]
    assert rc == 0 and env["threads"] == 1 and env["threads_rule"].startswith("auto: small model")


def test_busy_cores_sees_a_spinning_process():
    from dlx import threads

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads.busy_cores(0.5) >= 0.7
    finally:
        spin.kill()


def test_thread_rule():
    import torch

    from dlx import threads

    big = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 4096), torch.nn.Linear(4096, 10))
    batch = (torch.zeros(128, 1024), torch.zeros(128))
    small = torch.nn.Linear(4, 2)
    assert threads.choose("auto", small, (torch.zeros(8, 4),))[0] == 1
    n, why = threads.choose("auto", big, batch)
    assert 1 <= n <= threads.usable_cores() and why.startswith("auto:") and "busy" in why
    os.environ[threads.CAP_ENV] = "1"
    try:
        assert threads.choose("auto", big, batch)[0] == 1  # a sweep worker's share
    finally:
        del os.environ[threads.CAP_ENV]
    assert threads.choose(3) == (3, "set") and threads.choose(None) == (None, "torch default")
    from dlx.errors import DlxError

    with pytest.raises(DlxError, match="trainer.threads"):
        threads.choose(0)


def test_status_of_a_failed_sweep_shows_the_errors(run_cli, tmp_path):
    rc, _, _ = run_cli("sweep", "grid", "model.width=4,-3", *QUICK, "launcher=inline", "--out", str(tmp_path),
                       "--name", "bad")
    assert rc == 1
    rc, out, err = run_cli("status", str(tmp_path / "sweep" / "bad"))
    assert rc == 1 and "model.width" in err and "width-3" in err


def test_cifar_root_that_is_a_file(run_cli, tmp_path):
    f = tmp_path / "not_a_folder"
    f.write_text("x")
    rc, _, err = run_cli("train", "data=cifar10", f"data.root={f}", "--out", str(tmp_path / "o"))
    assert rc == 2 and "is not a folder" in err

"""A newcomer's second hour: a refused resume changes nothing, a resume keeps the run's record true,
default names never collide, bad files are one line, commands say what they did."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

QUICK = ["trainer=quick", "trainer.threads=1"]


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_a_refused_resume_changes_nothing(run_cli, tmp_path):
    args = ("--out", str(tmp_path), "--name", "ci")
    first = ("model=cnn5", "model.width=2", "data=digits", "trainer.epochs=1")
    assert run_cli("train", *QUICK, *first, *args)[0] == 0
    run = tmp_path / "train" / "ci"
    before = _files(run)
    # a new model on resume is refused up front, naming what would change
    rc, _, err = run_cli("train", *QUICK, "model=mlp", "trainer.resume=true", "trainer.epochs=2", *args)
    assert rc == 2 and "cannot change model.name" in err and len(err.strip().splitlines()) == 1, err
    assert _files(run) == before
    # a checkpoint that does not fit the model (swapped in by hand) is refused before any write
    assert run_cli("train", *QUICK, "model=mlp", "data=digits", "trainer.epochs=1", "--out", str(tmp_path),
                   "--name", "other")[0] == 0
    good = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes((tmp_path / "train" / "other" / "checkpoint.pt").read_bytes())
    before = _files(run)
    rc, _, err = run_cli("train", *QUICK, "trainer.resume=true", "trainer.epochs=2", *args)
    assert rc == 2 and "does not fit this model" in err and len(err.strip().splitlines()) == 1, err
    assert _files(run) == before
    # a truncated checkpoint: one line, nothing written
    (run / "checkpoint.pt").write_bytes(good[: len(good) // 2])
    before = _files(run)
    rc, _, err = run_cli("train", *QUICK, "trainer.resume=true", "trainer.epochs=2", *args)
    assert rc == 2 and "damaged or truncated" in err and len(err.strip().splitlines()) == 1, err
    assert _files(run) == before
    # forgetting model=cnn5 is not an error: the resume continues the run as it was started
    (run / "checkpoint.pt").write_bytes(good)
    rc, _, err = run_cli("train", *QUICK, "trainer.resume=true", "trainer.epochs=2", *args)
    assert rc == 0, err
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "completed" and s["model"] == "cnn5" and s["epochs"] == 2 and s["resumed"]
    assert "name: cnn5" in (run / "config.yaml").read_text()


def test_a_resume_keeps_the_recorded_config_true(run_cli, tmp_path):
    args = ("--out", str(tmp_path), "--name", "r")
    assert run_cli("train", *QUICK, "trainer.epochs=3", *args)[0] == 0
    run = tmp_path / "train" / "r"
    before = _files(run)
    rc, _, err = run_cli("train", *QUICK, "trainer.resume=true", "trainer.epochs=1", *args)
    assert rc == 2 and "fewer than the 3 epochs" in err, err
    assert _files(run) == before  # config.yaml still says 3 epochs beside 3-epoch weights
    rc, _, err = run_cli("train", *QUICK, "trainer.resume=true", "trainer.epochs=4", *args)
    assert rc == 0, err
    s = json.loads((run / "summary.json").read_text())
    assert s["epochs"] == 4 and "epochs: 4" in (run / "config.yaml").read_text()
    assert "trainer.epochs=4" in (run / "overrides.yaml").read_text()


def test_automatic_names_never_collide(tmp_path):
    """Two runs given the same automatic name (same second, same choices) get two directories: the name is
    taken by an atomic mkdir, the later one moves on to <name>-1."""
    from dlx.runs import Run

    d = tmp_path / "train" / "20261207-000000_mlp_digits_fp32"
    a, b = Run(d, "train", fresh=True).open(), Run(d, "train", fresh=True).open()
    assert a.dir == d and b.dir == d.with_name(d.name + "-1") and b.dir.is_dir()
    a.close(), b.close()


def test_three_trains_started_together_all_finish(tmp_path):
    """`for s in 0 1 2; do dlx train seed=$s & done`: three runs, three directories, no refusal."""
    procs = [subprocess.Popen([sys.executable, "-m", "dlx", "train", *QUICK, "trainer.epochs=1", f"seed={s}",
                               "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for s in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [r[1] for r in results]
    runs = sorted((tmp_path / "train").iterdir())
    assert len(runs) == 3
    assert sorted(json.loads((r / "summary.json").read_text())["status"] for r in runs) == ["completed"] * 3


def test_epochs_beside_steps_is_refused_and_steps_are_counted_as_steps(run_cli, tmp_path):
    rc, _, err = run_cli("forecast", "trainer.epochs=3", "--out", str(tmp_path))
    assert rc == 2 and "trainer.epochs=3 would be ignored: trainer.steps=400" in err, err
    assert not tmp_path.joinpath("forecast").exists()
    rc, out, err = run_cli("forecast", "trainer.steps=4", "trainer.progress=plain", "trainer.threads=1",
                           "--out", str(tmp_path))
    assert rc == 0, err
    assert "[4/4 steps]" in err and "epochs]" not in err


def test_tables_fit_80_columns_without_splitting_words():
    import pandas as pd
    from rich.console import Console

    from dlx.tables import frame_table

    df = pd.DataFrame({"model": ["deepstate", "seasonal_naive", "deepar"], "status": ["completed"] * 3,
                       "ql50": [0.0857, 0.1, 0.09], "ql90": [0.04, 0.05, 0.045], "mase": [0.58, 0.7, 0.6],
                       "coverage": [0.81, 0.7, 0.8], "loss": [-0.92, None, -0.5], "wall_s": [38.8, 0.1, 20],
                       "train_range_days": [7, 7, 7], "long_column_name": [1.23456, 2.3456, 3.4567]})
    console = Console(width=80, record=True, force_terminal=False)
    console.print(frame_table("dlx forecast", df))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert all(line == line.rstrip() for line in lines if not line.startswith(("┃", "│", "┏", "┗", "└")))
    for word in ("deepstate", "seasonal_naive", "coverage", "long_column_name", "completed"):
        assert word in text, word
    assert lines[0] == "dlx forecast (status=completed, train_range_days=7)"
    one = Console(width=80, record=True)
    one.print(frame_table("one", df.head(1)))
    text = one.export_text()
    assert "seasonal" not in text and "coverage" in text and "deepstate" in text
    empty = Console(width=80, record=True)  # a table with its columns and no rows: the header alone
    empty.print(frame_table("none", df.head(0)))
    assert "coverage" in empty.export_text()


def test_dlx_list_keeps_names_whole_one_line_each(run_cli):
    rc, out, _ = run_cli("list", "data")
    assert rc == 0
    from dlx.config import choices

    lines = out.splitlines()
    for name in choices("data"):
        assert sum(line.startswith(f"  {name} ") for line in lines) == 1, name
    assert all(len(line) <= 80 for line in lines)


@pytest.mark.parametrize("content, needle", [
    ("[1, 2]", "holds a JSON list, not the object dlx writes"),
    ('{"kind": "tr', "is not valid JSON (Unterminated string starting, line 1 column 10"),
])
def test_damaged_summaries_are_one_line_and_exit_2(run_cli, tmp_path, content, needle):
    d = tmp_path / "r"
    d.mkdir()
    (d / "summary.json").write_text(content)
    for cmd in ("status", "plot", "eval"):
        rc, _, err = run_cli(cmd, str(d))
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, (cmd, err)


def test_a_name_too_long_and_a_garbage_table_are_one_line(run_cli, tmp_path):
    rc, _, err = run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "x" * 300)
    assert rc == 2 and "at most 200" in err and len(err.strip().splitlines()) == 1, err
    assert run_cli("train", *QUICK, "trainer.epochs=1", "--out", str(tmp_path), "--name", "r")[0] == 0
    run = tmp_path / "train" / "r"
    for garbage, needle in [(bytes(range(128, 256)), "not a readable CSV table"),
                            (b"garbage,,, x\n", "holds no rows"),
                            (b"a,b\n1,2\n", "lacks the column(s) epoch")]:
        (run / "metrics.csv").write_bytes(garbage)
        rc, _, err = run_cli("plot", str(run))
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_plot_of_a_fit_says_there_is_nothing_to_draw(run_cli, tmp_path):
    rc, _, err = run_cli("fit", "baseline=logistic", "data=digits", "--out", str(tmp_path), "--name", "f")
    assert rc == 0, err
    rc, out, err = run_cli("plot", str(tmp_path / "fit" / "f"))
    assert rc == 0 and out == "" and "a fit run has no figures to draw" in err


def test_report_searches_the_tree_and_says_what_it_cannot_report(run_cli, tmp_path):
    from dlx.claims import claim
    from dlx.runs import write_json

    assert run_cli("train", *QUICK, "trainer.epochs=1", "--out", str(tmp_path), "--name", "t")[0] == 0
    rc, _, err = run_cli("report", str(tmp_path))
    assert rc == 2 and "holds train runs but no paper run" in err, err
    deep = tmp_path / "reproduce" / "mine" / "fp8"
    write_json(deep / "summary.json", {"kind": "fp8", "status": "completed", "metrics": {},
                                       "claims": [claim("a", "t", 1, "r", holds=True)]})
    rc, out, err = run_cli("report", str(tmp_path), "--out", str(tmp_path / "rep"))
    assert rc == 0 and "1 paper run ->" in out, err


def _ctrl_c(args, cwd, ready, timeout=180):
    """Start `dlx ARGS` in its own process group, wait until ``ready()``, press Ctrl-C (SIGINT to the
    whole group, as a terminal does); returns (exit code, stderr)."""
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "dlx", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_ctrl_c_in_a_sweep_saves_each_child_and_prints_a_resume_line_that_pastes(tmp_path):
    import shlex

    args = ["sweep", "grid", "seed=0,1", "trainer.epochs=400", "trainer.threads=1", "sweep.workers=2",
            "sweep.stack=false", "launcher=local", "--out", str(tmp_path), "--name", "ctrl c"]
    runs = tmp_path / "sweep" / "ctrl c" / "runs"

    def training():
        csvs = list(runs.glob("*/metrics.csv")) if runs.is_dir() else []
        return len(csvs) == 2 and all(len(c.read_text().splitlines()) > 3 for c in csvs)

    rc, err = _ctrl_c(args, tmp_path, training)
    assert rc == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("dlx: interrupted: the results so far are in") and "Traceback" not in err
    command = last.split("resume with: ", 1)[1]
    assert "--name 'ctrl c'" in command
    for child in runs.iterdir():
        s = json.loads((child / "summary.json").read_text())
        assert s["status"] == "interrupted" and (child / "checkpoint.pt").is_file(), s
    words = shlex.split(command)[1:]  # the line pastes: the same sweep resumes its children
    res = subprocess.run([sys.executable, "-m", "dlx", *words], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    for child in runs.iterdir():
        s = json.loads((child / "summary.json").read_text())
        assert s["status"] == "completed" and s["resumed"] and s["epochs"] == 400


def test_a_sweep_whose_children_are_interrupted_first_stops_as_interrupted_not_failed(tmp_path):
    """A terminal's Ctrl-C reaches every process at once, but a busy parent may run its handler after the
    children have stopped and reported 'interrupted'. Simulated by interrupting the pool's workers alone:
    the sweep still ends as interrupted (exit 130, the resume line), not as a failed run (exit 1)."""
    import os
    import signal
    import time
    from pathlib import Path

    args = ["sweep", "grid", "seed=0,1", "trainer.epochs=400", "trainer.threads=1", "sweep.workers=2",
            "sweep.stack=false", "launcher=local", "--out", str(tmp_path), "--name", "w"]
    runs = tmp_path / "sweep" / "w" / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "dlx", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        csvs = list(runs.glob("*/metrics.csv")) if runs.is_dir() else []
        if len(csvs) == 2 and all(len(c.read_text().splitlines()) > 3 for c in csvs):
            break
        time.sleep(0.1)

    def workers():  # the pool's spawned workers: children of the sweep process running spawn_main
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                cmd = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
            if ppid == proc.pid and "spawn_main" in cmd:
                out.append(int(stat.parent.name))
        return out

    pids = workers()
    assert len(pids) == 2, pids
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("dlx: interrupted: the results so far are in"), err
    for child in runs.iterdir():
        assert json.loads((child / "summary.json").read_text())["status"] == "interrupted"


def test_ctrl_c_in_forecast_exits_130_with_one_line(tmp_path):
    args = ["forecast", "trainer.steps=5000", "trainer.threads=1", "--out", str(tmp_path)]

    def running():
        return any(json.loads(p.read_text()).get("status") == "running"
                   for p in tmp_path.glob("forecast/*/summary.json"))

    rc, err = _ctrl_c(args, tmp_path, running)
    assert rc == 130, err
    last = err.strip().splitlines()[-1]
    assert "interrupted" in last and "run it again (it starts over): dlx forecast trainer.steps=5000" in last
    (summary,) = tmp_path.glob("forecast/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "interrupted"


def test_a_sweep_refuses_what_train_refuses_before_any_child(run_cli, tmp_path):
    rc, _, err = run_cli("sweep", "grid", "data=mnist", "seed=0,1", "--out", str(tmp_path))
    assert rc == 2 and "data.root is required for mnist" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sweep").exists()
    rc, _, err = run_cli("sweep", "grid", "data=mnist", "data.root=/nonexistent/x", "seed=0,1",
                         "--out", str(tmp_path))
    assert rc == 2 and "does not exist" in err and not (tmp_path / "sweep").exists()


def test_an_unwritable_mlflow_store_is_one_warning_and_no_retries(run_cli, tmp_path):
    pytest.importorskip("mlflow")
    rc, _, err = run_cli("train", *QUICK, "trainer.epochs=1", "logger=mlflow",
                         "logger.mlflow.tracking_uri=sqlite:////proc/dlx-cannot-write/mlflow.db",
                         "--out", str(tmp_path), "--name", "m")
    assert rc == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and "cannot write the MLflow store" in warnings[0], err
    assert "retried" not in err
    s = json.loads((tmp_path / "train" / "m" / "summary.json").read_text())
    assert s["status"] == "completed" and "cannot write the MLflow store" in s["tracking_errors"][0]


def test_a_home_path_in_an_override_is_expanded(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    rc, _, err = run_cli("train", "data=mnist", "data.root=~/data/mnist", "--out", str(tmp_path))
    assert rc == 2 and f"{tmp_path}/data/mnist" in err and "Lexer" not in err, err


def test_a_panel_too_short_for_its_windows_says_so_without_contradiction(run_cli, tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("item_id,timestamp,target\na,2020-01-01 00:00,1\na,2020-01-01 01:00,2\n")
    rc, _, err = run_cli("forecast", "data=panel_csv", f"data.root={csv}", "--out", str(tmp_path))
    assert rc == 2 and "has 2 steps" in err and "need 25" in err and len(err.strip().splitlines()) == 1, err


def test_a_detached_sweep_can_be_finished_in_the_foreground(run_cli, tmp_path):
    """How a sweep is waited on is not part of its identity: the same sweep without --detach resumes it."""
    args = ["sweep", "grid", "seed=0,1", *QUICK, "trainer.epochs=1", "launcher=inline",
            "--out", str(tmp_path), "--name", "d"]
    assert run_cli(*args)[0] == 0
    d = tmp_path / "sweep" / "d"
    text = (d / "overrides.yaml").read_text()
    (d / "overrides.yaml").write_text(text + '- "launcher.detach=true"\n')  # as --detach records it
    rc, _, err = run_cli(*args)
    assert rc == 0 and "started with other overrides" not in err, err


def test_a_fit_sweep_keeps_its_own_columns_and_draws_baselines_as_points(run_cli, tmp_path, monkeypatch):
    import pandas as pd

    import dlx.kinds.grid.plots as grid_plots

    styles = []
    real = grid_plots.band
    monkeypatch.setattr(grid_plots, "band", lambda *a, **k: styles.append(k.get("style")) or real(*a, **k))
    rc, _, err = run_cli("sweep", "grid", "sweep.child=fit", "baseline=logistic,gbt", "data=digits",
                         "launcher=inline", "--out", str(tmp_path), "--name", "fs")
    assert rc == 0, err
    cols = pd.read_csv(tmp_path / "sweep" / "fs" / "results.csv").columns
    assert not any(c.startswith(("model.", "optimizer.", "trainer.")) for c in cols)
    assert "baseline.name" in cols
    assert styles == ["o"]  # categories: markers, no line joining them


def test_a_stacks_start_up_is_shared_by_its_members_not_charged_to_the_first():
    from types import SimpleNamespace

    from dlx.sweep.stack import share_setup

    members = [SimpleNamespace(setup_s=s) for s in (5.0, 1.0, 1.2, 0.8)]
    share_setup(members)
    assert [m.setup_s for m in members] == [2.0, 2.0, 2.2, 1.8]
    assert sum(m.setup_s for m in members) == pytest.approx(8.0)


@pytest.mark.parametrize("data", ["sunspots", "co2"])
def test_library_warnings_do_not_reach_the_users_stderr(tmp_path, data):
    res = subprocess.run([sys.executable, "-W", "default", "-m", "dlx", "forecast", f"data={data}",
                          "trainer.steps=3", "trainer.threads=1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Warning" not in res.stderr, res.stderr

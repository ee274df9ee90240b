"""`dlx sweep grid`, the submitit (SLURM) launcher on submitit's local executor, --detach + dlx status,
and a sweep killed with SIGKILL that resumes to the same results as an uninterrupted one."""

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
from hypothesis import given, settings
from hypothesis import strategies as st

from dlx.config import quote
from dlx.kinds.grid.experiment import is_axis, parse_axes, split_axis

FIXED = ["trainer=quick", "trainer.steps=3", "trainer.threads=1", "data.n_train=100"]
SAME = ["width", "seed", "run_id", "status", "params", "train_error", "test_error", "train_loss", "test_loss"]


def test_axis_parsing():
    assert split_axis("4,8") == ["4", "8"]
    assert split_axis("[1,2],[3]") == ["[1,2]", "[3]"]
    assert is_axis("model.width=4,8") and not is_axis("sweep.widths=[4,8]") and not is_axis("seed=1")
    assert parse_axes(["model.width=4,8", "data.n_train=null,100"]) == {
        "model.width": [4, 8], "data.n_train": [None, 100]}


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab,'\"\\[]= ", max_size=12))
def test_quote_round_trips_through_hydra(text):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_override(f"sweep.axes=[{quote(text)}]").value()
    assert parsed == [text]


def test_grid_axis_with_quoted_comma(run_cli, tmp_path):
    """A quoted comma stays inside its value: two children, not three."""
    rc, out, err = run_cli("sweep", "grid", "data.root='/a,b',/c", *FIXED, "--cfg")
    assert rc == 0, err
    from omegaconf import OmegaConf

    axes = OmegaConf.create(out).sweep.axes
    assert parse_axes(axes) == {"data.root": ["/a,b", "/c"]}


def test_grid_cartesian_and_zip(run_cli, tmp_path):
    rc, out, err = run_cli("sweep", "grid", "model.width=4,8", "seed=0,1", *FIXED, "launcher=inline",
                           "--out", str(tmp_path), "--name", "g")
    assert rc == 0, err
    res = pd.read_csv(tmp_path / "sweep" / "g" / "results.csv")
    assert len(res) == 4 and (res.status == "completed").all()
    assert sorted(zip(res.width, res.seed, strict=True)) == [(4, 0), (4, 1), (8, 0), (8, 1)]
    assert (res["model.width"] == res.width).all() and (res["trainer.steps"] == 3).all()  # config columns
    assert (tmp_path / "sweep" / "g" / "grid.png").is_file()
    rc, _, err = run_cli("sweep", "grid", "model.width=4,8", "seed=0,1", *FIXED, "launcher=inline", "--zip",
                         "--out", str(tmp_path), "--name", "z")
    assert rc == 0, err
    assert len(pd.read_csv(tmp_path / "sweep" / "z" / "results.csv")) == 2


@pytest.mark.parametrize("args, needle", [
    (["seed=1"], "the sweep is empty"),
    (["model.widht=4,8"], "did you mean 'model.width'"),
    (["model.width=4,8", "seed=0,1,2", "--zip"], "equal length"),
    (["model.width=4,8", "--detach"], "--detach needs launcher=slurm"),
])
def test_grid_bad_input(run_cli, tmp_path, args, needle):
    rc, _, err = run_cli("sweep", "grid", *args, *FIXED, "--out", str(tmp_path))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_slurm_launcher_on_submitit_local_executor(run_cli, tmp_path):
    args = ["model.width=4,8", *FIXED, "launcher=slurm", "launcher.cluster=local", "launcher.cpus_per_task=1"]
    rc, _, err = run_cli("sweep", "grid", *args, "--out", str(tmp_path), "--name", "s")
    assert rc == 0, err
    d = tmp_path / "sweep" / "s"
    res = pd.read_csv(d / "results.csv")
    assert (res.status == "completed").all() and len(res) == 2
    assert set(json.loads((d / "jobs.json").read_text())) == set(res.run_id)

    rc, _, err = run_cli("sweep", "grid", *args, "--detach", "--out", str(tmp_path), "--name", "det")
    assert rc == 0, err
    d = tmp_path / "sweep" / "det"
    assert json.loads((d / "summary.json").read_text())["status"] == "running"
    for _ in range(240):  # the local jobs finish in the background
        rc, out, _ = run_cli("status", str(d))
        if json.loads((d / "summary.json").read_text())["status"] == "completed":
            break
        time.sleep(0.5)
    assert rc == 0 and "completed: 2" in out
    assert len(pd.read_csv(d / "results.csv")) == 2
    final = json.loads((d / "summary.json").read_text())
    assert "invocations" not in final  # finishing a detached sweep is not a second start


def _dlx(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "dlx", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def test_kill_9_midway_then_resume_equals_uninterrupted(tmp_path):
    # one child after another (not one stack), so the kill lands between the first and the last
    args = ["sweep", "grid", "model.width=4,6,8", *FIXED, "trainer.steps=30", "launcher=inline",
            "sweep.stack=false", "--out", str(tmp_path)]
    assert _dlx(*args, "--name", "ref", cwd=tmp_path).wait(timeout=300) == 0
    proc = _dlx(*args, "--name", "killed", cwd=tmp_path)
    runs = tmp_path / "sweep" / "killed" / "runs"
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until a child is done and the next one trains, then kill -9
        texts = [p.read_text() for p in runs.glob("*/summary.json")] if runs.is_dir() else []
        if any('"completed"' in t for t in texts) and any('"running"' in t for t in texts):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "sweep" / "killed" / "results.csv").exists()
    for p in (tmp_path / "sweep" / "killed").rglob("summary.json"):  # no half-written file is observable
        json.loads(p.read_text())
    for p in (tmp_path / "sweep" / "killed").rglob("*.csv"):
        pd.read_csv(p)
    assert _dlx(*args, "--name", "killed", cwd=tmp_path).wait(timeout=300) == 0
    ref = pd.read_csv(tmp_path / "sweep" / "ref" / "results.csv")
    got = pd.read_csv(tmp_path / "sweep" / "killed" / "results.csv")
    pd.testing.assert_frame_equal(ref[SAME], got[SAME])


def _pool_workers(pid: int) -> list[int]:
    """Spawned pool workers of process `pid` (not multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds pool workers through /proc")
def test_killed_pool_worker_fails_only_running_children(tmp_path):
    """kill -9 of one pool worker (as the OOM killer would): the children that were running are
    recorded failed, the ones that had not started run in a fresh pool, the command exits 1, and a
    re-run with the same name finishes the failed ones."""
    args = ["sweep", "grid", "model.width=4,5,6,7", *FIXED, "trainer.steps=600", "launcher=local",
            "sweep.workers=2", "--out", str(tmp_path), "--name", "oom"]
    proc = _dlx(*args, cwd=tmp_path)
    runs = tmp_path / "sweep" / "oom" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline:  # both workers inside a child
        summaries = list(runs.glob("*/summary.json")) if runs.is_dir() else []
        running = [p for p in summaries if '"running"' in p.read_text()]
        if len(running) >= 2:
            break
        time.sleep(0.05)
    workers = _pool_workers(proc.pid)
    assert len(running) >= 2 and workers, (running, workers)
    os.kill(workers[0], signal.SIGKILL)
    assert proc.wait(timeout=300) == 1  # a failed child: not success
    res = pd.read_csv(tmp_path / "sweep" / "oom" / "results.csv")
    failed, completed = res[res.status == "failed"], res[res.status == "completed"]
    assert len(failed) >= 1 and len(completed) >= 2 and len(failed) + len(completed) == 4
    assert failed.error.str.contains("worker process died").all()
    for rid in failed.run_id:  # recorded as the invocation that died, not a new one
        assert "invocations" not in json.loads((runs / rid / "summary.json").read_text())
    assert _dlx(*args, cwd=tmp_path).wait(timeout=300) == 0
    res = pd.read_csv(tmp_path / "sweep" / "oom" / "results.csv")
    assert (res.status == "completed").all() and len(res) == 4


def test_one_bad_input_in_every_child_is_one_line_exit_2(run_cli, tmp_path):
    empty = tmp_path / "empty"  # exists (so the sweep starts) but holds no IDX files: every child refuses it
    empty.mkdir()
    rc, out, err = run_cli("sweep", "grid", "model.width=4,5", *FIXED, "data=mnist", f"data.root={empty}",
                           "launcher=inline", "--out", str(tmp_path), "--name", "nodata")
    progress = ("sweep [", "run directory:")  # the sweep started: its progress lines precede the error
    errors = [ln for ln in err.strip().splitlines() if not ln.startswith(progress)]
    assert rc == 2 and len(errors) == 1, err
    assert "missing" in errors[0] and "every child" in errors[0]
    summary = json.loads((tmp_path / "sweep" / "nodata" / "summary.json").read_text())
    assert summary["status"] == "failed" and "missing" in summary["error"]


def test_resumed_sweep_keeps_its_first_start(run_cli, tmp_path):
    args = ["model.width=4,8", *FIXED, "launcher=inline", "--out", str(tmp_path), "--name", "again"]
    assert run_cli("sweep", "grid", *args)[0] == 0
    first = json.loads((tmp_path / "sweep" / "again" / "summary.json").read_text())
    assert "invocations" not in first
    assert run_cli("sweep", "grid", *args)[0] == 0
    second = json.loads((tmp_path / "sweep" / "again" / "summary.json").read_text())
    assert second["invocations"] == 2 and second["first_started"] == first["started"]
    assert second["status"] == "completed"


def test_failed_child_is_recorded_and_fail_fast_stops(run_cli, tmp_path):
    args = ["model.depth=-1,2,3", *FIXED, "launcher=inline", "--out", str(tmp_path)]
    rc, out, err = run_cli("sweep", "grid", *args, "--name", "go-on")
    assert rc == 1 and "status failed" in err and "Traceback" not in err  # scripts see the failure
    assert "depth" in out  # ... after the table of what did finish
    res = pd.read_csv(tmp_path / "sweep" / "go-on" / "results.csv")
    assert res.status.tolist() == ["failed", "completed", "completed"]
    assert "depth" in res.error.iloc[0]
    assert json.loads((tmp_path / "sweep" / "go-on" / "summary.json").read_text())["status"] == "failed"
    rc, out, err = run_cli("status", str(tmp_path / "sweep" / "go-on"))
    assert rc == 1 and "failed: 1" in out and "--name go-on" in err

    rc, _, err = run_cli("sweep", "grid", *args, "--fail-fast", "--name", "stop")
    assert rc == 1, err
    res = pd.read_csv(tmp_path / "sweep" / "stop" / "results.csv")
    assert res.status.tolist() == ["failed", "missing", "missing"]


def test_a_sweep_records_where_its_time_went_and_profiles_on_request(run_cli, tmp_path):
    """summary.json's timings split the command's wall time into phases that add up to the total; --profile
    leaves a cProfile file that pstats reads."""
    import pstats

    rc, out, err = run_cli("sweep", "grid", "model.width=4,8", *FIXED, "launcher=inline", "--profile",
                           "--out", str(tmp_path), "--name", "t")
    assert rc == 0, err
    d = tmp_path / "sweep" / "t"
    t = json.loads((d / "summary.json").read_text())["timings"]
    phases = ["setup", "planning", "children", "analysis", "figures", "other"]
    assert set(phases) <= set(t) and "tuning" not in t and all(t[k] >= 0 for k in phases)
    assert abs(sum(t[k] for k in [*phases, "startup"] if k in t) - t["total"]) < 0.01
    children = [json.loads(p.read_text())["wall_s"] for p in (d / "runs").glob("*/summary.json")]
    assert len(children) == 2 and abs(t["children_wall_sum"] - sum(children)) < 0.01
    assert t["children"] >= t["children_wall_sum"] * 0.9  # the children ran inside that phase
    stats = pstats.Stats(str(d / "profile.pstats"))
    assert any(fn[2] == "run_sweep" for fn in stats.stats)


def test_sweep_children_leave_their_learning_curves_to_dlx_plot(run_cli, tmp_path):
    """A child's own figure is ~0.5 s of a short sweep: off by default (sweep.child_figures), drawn by
    `dlx plot` on the child, and on for every child with sweep.child_figures=true."""
    rc, _, err = run_cli("sweep", "grid", "model.width=4,8", *FIXED, "launcher=inline",
                         "--out", str(tmp_path), "--name", "off")
    assert rc == 0, err
    kids = sorted((tmp_path / "sweep" / "off" / "runs").iterdir())
    assert len(kids) == 2 and not any((k / "learning_curves.png").exists() for k in kids)
    rc, _, err = run_cli("plot", str(kids[0]))
    assert rc == 0 and (kids[0] / "learning_curves.png").stat().st_size > 1000, err
    rc, _, err = run_cli("sweep", "grid", "model.width=4,8", *FIXED, "launcher=inline",
                         "sweep.child_figures=true", "--out", str(tmp_path), "--name", "on")
    assert rc == 0, err
    assert all((k / "learning_curves.png").is_file() for k in (tmp_path / "sweep" / "on" / "runs").iterdir())

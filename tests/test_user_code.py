"""Bring your own model and configs without editing dlx: --config-dir / DLX_CONFIG_PATH in front of dlx's
conf/, models given by ``_target_`` (imported from the cwd or beside the config dir), entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dlx.config import CONFIG_PATH_ENV, compose

ROOT = Path(__file__).resolve().parents[1]

NET = '''\
import math

import torch.nn as nn


class Net(nn.Module):
    """A user's MLP: the yaml gives width, dlx gives input_shape and num_outputs from the data."""

    def __init__(self, width, input_shape, num_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                                  nn.Linear(width, num_outputs))

    def forward(self, x):
        return self.body(x)


def broken(width):
    raise ValueError("width must be even")


def not_a_module(width):
    return {"width": width}
'''

FILES = {
    "net.py": NET,
    "conf/model/mynet.yaml": "# My own MLP, from net.py\n_target_: net.Net\nwidth: 32\n",
    "conf/model/mlp.yaml": "# my mlp, shadowing dlx's\n_target_: net.Net\nwidth: 5\n",
    "conf/experiment/mine.yaml": textwrap.dedent("""\
        # @package _global_
        # My preset: my net on digits, a few epochs
        defaults:
          - override /model: mynet
          - override /data: digits
          - override /trainer: quick
        trainer:
          threads: 1
        """),
}


def expected_params(width: int, features: int = 64, classes: int = 10) -> int:
    """Net's parameter count on digits (8x8 = 64 features, 10 classes)."""
    return features * width + width + width * classes + classes


def make_project(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def project(tmp_path):
    proj = make_project(tmp_path / "proj")
    assert ROOT not in proj.resolve().parents  # a fresh directory outside the checkout
    return proj


def clean_env(**extra) -> dict:
    """The environment of a user's shell: no PYTHONPATH, no config path set by us."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", CONFIG_PATH_ENV)}
    return {**env, **extra}


def dlx(*args, cwd, env=None, exe=None):
    cmd = [exe, *args] if exe else [sys.executable, "-m", "dlx", *args]
    return subprocess.run(cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=600)


def dlx_files() -> dict[str, str]:
    """Every file of the checkout's dlx/ and conf/ that git would see (tracked or new), with its hash."""
    import hashlib

    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "dlx",
                          "conf"], cwd=ROOT, capture_output=True, text=True)
    files = [ROOT / f for f in out.stdout.splitlines()] if out.returncode == 0 else []
    return {str(f): hashlib.sha1(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def test_config_dir_train_and_grid_sweep_from_a_fresh_directory(project, tmp_path):
    """`--config-dir conf experiment=mine` trains the user's net.Net, in the process itself and in spawned
    pool workers; eval and status re-compose from the run dirs elsewhere; nothing of dlx is written."""
    before = dlx_files()

    res = dlx("train", "--config-dir", "conf", "experiment=mine", "--name", "mine", cwd=project)
    assert res.returncode == 0, res.stderr
    run = project / "outputs" / "train" / "mine"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["model"] == "mynet"
    assert summary["params"] == expected_params(32)
    assert (run / "config.yaml").read_text().startswith("# dlx config dirs: ")

    res = dlx("sweep", "grid", "--config-dir", "conf", "experiment=mine", "model.width=8,16",
              "launcher=local", "sweep.workers=2", "--name", "widths", cwd=project)
    assert res.returncode == 0, res.stderr
    sweep = project / "outputs" / "sweep" / "widths"
    children = [json.loads(p.read_text()) for p in sorted((sweep / "runs").glob("*/summary.json"))]
    assert sorted(c["params"] for c in children) == [expected_params(8), expected_params(16)]
    assert all(c["status"] == "completed" for c in children)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = dlx("eval", str(run), cwd=elsewhere)  # no --config-dir: the run's config.yaml recorded it
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "eval_test.json").read_text())["n"] > 0
    res = dlx("status", str(sweep), cwd=elsewhere)
    assert res.returncode == 0, res.stderr

    after = dlx_files()
    assert after == before, sorted(set(after.items()) ^ set(before.items()))
    assert not [p for p in (ROOT / "outputs").glob("*/mine")]


def test_console_script_imports_from_beside_the_config_dir_in_workers_too(project, tmp_path):
    """The `dlx` script (cwd not on sys.path) run from another folder with DLX_CONFIG_PATH: net.Net is
    imported from the config dir's parent in each spawned worker."""
    exe = Path(sys.executable).parent / "dlx"
    if not exe.is_file():
        pytest.skip("no dlx console script beside this python")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = dlx("sweep", "grid", "model=mynet", "trainer=quick", "trainer.threads=1", "model.width=4,6",
              "launcher=local", "sweep.workers=2", "--out", str(tmp_path / "out"), cwd=elsewhere,
              env=clean_env(**{CONFIG_PATH_ENV: str(project / "conf")}), exe=str(exe))
    assert res.returncode == 0, res.stderr
    params = sorted(json.loads(p.read_text())["params"] for p in (tmp_path / "out").glob("sweep/*/runs/*/"
                                                                                        "summary.json"))
    assert params == [expected_params(4), expected_params(6)]


@pytest.fixture
def user_path(project, monkeypatch):
    """This process as a user's: the project's conf on DLX_CONFIG_PATH, cwd elsewhere, net not importable
    but by dlx's rule (the config dir's parent)."""
    monkeypatch.setenv(CONFIG_PATH_ENV, str(project / "conf"))
    monkeypatch.chdir(project.parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(project))])
    monkeypatch.delitem(sys.modules, "net", raising=False)
    yield project
    sys.modules.pop("net", None)


def test_target_model_in_process_by_the_sys_path_rule(user_path):
    from dlx.data.bundle import Meta
    from dlx.models import build_model, count_params

    cfg = compose("train", ["model=mynet", "model.width=12"])
    assert cfg.model.name == "mynet"  # named after its file
    model = build_model(cfg.model, Meta("digits", "classify", (64,), num_classes=10))
    assert type(model).__module__ == "net" and count_params(model) == expected_params(12)
    assert str(user_path) in sys.path


@pytest.mark.parametrize("target, needle", [
    ("net.Nett", "net has no attribute 'Nett'; did you mean 'net.Net'?"),
    ("nosuchpkg.Net", "no module named 'nosuchpkg'"),
    ("net.broken", "failed: ValueError: width must be even"),
    ("net.not_a_module", "not a torch.nn.Module"),
    ("math.pi", "not a class or function"),
    ("not a path", "not an import path"),
])
def test_a_bad_target_is_one_line_exit_2(user_path, run_cli, tmp_path, target, needle):
    (user_path / "conf" / "model" / "bad.yaml").write_text(f"_target_: {target}\nwidth: 4\n")
    rc, _, err = run_cli("train", "model=bad", "trainer=quick", "--out", str(tmp_path / "out"))
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert f"'{target}'" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("summary.json"))


def test_a_missing_config_dir_is_one_line_exit_2(run_cli, tmp_path, monkeypatch):
    for args in (["train", "--config-dir", str(tmp_path / "nope")],
                 ["list", "model", "--config-dir", str(tmp_path / "nope")],
                 ["sweep", "grid", "model.width=4,8", "--config-dir", str(tmp_path / "nope")]):
        rc, _, err = run_cli(*args)
        assert rc == 2 and err.strip() == f"dlx: error: --config-dir {tmp_path / 'nope'} does not exist"
    monkeypatch.setenv(CONFIG_PATH_ENV, str(tmp_path / "gone"))
    rc, _, err = run_cli("train", "--cfg")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and CONFIG_PATH_ENV in err


def test_the_users_file_shadows_dlx_s_of_the_same_name(project, monkeypatch):
    dlx_mlp = compose("train", ["model=mlp"]).model
    assert dlx_mlp.name == "mlp" and "_target_" not in dlx_mlp
    monkeypatch.setenv(CONFIG_PATH_ENV, str(project / "conf"))
    mine = compose("train", ["model=mlp", "seed=3"])
    assert mine.model._target_ == "net.Net" and mine.model.width == 5 and mine.model.name == "mlp"
    assert compose("train", ["experiment=mine"]).model.width == 32  # a preset from the user's dir
    monkeypatch.delenv(CONFIG_PATH_ENV)
    assert "_target_" not in compose("train", ["model=mlp", "seed=3"]).model  # the search path is in the key


def test_config_dir_is_in_front_and_cli_restores_the_environment(project, run_cli, monkeypatch):
    monkeypatch.delenv(CONFIG_PATH_ENV, raising=False)
    rc, out, _ = run_cli("train", "--config-dir", str(project / "conf"), "model=mlp", "--cfg")
    assert rc == 0 and "_target_: net.Net" in out and out.startswith("# dlx config dirs: ")
    assert CONFIG_PATH_ENV not in os.environ  # --config-dir lasts one invocation
    rc, out, _ = run_cli("list", "model", "--config-dir", str(project / "conf"))
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("mynet"))
    assert "My own MLP, from net.py" in line
    assert "my mlp, shadowing dlx's" in next(ln for ln in out.splitlines() if ln.strip().startswith("mlp "))


def test_list_with_a_config_dir_does_not_import_torch(project):
    args = ["list", "model", "--config-dir", str(project / "conf")]
    code = f"import sys; from dlx.cli import main; rc = main({args!r}); assert 'torch' not in sys.modules; " \
           "sys.exit(rc)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env())
    assert res.returncode == 0, res.stderr
    assert "mynet" in res.stdout


def test_experiment_presets_work_on_commands_without_a_preset_slot():
    assert compose("train", ["experiment=double_descent_digits"]).trainer.epochs == 300
    assert compose("grid", ["experiment=double_descent_digits", "trainer.epochs=3"]).trainer.epochs == 3


def test_recorded_dirs_join_behind_the_given_ones(project, tmp_path, monkeypatch):
    from dlx.config import adopt_recorded, config_dirs, to_yaml

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(CONFIG_PATH_ENV, str(project / "conf"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(to_yaml(compose("train", ["model=mynet"])))
    monkeypatch.setenv(CONFIG_PATH_ENV, str(other))
    assert adopt_recorded(run) == []
    assert config_dirs() == [other.resolve(), (project / "conf").resolve()]
    monkeypatch.delenv(CONFIG_PATH_ENV)
    (run / "config.yaml").write_text('# dlx config dirs: ["/no/such/dir"]\nseed: 0\n')
    assert adopt_recorded(run) == ["/no/such/dir"]


def test_entry_points_register_models_and_tasks(tmp_path, monkeypatch):
    """A package's [project.entry-points."dlx.models"] and "dlx.tasks" are found by name on first use."""
    from omegaconf import OmegaConf

    from dlx.data.bundle import Meta
    from dlx.models import build_model, count_params, list_models
    from dlx.tasks import TASKS, build_task

    (tmp_path / "dlx_plugin_demo.py").write_text(textwrap.dedent("""\
        import torch.nn as nn

        from dlx.tasks.classify import Classify


        def tiny(hidden, input_shape, num_outputs, **kwargs):
            return nn.Sequential(nn.Linear(input_shape[-1], hidden), nn.Linear(hidden, num_outputs))


        class Sharp(Classify):
            name = "sharp"
        """))
    info = tmp_path / "dlx_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dlx-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dlx.models]\ntiny = dlx_plugin_demo:tiny\n\n"
                                           "[dlx.tasks]\nsharp = dlx_plugin_demo:Sharp\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.syspath_prepend(str(tmp_path))
    # the lookup caches the entry point's task in TASKS: a copy for this test keeps it out of later ones
    monkeypatch.setattr("dlx.tasks.registry.TASKS", dict(TASKS))
    assert "tiny" in list_models()
    meta = Meta("digits", "classify", (64,), num_classes=10)
    model = build_model(OmegaConf.create({"name": "tiny", "hidden": 3}), meta)
    assert count_params(model) == 64 * 3 + 3 + 3 * 10 + 10
    assert build_task(OmegaConf.create({"name": "sharp"}), meta).name == "sharp"


def test_own_model_on_own_csv_trains_and_sweeps_with_the_config_dir(project):
    """The whole promise at once: the user's net.py and conf/ plus a CSV of their own, trained and swept
    from a directory outside the checkout, with nothing of dlx changed."""
    import numpy as np

    before = dlx_files()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    lines = ["a,b,c,y"] + [f"{a:.4f},{b:.4f},{c:.4f},{2 * a - b + 0.1 * c:.4f}" for a, b, c in x]
    (project / "mine.csv").write_text("\n".join(lines) + "\n")
    common = ["--config-dir", "conf", "experiment=mine", "task=regress", "data=csv", "data.root=mine.csv",
              "data.target=y"]
    res = dlx("train", *common, "--name", "csv", cwd=project)
    assert res.returncode == 0, res.stderr
    s = json.loads((project / "outputs" / "train" / "csv" / "summary.json").read_text())
    assert s["status"] == "completed" and s["params"] == expected_params(32, features=3, classes=1)
    assert "test_rmse" in s["metrics"]
    res = dlx("sweep", "grid", *common, "model.width=4,8", "launcher=inline", "--name", "csvw", cwd=project)
    assert res.returncode == 0, res.stderr
    sweep = project / "outputs" / "sweep" / "csvw"
    kids = [json.loads(p.read_text()) for p in sweep.glob("runs/*/summary.json")]
    assert sorted(k["params"] for k in kids) == [expected_params(4, 3, 1), expected_params(8, 3, 1)]
    assert dlx_files() == before

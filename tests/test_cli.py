"""The CLI end to end: train, eval, plot, list; one-line errors with exit 2; no torch at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from dlx.runs import read_overrides

QUICK = ["trainer=quick", "trainer.threads=1"]


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "model"], ["list", "experiments"],
                                  ["reproduce", "--help"], ["tune", "--help"]])
def test_help_and_list_do_not_import_torch_or_pandas(args):
    code = f"import sys; from dlx.cli import main; rc = main({args!r}); " \
           "assert not {'torch', 'pandas', 'optuna'} & set(sys.modules), 'heavy import'; sys.exit(rc)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "torch" not in res.stderr


def test_list_shows_choices_with_descriptions(run_cli):
    rc, out, _ = run_cli("list", "data")
    assert rc == 0
    for name in ("digits", "mnist1d", "mnist", "cifar10", "synthetic"):
        assert name in out
    assert "_common" not in out
    assert "handwritten" in out


@pytest.mark.parametrize("args, needle", [
    (["train", "model=nope"], "unknown model 'nope'"),
    (["train", "trainer.epochz=3"], "did you mean 'trainer.epochs'"),
    (["train", "data.label_noise=1.5"], "label_noise"),
    (["list", "nope"], "unknown config group"),
    (["eval", "/nonexistent/run"], "not found"),
    (["plot", "/nonexistent/run"], "not a dlx run directory"),
    (["train", "data=mnist"], "data.root"),
    (["frobnicate"], "No such command"),
    (["train", "optimizer.schedule=step", "optimizer.milestones=[2]"], "optimizer.milestones"),
    (["train", "trainer.eval_every=0"], "trainer.eval_every"),
    (["train", "~model"], "deletes a key dlx needs"),
    (["train", "model=null"], "unknown model 'null'"),
    (["train", "optimizer.momentum=1.5"], "optimizer.momentum must be a number in [0, 1)"),
    (["train", "optimizer=adam", "optimizer.betas=[2,3]"], "optimizer.betas"),
    (["train", "optimizer.momentum=-1"], "optimizer.momentum"),
    (["reproduce", "fp8", "fp8.precisions=[fp32,nope]"], "unknown precision 'nope' in fp8.precisions"),
])
def test_bad_input_is_one_line_exit_2(run_cli, tmp_path, args, needle):
    writes = args[0] in ("train", "reproduce")
    rc, _, err = run_cli(*args, "--out", str(tmp_path)) if writes else run_cli(*args)
    assert rc == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0] and "Traceback" not in err


def test_train_eval_plot_end_to_end(run_cli, tmp_path):
    rc, out, err = run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "t1")
    assert rc == 0, err
    run = tmp_path / "train" / "t1"
    for f in ("config.yaml", "overrides.yaml", "metrics.csv", "summary.json", "checkpoint.pt",
              "learning_curves.png"):
        assert (run / f).is_file(), f
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "train" and summary["status"] == "completed"
    assert set(summary["env"]) >= {"dlx", "torch", "python", "device"}
    assert summary["params"] > 0 and summary["wall_s"] > 0
    df = pd.read_csv(run / "metrics.csv")
    assert list(df["epoch"]) == [1, 2] and {"train_error", "test_error", "test_loss"} <= set(df.columns)
    assert read_overrides(run) == QUICK

    rc, out, err = run_cli("eval", str(run))
    assert rc == 0, err
    ev = json.loads((run / "eval_test.json").read_text())
    assert ev["metrics"]["error"] == pytest.approx(summary["metrics"]["test_error"], abs=1e-6)

    rc, _, err = run_cli("eval", str(run), "--split", "train")
    assert rc == 0 and json.loads((run / "eval_train.json").read_text())["split"] == "train"
    assert json.loads((run / "eval_test.json").read_text())["split"] == "test"  # not overwritten

    (run / "learning_curves.png").unlink()
    rc, out, _ = run_cli("plot", str(run))
    assert rc == 0 and (run / "learning_curves.png").stat().st_size > 1000


def test_eval_with_other_model_checkpoint_is_refused(run_cli, tmp_path):
    assert run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "t")[0] == 0
    rc, _, err = run_cli("eval", str(tmp_path / "train" / "t"), "model.width=8")
    assert rc == 2 and "does not fit this model" in err


def test_name_collision_gets_suffix(run_cli, tmp_path):
    for _ in range(2):
        assert run_cli("train", *QUICK, "trainer.epochs=1", "--out", str(tmp_path), "--name", "same")[0] == 0
    assert (tmp_path / "train" / "same").is_dir() and (tmp_path / "train" / "same-1").is_dir()


def test_a_bug_is_one_line_exit_1_unless_asked(run_cli, monkeypatch):
    import dlx.config

    planted = [ZeroDivisionError("planted\n  on two lines")]

    def boom(*_a, **_k):
        raise planted[0]

    monkeypatch.delenv("DLX_TRACEBACK", raising=False)
    monkeypatch.setattr(dlx.config, "compose", boom)
    rc, _, err = run_cli("train")
    assert rc == 1 and err.strip() == ("dlx: internal error: ZeroDivisionError: planted on two lines "
                                       "(DLX_TRACEBACK=1 shows where; please report it)")
    planted[0] = OSError(28, "No space left on device")  # the machine's problem, not a dlx bug
    rc, _, err = run_cli("train")
    assert rc == 1 and err.strip() == "dlx: error: OSError: [Errno 28] No space left on device"
    monkeypatch.setenv("DLX_TRACEBACK", "0")
    assert run_cli("train")[0] == 1
    monkeypatch.setenv("DLX_TRACEBACK", "1")
    with pytest.raises(OSError):
        run_cli("train")


def test_cfg_prints_config(run_cli):
    rc, out, _ = run_cli("train", "model=cnn5", "--cfg")
    assert rc == 0 and "name: cnn5" in out and "epochs:" in out


def test_python_dash_m(tmp_path):
    res = subprocess.run([sys.executable, "-m", "dlx", "list", "precision"], capture_output=True, text=True)
    assert res.returncode == 0 and "bf16" in res.stdout


def test_refused_settings_leave_no_directory_and_a_failure_during_the_run_is_recorded(run_cli, tmp_path,
                                                                                     monkeypatch):
    rc, _, err = run_cli("train", "model.width=0", *QUICK, "--out", str(tmp_path), "--name", "bad")
    assert rc == 2 and "model.width" in err and not (tmp_path / "train").exists()

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("dlx.train.fit", boom)
    rc, _, err = run_cli("train", *QUICK, "--out", str(tmp_path), "--name", "bad")
    assert rc == 1 and "disk on fire" in err
    summary = json.loads((tmp_path / "train" / "bad" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "RuntimeError: disk on fire"
    assert summary["error_type"] == "RuntimeError"


def test_the_readme_lists_every_config_choice_as_conf_has_it():
    """README's list of choices is generated from conf/ (python -m dlx.choices): it cannot drift."""
    from pathlib import Path

    from dlx.choices import BEGIN, END, markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme[readme.index(BEGIN):readme.index(END) + len(END)]
    assert block == markdown(), "README's choices are stale: paste `python -m dlx.choices` over them"


def test_a_name_holding_another_experiment_is_refused(run_cli, tmp_path):
    """`--name seq` given to two papers in turn: the second must not write its run into the first's
    directory (it did, overwriting the first's summary)."""
    d = tmp_path / "reproduce" / "seq"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"kind": "deepmatch", "status": "completed"}))
    rc, _, err = run_cli("reproduce", "double-descent", "--out", str(tmp_path), "--name", "seq")
    assert rc == 2 and "holds a deepmatch run" in err
    assert json.loads((d / "summary.json").read_text())["kind"] == "deepmatch"

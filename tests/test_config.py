"""Config composition, errors that name the valid choices, and shipping the configs in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dlx.config import choices, compose, conf_dir, flatten
from dlx.errors import DlxError

ROOT = Path(__file__).resolve().parents[1]


TRAIN_GROUPS = ["model", "data", "precision", "task", "optimizer", "trainer"]


@pytest.mark.parametrize("group", TRAIN_GROUPS)
def test_every_choice_composes(group):
    for choice in choices(group):
        cfg = compose("train", [f"{group}={choice}"])
        if group != "trainer":  # trainer presets carry no name
            assert cfg[group].name == choice


def test_unknown_choice_lists_valid_ones():
    with pytest.raises(DlxError, match=r"unknown model 'nope'.*cnn5.*mlp"):
        compose("train", ["model=nope"])


def test_near_miss_choice_suggests():
    with pytest.raises(DlxError, match="did you mean 'cnn5'"):
        compose("train", ["model=cnn6"])


def test_mistyped_key_suggests_nearest():
    with pytest.raises(DlxError, match=r"unknown key 'trainer.epochz'; did you mean 'trainer.epochs'"):
        compose("train", ["trainer.epochz=3"])


def test_wrong_value_type():
    with pytest.raises(DlxError, match="trainer.epochs expects int"):
        compose("train", ["trainer.epochs=abc"])
    assert compose("train", ["optimizer.lr=1"]).optimizer.lr == 1  # an int where a float is expected is fine


def test_override_without_equals():
    with pytest.raises(DlxError, match="not KEY=VALUE"):
        compose("train", ["trainer.epochs"])


def test_struct_mode_refuses_new_keys():
    cfg = compose("train")
    from omegaconf.errors import ConfigAttributeError

    with pytest.raises(ConfigAttributeError):
        cfg.trainer.not_a_key = 1


def test_flatten():
    flat = flatten(compose("train", ["model=cnn5"]))
    assert flat["model.name"] == "cnn5" and flat["model.width"] == 64 and "trainer.epochs" in flat


def test_conf_dir_is_found():
    assert (conf_dir() / "train.yaml").is_file()


def test_wheel_ships_configs_and_works_outside_repo(tmp_path):
    """Build the wheel, unpack it away from the checkout, and compose from the copy inside it."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("dlx-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlx/conf/train.yaml" in names and "dlx/conf/model/cnn5.yaml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (f"import dlx.config as c; assert str(c.conf_dir()).startswith({str(site)!r}), c.conf_dir(); "
            "print(c.compose('train', ['model=cnn5']).model.width)")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "64"


@pytest.mark.parametrize("command, overrides", [
    ("double_descent", ["model.width=16", "seed=2", "data.label_noise=0.15"]),
    ("double_descent", ["experiment=double_descent_digits", "sweep.widths=[1,2,3]", "data.n_train=null"]),
    ("train", ["model=cnn5", "model.width=4", "trainer.epochs=3", "optimizer.lr=1e-3", "trainer.steps=null"]),
    ("train", ["data=synthetic", "data.shape=[1,4,4]", "trainer=quick", "seed=${trainer.epochs}"]),
    ("idefender", ["attack.cw={max_iter: 5}", "detectors=[idefender,lid]", "substitute.labels=true",
                    "classifier.run='/x y/run'"]),
    ("grid", ["model=cnnfc", "model.hidden=[32,16]", "optimizer=adam", "optimizer.betas=[0.8,0.99]"]),
])
def test_cached_composition_equals_hydras_full_composition(command, overrides):
    """compose() reuses Hydra's composition of the group overrides and assigns the KEY=VALUE ones itself:
    the result must be the full Hydra composition exactly, resolved and unresolved."""
    from omegaconf import OmegaConf

    from dlx.config import _raw_compose, _split, groups

    fast = compose(command, overrides)
    full = _raw_compose(command, overrides)
    assert OmegaConf.to_container(fast) == OmegaConf.to_container(full)
    assert OmegaConf.to_container(fast, resolve=True) == OmegaConf.to_container(full, resolve=True)
    assert OmegaConf.is_struct(fast)
    # the cached composition is not changed by what one caller assigns
    again = compose(command, [ov for ov in overrides if _split(ov)[0] in groups()])
    assert OmegaConf.to_container(again) != OmegaConf.to_container(fast)
    fast.seed = 123
    assert compose(command, overrides).seed != 123

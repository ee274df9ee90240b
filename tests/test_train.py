"""The training loop: smoke over every model x embedded dataset, resume equivalence, divergence,
schedules and precision policies."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from dlx.build import build
from dlx.config import compose
from dlx.kinds.train.experiment import run as train_run
from dlx.runs import Run
from dlx.train.callbacks import Checkpointer, eval_epochs
from dlx.train.optim import lr_multiplier

MODELS = ["mlp", "cnn5", "resnet18k", "cnn1d", "transformer"]
EMBEDDED = ["digits", "mnist1d", "synthetic"]
SMALL = {"mlp": "model.width=16", "cnn5": "model.width=4", "resnet18k": "model.width=4",
         "cnn1d": "model.width=8", "transformer": "model.width=16"}


@pytest.mark.parametrize("data", EMBEDDED)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_every_embedded_dataset(model, data, tmp_path):
    cfg = compose("train", [f"model={model}", SMALL[model], f"data={data}", "data.n_train=200",
                            "trainer=quick", "trainer.steps=4", "trainer.batch_size=32", "trainer.threads=1"])
    summary = train_run(cfg, Run(tmp_path, "train"), draw=False)
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert 0.0 <= summary["metrics"]["test_error"] <= 1.0
    assert math.isfinite(summary["metrics"]["test_loss"])


def _train(tmp_path, name, *overrides):
    cfg = compose("train", ["trainer=quick", "trainer.threads=1", "data.n_train=300", "model.width=32",
                            "trainer.batch_size=32", *overrides])
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    return train_run(cfg, Run(d, "train"), draw=False), d


def test_resume_matches_uninterrupted_run(tmp_path, monkeypatch):
    """4 epochs straight == killed after epoch 2's checkpoint, then resumed (CPU, same seed): identical
    metrics and weights, with augmentation and dropout drawing random numbers throughout."""
    random_ops = ["data.augment=true", "data.crop_pad=1", "model.dropout=0.2"]
    full, d_full = _train(tmp_path, "full", "trainer.epochs=4", *random_ops)
    save = Checkpointer.on_epoch_end

    def save_then_die(self, state):
        save(self, state)
        if state.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "on_epoch_end", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, "part", "trainer.epochs=4", "trainer.checkpoint_every=2", *random_ops)
    monkeypatch.setattr(Checkpointer, "on_epoch_end", save)
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["status"] == "interrupted"
    assert torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    resumed, d_res = _train(tmp_path, "part", "trainer.epochs=4", "trainer.resume=true", *random_ops)
    assert resumed["resumed"] is True and resumed["epochs"] == 4
    a = pd.read_csv(d_full / "metrics.csv")
    b = pd.read_csv(d_res / "metrics.csv")
    cols = ["epoch", "step", "train_loss", "test_loss", "test_error"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    wa = torch.load(d_full / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(d_res / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_nan_loss_is_recorded_as_diverged(tmp_path):
    summary, _ = _train(tmp_path, "nan", "optimizer.lr=1e6", "optimizer.schedule=constant")
    assert summary["status"] == "diverged"
    assert summary["diverged_step"] is not None and summary["diverged_step"] >= 0


def test_divergence_factor(tmp_path):
    summary, _ = _train(tmp_path, "fac", "optimizer.lr=50", "optimizer.schedule=constant",
                        "trainer.divergence_factor=3")
    assert summary["status"] == "diverged"


def test_steps_mode_stops_exactly(tmp_path):
    summary, _ = _train(tmp_path, "steps", "trainer.steps=7")
    assert summary["steps"] == 7


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_precision_modes_train(tmp_path, precision):
    summary, _ = _train(tmp_path, precision, f"precision={precision}", "trainer.epochs=5")
    assert summary["status"] == "completed" and summary["metrics"]["test_error"] < 0.5
    assert precision.replace("bf", "bfloat").replace("fp", "float") in summary["precision"]


def test_label_noise_table_written(tmp_path):
    _, d = _train(tmp_path, "noise", "data.label_noise=0.2")
    df = pd.read_csv(d / "label_noise.csv")
    assert df["changed"].sum() == round(0.2 * len(df))
    assert (df.loc[df.changed == 1, "clean_label"] != df.loc[df.changed == 1, "label"]).all()


def test_learning_helps(tmp_path):
    summary, _ = _train(tmp_path, "learn", "trainer.epochs=5")
    assert summary["metrics"]["test_error"] < 0.5  # chance is 0.9; 50 steps get ~0.25


def test_seed_reproducible_and_seed_matters(fast_cfg):
    def params(seed):
        return torch.cat([p.flatten() for p in build(fast_cfg(f"seed={seed}")).model.parameters()])

    assert torch.equal(params(1), params(1)) and not torch.equal(params(1), params(2))


def test_schedules():
    def f(kind, **kw):
        return lr_multiplier({"schedule": kind, **kw}, total_steps=1000)

    assert f("constant")(999) == 1.0
    assert f("cosine")(0) == pytest.approx(1.0) and f("cosine")(500) == pytest.approx(0.5)
    assert f("cosine")(1000) == pytest.approx(0.0, abs=1e-12)
    step = f("step", milestones=[0.5, 0.75], gamma=0.1)
    assert step(499) == 1.0 and step(500) == pytest.approx(0.1) and step(750) == pytest.approx(0.01)
    inv = f("inv_sqrt")
    assert inv(511) == 1.0 and inv(512) == pytest.approx(1 / math.sqrt(2)) and inv(2048) == pytest.approx(
        1 / math.sqrt(5))
    assert f("constant", warmup_steps=10)(4) == pytest.approx(0.5)


def test_eval_schedule():
    assert eval_epochs(10, every=3) == {3, 6, 9, 10}
    log = sorted(eval_epochs(1000, points=8))
    assert log == [1, 3, 7, 19, 52, 139, 373, 1000]  # geomspace(1, 1000, 8), rounded
    assert sorted(eval_epochs(3, points=8)) == [1, 2, 3]  # duplicates after rounding collapse


@pytest.mark.parametrize("every", [1, 7])
def test_divergence_guard_finds_the_exact_step_when_buffered(every):
    """Buffered checks (as on an accelerator) report the same step as per-step checks."""
    from types import SimpleNamespace

    from dlx.train.callbacks import DivergenceGuard

    losses = [2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, float("nan"), 0.5, 0.4]
    guard = DivergenceGuard(None, every)
    state = SimpleNamespace(step=0, loss=None, first_loss=None, stop=None, diverged_step=None)
    for loss in losses:
        state.loss = torch.tensor(loss)
        guard.on_batch_end(state)
        if state.stop:
            break
        state.step += 1
    guard.on_epoch_end(state)
    assert state.stop == "diverged" and state.diverged_step == 9 and state.first_loss == 2.0

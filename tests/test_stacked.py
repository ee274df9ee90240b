"""Stacked sweep children (dlx/models/stacked.py, dlx/train/stacked.py, dlx/sweep/stack.py): a member's
loss trajectory, evaluation rows and weights match its one-by-one run for every stacked layer type and
per-member setting; stacked run directories read like one-by-one ones; divergence, resume (mid-epoch,
and from one-by-one checkpoints), claims, grouping, the pool and the bench suite."""

from __future__ import annotations

import json
import os
import signal

import pandas as pd
import pytest
import torch

from dlx.build import build
from dlx.config import compose
from dlx.models.stacked import LinearChain, NotStackable, StackedModel
from dlx.sweep import collect, execute, expand
from dlx.sweep.plan import plan
from dlx.sweep.stack import run_stack
from dlx.train import fit
from dlx.train.callbacks import Callback
from dlx.train.stacked import fit_stack, member_state

FAST = ["trainer.threads=1", "trainer.progress=none", "data.n_train=256", "trainer.batch_size=64",
        "trainer.epochs=2", "optimizer.lr=0.01", "optimizer.schedule=constant"]


class Losses(Callback):
    def __init__(self):
        self.values = []

    def on_batch_end(self, state):
        self.values.append(float(state.loss))


def alone(overrides):
    cfg = compose("train", [*FAST, *overrides])
    p = build(cfg)
    rec = Losses()
    hist = fit(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer, seed=cfg.seed,
               callbacks=[rec])
    return rec.values, hist, p.model


def stacked(per_member):
    members, cfg = [], None
    for ovs in per_member:
        cfg = compose("train", [*FAST, *ovs])
        p = build(cfg)
        members.append(member_state(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer,
                                    cfg.seed))
    seen = {id(m): [] for m in members}

    def on_step(active, values):
        for m, v in zip(active, values, strict=True):
            seen[id(m)].append(v)

    fit_stack(members, cfg.trainer, on_step=on_step)
    return [(seen[id(m)], m) for m in members]


def assert_same(per_member, rtol=1e-5, atol=1e-6):
    """Every member's per-step losses and evaluation rows match its run alone to float rounding, and so
    do its final weights (looser: batch norm amplifies rounding in the weights of small gradients)."""
    for ovs, (losses, m) in zip(per_member, stacked(per_member), strict=True):
        want, hist, model = alone(ovs)
        assert m.status == hist.status
        assert losses == pytest.approx(want, rel=rtol, abs=atol)
        assert len(m.state.history) == len(hist.rows)
        for got, row in zip(m.state.history, hist.rows, strict=True):
            assert set(got) == set(row)
            for k, v in row.items():
                if k != "wall_s":
                    assert got[k] == pytest.approx(v, rel=rtol, abs=atol), k
        for (name, a), b in zip(model.state_dict().items(), m.state.model.state_dict().values(), strict=True):
            assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4), name


SEEDS = [["seed=0"], ["seed=1"], ["seed=2"]]


@pytest.mark.parametrize("layers", [
    ["model=mlp", "model.width=16"],  # Linear + ReLU: the hand-written backward
    ["model=mlp", "model.width=16", "model.activation=tanh", "task.label_smoothing=0.1"],
    ["model=mlp", "model.width=16", "model.batchnorm=true"],  # BatchNorm1d, autograd
    ["model=cnn1d", "model.width=4", "model.batchnorm=true"],  # Conv1d
    ["model=cnn5", "model.width=2"],  # Conv2d, BatchNorm2d, max pools
    ["model=cnnfc", "model.width=2", "model.dropout=0", "model.hidden=[8]"],  # conv then linear
    ["model=resnet18k", "model.width=2"],  # pre-activation blocks, 1x1 conv shortcuts
    ["model=resnet", "model.width=2", "model.depth=8"],  # post-activation blocks, padded shortcuts
], ids=["linear", "tanh_smoothing", "batchnorm1d", "conv1d", "conv2d_bn", "cnnfc", "preact", "basic"])
def test_each_layer_type_matches_its_run_alone(layers):
    assert_same([[*layers, *s] for s in SEEDS])


def test_linear_layers_through_autograd_match_too(monkeypatch):
    monkeypatch.setattr(LinearChain, "fits", classmethod(lambda cls, model: False))
    assert_same([["model.width=16", *s] for s in SEEDS])


@pytest.mark.parametrize("settings", [
    # label noise drawn per seed, a seeded training subset per member
    [["seed=0", "data.label_noise=0.2", "data.noise_seed=0"], ["seed=1", "data.label_noise=0.2",
     "data.noise_seed=1"], ["seed=2", "data.label_noise=0.1", "data.noise_seed=2"]],
    [["seed=0", "data.subset_seed=0"], ["seed=1", "data.subset_seed=1"]],
    # per-member SGD hyper-parameters, Nesterov, a cosine schedule, clipping
    [["optimizer.lr=0.01", "optimizer.momentum=0.9", "optimizer.nesterov=true", "optimizer.schedule=cosine",
      "trainer.grad_clip=0.5"],
     ["optimizer.lr=0.05", "optimizer.momentum=0.5", "optimizer.nesterov=true", "optimizer.weight_decay=0.01",
      "optimizer.schedule=cosine", "trainer.grad_clip=0.5"]],
    [["optimizer.momentum=0", "optimizer.lr=0.1"], ["optimizer.momentum=0", "optimizer.lr=0.2"]],
    # Adam and AdamW, shared and per-member settings
    [["optimizer=adam", "optimizer.lr=0.001", "seed=0"], ["optimizer=adam", "optimizer.lr=0.001", "seed=1"]],
    [["optimizer=adam", "optimizer.lr=0.001", "optimizer.betas=[0.8,0.99]"],
     ["optimizer=adamw", "optimizer.lr=0.003", "optimizer.weight_decay=0.1"]],
    [["optimizer=adamw", "optimizer.lr=0.002", "optimizer.weight_decay=0.05"],
     ["optimizer=adamw", "optimizer.lr=0.001", "optimizer.weight_decay=0.2", "optimizer.betas=[0.5,0.9]"]],
], ids=["label_noise", "subset", "sgd_per_member", "no_momentum", "adam", "adam_adamw", "adamw"])
def test_per_member_settings_match(settings):
    if any("optimizer=adamw" in s for s in settings) and any("optimizer=adam" in s for s in settings):
        with pytest.raises(NotStackable, match="optimizers differ"):
            stacked(settings)
        return
    # (Adam with batch norm is left out: its update of a weight with a near-zero gradient is near +-lr
    # whatever the gradient's size, so a 1e-7 change of the initial weights alone already moves that
    # run's error after a few steps; its per-step arithmetic is what the other cases check)
    assert_same([["model.width=16", *s] for s in settings])


def test_a_diverging_member_leaves_the_stack_and_the_others_go_on():
    per_member = [["seed=0"], ["seed=1", "optimizer.lr=100"], ["seed=2"]]
    per_member = [[*s, "trainer.divergence_factor=3"] for s in per_member]
    got = stacked([["model.width=16", *s] for s in per_member])
    for ovs, (losses, m) in zip(per_member, got, strict=True):
        want, hist, _ = alone(["model.width=16", *ovs])
        assert m.status == hist.status
        assert m.state.diverged_step == hist.diverged_step and m.state.step == hist.step
        assert losses == pytest.approx(want, rel=1e-5, abs=1e-6)
        assert [r["test_loss"] for r in m.state.history] == \
            pytest.approx([r["test_loss"] for r in hist.rows], rel=1e-5)
    assert [m.status for _, m in got] == ["completed", "diverged", "completed"]


def test_models_without_a_stacked_form_are_refused():
    cfgs = [compose("train", [*FAST, "model=transformer", f"seed={s}"]) for s in (0, 1)]
    with pytest.raises(NotStackable):
        StackedModel([build(c).model for c in cfgs])
    cfgs = [compose("train", [*FAST, "model.dropout=0.2", f"seed={s}"]) for s in (0, 1)]
    with pytest.raises(NotStackable, match="dropout"):
        StackedModel([build(c).model for c in cfgs])
    with pytest.raises(NotStackable, match="shapes differ and only MLP chains"):
        StackedModel([build(compose("train", [*FAST, "model=cnn5", f"model.width={w}"])).model
                      for w in (2, 4)])
    with pytest.raises(NotStackable, match="shapes differ and only MLP chains"):  # batch norm does not pad
        StackedModel([build(compose("train", [*FAST, "model.batchnorm=true", f"model.width={w}"])).model
                      for w in (4, 8)])
    with pytest.raises(NotStackable, match="layers differ"):
        StackedModel([build(compose("train", [*FAST, f"model.depth={d}"])).model for d in (1, 2)])


@pytest.mark.parametrize("settings", [
    [["model.width=4", "seed=0"], ["model.width=16", "seed=1"], ["model.width=9", "seed=2"]],
    [["model.width=3", "model.activation=tanh"], ["model.width=12", "model.activation=tanh"]],
    [["model.width=5", "optimizer.weight_decay=0.01", "optimizer.nesterov=true", "trainer.grad_clip=0.5"],
     ["model.width=11", "optimizer.weight_decay=0.05", "optimizer.nesterov=true", "trainer.grad_clip=0.5"]],
    [["model.width=6", "optimizer=adam", "optimizer.lr=0.003"],
     ["model.width=14", "optimizer=adam", "optimizer.lr=0.001", "optimizer.weight_decay=0.1"]],
    [["model.width=4", "model.depth=1"], ["model.width=10", "model.depth=1"]],
], ids=["relu", "tanh", "sgd_decay_clip", "adam", "one_hidden"])
def test_mlps_of_different_widths_stack_zero_padded(settings):
    """Zero-padded to the widest member, each MLP trains exactly as alone: the padding must stay zero
    through the weights, biases, momentum, Adam moments, weight decay and clipping, or a padded unit
    would change that member's outputs and losses."""
    assert_same(settings)


# ------------------------------------------------------------------------------------------- sweeps

BASE = ["trainer=quick", "trainer.threads=1", "trainer.batch_size=64", "data.n_train=300",
        "trainer.epochs=3", "trainer.eval_every=1", "optimizer.lr=0.01", "model.width=8"]
GRID = {"seed": [0, 1, 2], "data.label_noise": [0.2]}
TIMING = ("wall_s", "setup_s", "train_wall_s", "started", "finished", "env", "stack", "first_started",
          "invocations")


def read_dir(d):
    summary = json.loads((d / "summary.json").read_text())
    return {"summary": {k: v for k, v in summary.items() if k not in TIMING},
            "metrics": pd.read_csv(d / "metrics.csv").drop(columns="wall_s"),
            "files": sorted(p.name for p in d.iterdir()),
            "config": (d / "config.yaml").read_text(), "overrides": (d / "overrides.yaml").read_text(),
            "checkpoint": torch.load(d / "checkpoint.pt", weights_only=True)}


def assert_same_dirs(a, b, resumed=False, config=True):
    """Run directories a and b hold the same files and results (timing fields aside); ``resumed``: b was
    resumed (its config says trainer.resume=true and its summary resumed=true)."""
    x, y = read_dir(a), read_dir(b)
    if not config:
        y["config"], y["overrides"] = x["config"], x["overrides"]
    if resumed:
        y["config"] = y["config"].replace("resume: true", "resume: false")
        y["overrides"] = y["overrides"].replace('- "trainer.resume=true"\n', "")
        y["summary"]["resumed"] = False
    assert x["files"] == y["files"] and x["config"] == y["config"] and x["overrides"] == y["overrides"]
    assert x["summary"].keys() == y["summary"].keys()
    for k, v in x["summary"].items():
        if k == "metrics":
            assert v == pytest.approx(y["summary"][k], rel=1e-5)
        else:
            assert v == y["summary"][k], k
    pd.testing.assert_frame_equal(x["metrics"], y["metrics"], rtol=1e-5)
    ca, cb = x["checkpoint"], y["checkpoint"]
    assert ca.keys() == cb.keys()
    for k in ("epoch", "step", "batch_in_epoch", "callbacks", "scheduler"):
        assert ca[k] == cb[k], k
    assert torch.equal(ca["generator"], cb["generator"]) and torch.equal(ca["rng"], cb["rng"])
    for name, t in ca["model"].items():
        assert torch.allclose(t.float(), cb["model"][name].float(), rtol=1e-4, atol=1e-6), name
    oa, ob = ca["optimizer"], cb["optimizer"]
    assert oa["param_groups"] == ob["param_groups"] and oa["state"].keys() == ob["state"].keys()
    for i, s in oa["state"].items():
        for k, t in s.items():
            assert torch.allclose(t, ob["state"][i][k], rtol=1e-4, atol=1e-6), (i, k)


def test_stacked_run_directories_read_like_one_by_one(tmp_path):
    kids = expand(GRID)
    one = execute(kids, "train", BASE, tmp_path / "one", launcher="inline", progress="none", stack="false")
    st = execute(kids, "train", BASE, tmp_path / "st", launcher="inline", progress="none", stack="true")
    assert set(one.values()) == set(st.values()) == {"completed"}
    for c in kids:
        assert_same_dirs(tmp_path / "one" / "runs" / c.run_id, tmp_path / "st" / "runs" / c.run_id)
        s = json.loads((tmp_path / "st" / "runs" / c.run_id / "summary.json").read_text())
        assert s["stack"]["members"] == 3 and not (tmp_path / "st" / "runs" / c.run_id / ".claim").exists()
    ra, _ = collect(tmp_path / "one", kids)
    rb, _ = collect(tmp_path / "st", kids)
    pd.testing.assert_series_equal(ra.test_error, rb.test_error)


@pytest.mark.parametrize("grid", [GRID, {"model.width": [5, 8, 13]}], ids=["seeds", "padded_widths"])
def test_ctrl_c_mid_epoch_then_resume_per_member(tmp_path, monkeypatch, grid):
    """A stack stopped by SIGINT between steps checkpoints every member mid-epoch; running the sweep again
    resumes each from its own checkpoint (one member starting over beside them) and ends where one-by-one
    runs end. With several widths the stack is zero-padded, and so is the momentum each member resumes."""
    import dlx.train.stacked as stacked_mod

    kids = expand(grid)
    assert [len(u) for u in plan(kids, "train", BASE, "true")] == [3]
    calls = {"n": 0}
    real = stacked_mod.StackedOptimizer.step

    def step(self, i):
        calls["n"] += 1
        if calls["n"] == 7:  # mid-epoch 2 (5 steps per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, i)

    monkeypatch.setattr(stacked_mod.StackedOptimizer, "step", step)
    with pytest.raises(KeyboardInterrupt):
        execute(kids, "train", BASE, tmp_path / "st", launcher="inline", progress="none", stack="true")
    monkeypatch.setattr(stacked_mod.StackedOptimizer, "step", real)
    d = tmp_path / "st" / "runs"
    for c in kids:
        s = json.loads((d / c.run_id / "summary.json").read_text())
        ckpt = torch.load(d / c.run_id / "checkpoint.pt", weights_only=True)
        assert s["status"] == "interrupted" and ckpt["step"] == 7 and ckpt["batch_in_epoch"] == 2
    victim = kids[1].run_id
    for f in (d / victim).iterdir():
        f.unlink()  # this one starts over, beside the two that resume
    st = execute(kids, "train", BASE, tmp_path / "st", launcher="inline", progress="none", stack="true")
    assert set(st.values()) == {"completed"}
    execute(kids, "train", BASE, tmp_path / "one", launcher="inline", progress="none", stack="false")
    for c in kids:
        a = pd.read_csv(tmp_path / "one" / "runs" / c.run_id / "metrics.csv").drop(columns="wall_s")
        b = pd.read_csv(d / c.run_id / "metrics.csv").drop(columns="wall_s")
        pd.testing.assert_frame_equal(a, b, rtol=1e-5)
        s = json.loads((d / c.run_id / "summary.json").read_text())
        assert s["resumed"] is (c.run_id != victim)


def test_one_by_one_checkpoints_resume_in_a_stack(tmp_path, monkeypatch):
    """Children interrupted mid-epoch while running one by one resume together as one stack (the
    checkpoint format is the same both ways) and end where uninterrupted runs end."""
    from dlx.sweep.child import run_child
    from dlx.train import loop

    class Stop(loop.DivergenceGuard):  # Ctrl-C's flag, raised after a run's 7th batch
        def on_batch_end(self, state):
            super().on_batch_end(state)
            if state.step == 6:
                state.interrupt = True

    kids = expand(GRID)
    monkeypatch.setattr(loop, "DivergenceGuard", Stop)
    for c in kids:
        d = tmp_path / "st" / "runs" / c.run_id
        assert run_child("train", [*BASE, *c.overrides], str(d)) == "interrupted"
        assert torch.load(d / "checkpoint.pt", weights_only=True)["batch_in_epoch"] == 2
    monkeypatch.setattr(loop, "DivergenceGuard", Stop.__mro__[1])
    st = execute(kids, "train", BASE, tmp_path / "st", launcher="inline", progress="none", stack="true")
    assert set(st.values()) == {"completed"}
    execute(kids, "train", BASE, tmp_path / "one", launcher="inline", progress="none", stack="false")
    for c in kids:
        d = tmp_path / "st" / "runs" / c.run_id
        assert json.loads((d / "summary.json").read_text())["stack"]["members"] == 3
        assert_same_dirs(tmp_path / "one" / "runs" / c.run_id, d, resumed=True)


def test_a_leased_member_is_left_to_its_owner(tmp_path):
    from dlx.locks import Lease

    kids = expand(GRID)
    dirs = [tmp_path / "runs" / c.run_id for c in kids]
    held = Lease(dirs[0]).acquire()  # a live process (this one) is writing it
    try:
        got = run_stack("train", [([*BASE, *c.overrides], str(d), "train") for c, d in zip(kids, dirs,
                                                                                            strict=True)])
    finally:
        held.release()
    assert got[str(dirs[0])] == "leased" and not (dirs[0] / "summary.json").exists()
    assert got[str(dirs[1])] == got[str(dirs[2])] == "completed"


def test_members_that_cannot_stack_train_alone(tmp_path, monkeypatch):
    import dlx.sweep.plan as stack_mod

    kids = expand(GRID)
    monkeypatch.setattr(stack_mod, "CPU_MAX_FLOPS", 0.0)  # auto: too large to gain, so one by one
    st = execute(kids, "train", BASE, tmp_path / "st", launcher="inline", progress="none", stack="auto")
    assert set(st.values()) == {"completed"}
    execute(kids, "train", BASE, tmp_path / "one", launcher="inline", progress="none", stack="false")
    for c in kids:
        assert "stack" not in json.loads((tmp_path / "st" / "runs" / c.run_id / "summary.json").read_text())
        assert_same_dirs(tmp_path / "one" / "runs" / c.run_id, tmp_path / "st" / "runs" / c.run_id)


def test_grouping():
    dd = ["trainer.epochs=1", "trainer.progress=none"]
    kids = expand({"model.width": [8, 4], "data.label_noise": [0.1, 0.2], "seed": [0, 1, 2]})
    units = plan(kids, "double_descent", dd, "auto", workers=2)
    assert [len(u) for u in units] == [6, 6]
    assert {c.params["model.width"] for c in units[0]} == {8} and units[0][0] is kids[0]  # order kept
    assert [len(u) for u in plan(kids, "double_descent", dd, "false", workers=2)] == [1] * 12
    assert [len(u) for u in plan(kids, "double_descent", dd, "auto", workers=2, stack_max=4)] == [4, 2, 4, 2]
    assert [len(u) for u in plan(kids, "double_descent", dd, "auto", workers=6)] == [3, 3, 3, 3]
    one = expand({"seed": list(range(8))})
    assert [len(u) for u in plan(one, "double_descent", dd, "auto", workers=4)] == [2, 2, 2, 2]
    for extra in (["precision=bf16"], ["model.dropout=0.1"], ["model=transformer"]):
        assert {len(u) for u in plan(one, "double_descent", [*dd, *extra], "auto", workers=1)} == {1}, extra
    big = [*dd, "model.width=2048"]  # ~860 MFLOP a member batch: alone under auto, so each is its own unit
    assert {len(u) for u in plan(one, "double_descent", big, "auto", workers=1)} == {1}
    assert [len(u) for u in plan(one, "double_descent", big, "true", workers=1)] == [8]
    fits = expand({"seed": [0, 1]}, kind="fit")
    assert [len(u) for u in plan(fits, "grid", [], "true")] == [1, 1]


def test_local_pool_runs_stacks(tmp_path):
    kids = expand({"model.width": [4, 6], "seed": [0, 1]})
    st = execute(kids, "train", BASE[:-1], tmp_path / "st", launcher="local", workers=2, progress="none",
                 stack="true")
    assert set(st.values()) == {"completed"}
    execute(kids, "train", BASE[:-1], tmp_path / "one", launcher="inline", progress="none", stack="false")
    for c in kids:
        assert json.loads((tmp_path / "st" / "runs" / c.run_id / "summary.json").read_text())["stack"]
        assert_same_dirs(tmp_path / "one" / "runs" / c.run_id, tmp_path / "st" / "runs" / c.run_id)


def test_sweep_stack_setting_from_the_command_line(run_cli, tmp_path):
    quick = ["sweep.widths=[3]", "sweep.seeds=2", "launcher=inline", "trainer.epochs=2",
             "trainer.eval_points=2", "data.num_samples=600", "trainer.threads=1"]
    rc, _, err = run_cli("sweep", "double-descent", *quick, "--out", str(tmp_path), "--name", "dd")
    assert rc == 0, err
    runs = sorted((tmp_path / "reproduce" / "dd" / "runs").iterdir())
    assert all(json.loads((r / "summary.json").read_text())["stack"]["members"] == 2 for r in runs)
    rc, _, err = run_cli("sweep", "double-descent", *quick, "sweep.stack=false", "--out", str(tmp_path),
                         "--name", "off")
    assert rc == 0, err
    for r in runs:
        off = tmp_path / "reproduce" / "off" / "runs" / r.name
        assert "stack" not in json.loads((off / "summary.json").read_text())
        # the children's configs differ in the sweep's own setting only
        assert (off / "config.yaml").read_text().replace("stack: false", "stack: auto") == \
            (r / "config.yaml").read_text()
        assert (off / "overrides.yaml").read_text().replace('- "sweep.stack=false"\n', "") == \
            (r / "overrides.yaml").read_text()
        assert_same_dirs(off, r, config=False)
    bad = tmp_path / "bad"
    rc, _, err = run_cli("sweep", "double-descent", *quick, "sweep.stack=maybe", "--out", str(bad))
    assert rc == 2 and err.strip() == "dlx: error: sweep.stack must be auto, true or false, got 'maybe'"
    assert not bad.exists()  # refused before the sweep's directory is made


def test_bench_stacking_suite(run_cli, tmp_path):
    rc, _, err = run_cli("bench", "bench.suites=[stacking]", "bench.stacking.mlp_widths=[4]",
                         "bench.stacking.cnn_widths=[2]", "bench.stacking.sizes=[2]",
                         "bench.stacking.epochs=1", "bench.stacking.repeats=1", "--out", str(tmp_path),
                         "--name", "b")
    assert rc == 0, err
    d = tmp_path / "reproduce" / "b"
    df = pd.read_csv(d / "results.csv")
    assert set(df["mode"]) == {"one by one S=2", "stacked S=2"} and (df["mean"] > 0).all()
    stacked_rows = df[df["mode"].str.startswith("stacked")]
    assert stacked_rows["ratio"].notna().all() and (stacked_rows["loss_gap"] < 1e-3).all()
    assert (d / "stacking.png").stat().st_size > 1000
    rc, _, err = run_cli("bench", "bench.suites=[stacking]", "bench.stacking.sizes=[0]", "--out",
                         str(tmp_path))
    assert rc == 2 and "bench.stacking.sizes" in err

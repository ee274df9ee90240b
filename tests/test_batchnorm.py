"""Batch normalization (Bjorck et al.): the CIFAR ResNet family, the init-time analyses, the analysis
rules, and a tiny sweep end to end through the CLI (divergence recorded, figures drawn, resume)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dlx.config import compose
from dlx.data.bundle import Meta
from dlx.errors import DlxError
from dlx.models import build_model, count_params
from dlx.papers.batchnorm import analysis, probes
from dlx.tasks.classify import Classify

DIGITS = Meta("digits", "classify", (1, 8, 8), 10)


def resnet(depth=8, bn=True, seed=0, init="he", meta=DIGITS):
    torch.manual_seed(seed)
    return build_model(OmegaConf.create({"name": "resnet", "depth": depth, "width": 4, "batchnorm": bn,
                                         "init": init}), meta)


def batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_resnet_params_match_he_et_al():
    cifar = Meta("cifar10", "classify", (3, 32, 32), 10)
    cfg = {"name": "resnet", "width": 16, "batchnorm": True}
    # the well-known counts of the option-A CIFAR ResNets: 0.27M and 1.7M
    assert count_params(build_model(OmegaConf.create({**cfg, "depth": 20}), cifar)) == 269_722
    assert count_params(build_model(OmegaConf.create({**cfg, "depth": 110}), cifar)) == 1_727_962


def test_no_bn_is_the_same_network_with_identity_and_biases():
    a, b = resnet(bn=True), resnet(bn=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in a.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in b.modules())
    convs_a = [m for m in a.modules() if isinstance(m, torch.nn.Conv2d)]
    convs_b = [m for m in b.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs_a) == len(convs_b) == 7  # stem + 3 blocks x 2
    assert all(c.bias is None for c in convs_a) and all(c.bias is not None for c in convs_b)
    for ca, cb in zip(convs_a, convs_b, strict=True):  # identical initial weights
        assert torch.equal(ca.weight, cb.weight)
    x, _ = batch()
    assert a(x).shape == b(x).shape == (32, 10)


def test_scaled_init_tames_deep_no_bn_activations():
    x, _ = batch()
    with torch.no_grad():
        plain = resnet(depth=56, bn=False).eval()(x).std()
        scaled = resnet(depth=56, bn=False, init="he_scaled").eval()(x).std()
    assert scaled < plain / 10


@pytest.mark.parametrize("depth", [7, 21, 4])
def test_bad_depth(depth):
    with pytest.raises(DlxError, match="6n\\+2|>= 8"):
        resnet(depth=depth)


@pytest.mark.parametrize("bn", [True, False])
def test_relative_loss_is_one_at_tiny_steps_and_leaves_the_model_alone(bn):
    model, task = resnet(bn=bn), Classify()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = probes.relative_loss(model, task, [batch(seed=1), batch(seed=2)], [0.0, 1e-7, 1e-3, 1e3])
    df = pd.DataFrame(rows)
    assert len(df) == 8 and set(df.batch) == {0, 1}
    assert df[df.eta == 0].ratio.tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert df[df.eta == 1e-7].ratio.tolist() == pytest.approx([1.0, 1.0], abs=1e-3)
    assert (df[df.eta == 1e-3].ratio < 1.0).all()  # a small step down the gradient lowers the loss
    for k, v in model.state_dict().items():  # weights and BN running stats restored
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("bn", [True, False])
def test_activation_stats_one_row_per_layer(bn):
    model = resnet(depth=14, bn=bn)
    rows = probes.activation_stats(model, batch())
    assert [r["layer"] for r in rows] == list(range(1 + 6))  # stem + 3 stages x 2 blocks
    assert all(r["std"] > 0 and r["abs_mean"] >= 0 for r in rows)
    name, grads = probes.middle_gradients(model, Classify(), batch())
    assert "conv" in name
    assert grads.ndim == 1 and len(grads) > 0 and (grads != 0).any()


def _frame(rows):
    cols = ["bn", "lr", "seed", "test_acc", "train_acc", "diverged"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


def test_analyse_rules():
    nan = float("nan")
    df = _frame([
        (True, 1e-3, 0, 0.80, 0.82, False), (True, 1e-2, 0, 0.90, 0.95, False),
        (True, 1e-1, 0, 0.95, 1.00, False), (True, 1.0, 0, 0.10, 0.10, False),
        (False, 1e-3, 0, 0.81, 0.83, False), (False, 1e-2, 0, 0.40, 0.42, False),
        (False, 1e-1, 0, nan, nan, True), (False, 1.0, 0, nan, nan, True),
    ])
    a = analysis.analyse(df, min_acc=0.5)
    assert a["bn_max_stable_lr"] == 0.1 and a["bn_max_nondiverged_lr"] == 1.0  # chance is not "stable"
    assert a["nobn_max_stable_lr"] == 1e-3 and a["nobn_diverged_lrs"] == [0.1, 1.0]
    assert a["stable_lr_ratio"] == pytest.approx(100)
    assert a["small_lr"] == 1e-3 and a["small_lr_gap"] == pytest.approx(-0.01)
    assert a["best_gap"] == pytest.approx(0.95 - 0.81)
    # per seed: what the claims compare (one seed here: each comparison has no interval)
    ps = a["per_seed"]
    assert ps["seed"] == [0] and ps["bn_stable_lr"] == [0.1] and ps["nobn_stable_lr"] == [1e-3]
    assert ps["bn_best"] == [0.95] and ps["nobn_best"] == [0.81] and ps["bn_small"] == [0.80]
    rules = analysis.check_rules(compose("batchnorm").batchnorm.rules)
    init = {"min_eta": 1e-4, "per_batch": {"bn_max_eta": [0.1], "nobn_max_eta": [1e-3]}}
    one = {c["id"]: c for c in analysis.claims(a, init, rules)}
    assert one["stable_lr"]["verdict"] == "inconclusive" and one["stable_lr"]["n"] == 1
    assert "fewer than two" in one["best_accuracy"]["why"]
    json.dumps(list(one.values()), allow_nan=False)
    json.dumps(a, allow_nan=False)  # NaN never reaches summary.json
    seeds = pd.concat([df, df.assign(seed=1, test_acc=df.test_acc + 0.01),
                       df.assign(seed=2, test_acc=df.test_acc - 0.01)], ignore_index=True)
    three = {c["id"]: c for c in analysis.claims(analysis.analyse(seeds), init, rules)}
    assert three["best_accuracy"]["verdict"] == "holds" and three["best_accuracy"]["n"] == 3
    assert three["best_accuracy"]["estimate"] == pytest.approx(14.0)  # points, paired by seed
    assert three["stable_lr"]["verdict"] == "holds" and three["stable_lr"]["estimate"] == pytest.approx(2.0)
    assert three["same_small_lr"]["verdict"] == "holds"
    assert analysis.claims(analysis.analyse(seeds, small_lr=1e-2), init, rules)[2]["verdict"] == "fails"
    # the curve figure's large lr: the smallest lr above no-BN's last stable one (1e-3) where BN is stable
    assert a["large_lr"] == 1e-2 and analysis.analyse(df, large_lr=1.0)["large_lr"] == 1.0
    both = df[(df.lr != 1e-2) & ~((~df.bn) & (df.lr >= 1e-1))]  # no-BN also stable at the top: 1e-3 and 0.1
    both = pd.concat([both, _frame([(False, 1e-1, 0, 0.90, 0.9, False)])], ignore_index=True)
    b = analysis.analyse(both)
    assert b["bn_best_lr"] == 0.1 and b["large_lr"] == 0.1  # nothing beyond no-BN: BN's best, not 1e-3
    only_bn = analysis.analyse(df[df.bn])  # a sweep without no-BN runs
    assert only_bn["large_lr"] == only_bn["bn_best_lr"] == 0.1
    from dlx.papers.batchnorm.plots import curve_picks

    assert curve_picks({"metrics": a}) == [(True, 1e-3), (False, 1e-3), (True, 1e-2)]


TINY = ["sweep.lrs=[0.03,30.0]", "sweep.seeds=1", "launcher=inline", "trainer.epochs=2", "model.depth=8",
        "model.width=4", "data.n_train=200", "trainer.threads=1", "batchnorm.batches=2",
        "batchnorm.step_sizes=[0.0001,0.1,10.0]"]


def test_tiny_reproduce_end_to_end(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "batchnorm", *TINY, "--out", str(tmp_path), "--name", "bn")
    assert rc == 0, err
    assert "batchnorm: " in out and "claims hold" in out and "stable_lr:" in out
    assert "inconclusive" in out  # one seed: no interval, so the seed comparisons cannot be decided
    d = tmp_path / "reproduce" / "bn"
    res = pd.read_csv(d / "results.csv")
    assert len(res) == 4 and set(res.bn) == {True, False} and set(res.lr) == {0.03, 30.0}
    assert {"bn", "lr", "seed", "train_acc", "test_acc", "diverged", "diverged_epoch"} <= set(res.columns)
    small = res[res.lr == 0.03]
    assert (~small.diverged).all() and small.test_acc.between(0, 1).all()
    # no-BN at lr 30 blows up in its first epoch: recorded, with its epoch, and the sweep went on
    bad = res[(~res.bn) & (res.lr == 30.0)].iloc[0]
    assert bad.diverged and bad.status == "diverged" and bad.diverged_epoch == 1 and pd.isna(bad.test_acc)
    summary = json.loads((d / "summary.json").read_text())
    assert summary["kind"] == "batchnorm" and summary["status"] == "completed"
    assert [c["id"] for c in summary["claims"]] == ["stable_lr", "best_accuracy", "same_small_lr",
                                                    "large_lr_gain", "init_step", "init_gradients",
                                                    "init_grad_tails"]
    init_claims = {c["id"]: c for c in summary["claims"] if c["id"].startswith("init_")}
    assert all(c["n"] == 2 for c in init_claims.values())  # batchnorm.batches=2, paired by batch
    assert summary["children"] == 4 and summary["children_wall_s"] > 0
    assert 30.0 in summary["metrics"]["nobn_diverged_lrs"]
    assert {"nobn_max_eta_loss_falls", "grad_ratio_nobn_over_bn"} <= set(summary["init"])
    rel, act = pd.read_csv(d / "relative_loss.csv"), pd.read_csv(d / "activations.csv")
    assert len(rel) == 2 * 2 * 3 and len(act) == 2 * 4  # (bn) x batches x etas; (bn) x (stem + 3 blocks)
    assert set(pd.read_csv(d / "gradients.csv").bn) == {True, False}
    gstats = pd.read_csv(d / "gradient_stats.csv")
    assert len(gstats) == 2 * 2 and (gstats.abs_mean > 0).all()  # (bn) x batches
    pngs = ("accuracy_vs_lr.png", "training_curves.png", "relative_loss.png", "activations.png",
            "gradient_histogram.png")
    for png in pngs:
        assert (d / png).stat().st_size > 1000, png

    # plot() redraws from the tables alone
    (d / "accuracy_vs_lr.png").unlink()
    assert run_cli("plot", str(d))[0] == 0 and (d / "accuracy_vs_lr.png").is_file()

    # a second run into the same directory skips the finished children
    from dlx.launch import launch
    from dlx.registry import get
    from dlx.runs import Run

    kept = d / "runs" / res.run_id.iloc[0] / "summary.json"
    mtime = kept.stat().st_mtime_ns
    again = launch(get("batchnorm"), compose("batchnorm", TINY), Run(d, "batchnorm"))
    assert kept.stat().st_mtime_ns == mtime
    pd.testing.assert_series_equal(again.reset_index(drop=True).test_acc, res.test_acc, check_names=False)


@pytest.mark.parametrize("override, needle", [
    ("sweep.lrs=[]", "sweep.lrs"),
    ("sweep.lrs=[-0.1]", "sweep.lrs"),
    ("sweep.lrs=[0.1,abc]", "sweep.lrs"),
    ("sweep.lrs=abc", "sweep.lrs"),
    ("batchnorm.step_sizes=[a]", "batchnorm.step_sizes"),
    ("batchnorm.rules.close_tol=-1", "batchnorm.rules.close_tol"),
    ("batchnorm.rules.stable_lr_ratio=0.5", "batchnorm.rules.stable_lr_ratio"),
    ("batchnorm.batches=0", "batchnorm.batches"),
    ("batchnorm.small_lr=0", "batchnorm.small_lr"),
    ("batchnorm.small_lr=[0.1,0.2]", "batchnorm.small_lr"),
    ("batchnorm.batch_size=2.5", "batchnorm.batch_size"),
    ("batchnorm.min_acc=2", "batchnorm.min_acc"),
    ("sweep.seeds=0", "sweep.seeds"),
    ("experiment=bn_nope", "unknown experiment 'bn_nope'"),
])
def test_bad_input_is_one_line(run_cli, tmp_path, override, needle):
    rc, _, err = run_cli("reproduce", "batchnorm", override, "--out", str(tmp_path))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    for summary in tmp_path.rglob("runs/*/summary.json"):  # refused before any child ran
        raise AssertionError(f"a child ran: {summary}")


def test_tilde_experiment_turns_the_preset_off():
    from dlx.config import compose
    from dlx.errors import DlxError

    assert compose("batchnorm", ["~experiment"]).sweep.seeds == 1  # batchnorm.yaml's own default
    assert compose("batchnorm").sweep.seeds == 3  # batchnorm_digits
    with pytest.raises(DlxError, match="~experiment"):
        compose("batchnorm", ["experiment=null"])


def test_every_preset_composes():
    from dlx.config import compose

    # weight decay: dlx's stronger 5e-4 for 1,348 digits; He et al.'s 1e-4 for ResNet-110 on CIFAR-10
    for exp, wd in (("batchnorm_digits", 0.0005), ("batchnorm_resnet110_cifar10", 0.0001)):
        cfg = compose("batchnorm", [f"experiment={exp}"])
        assert cfg.model.name == "resnet"
        assert cfg.optimizer.schedule == "step" and list(cfg.optimizer.milestones) == [0.5, 0.75]
        assert cfg.trainer.divergence_factor == 1000 and cfg.optimizer.weight_decay == wd
    assert compose("batchnorm", ["experiment=batchnorm_resnet110_cifar10"]).model.depth == 110

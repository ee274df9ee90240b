"""Every batchnorm claim can hold, fail or come out inconclusive: made-up sweep tables (through analyse())
and init-probe summaries fed to claims() (no training)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dlx.config import compose
from dlx.errors import DlxError
from dlx.papers.batchnorm.analysis import analyse, check_rules, claims

RULES = {"stable_lr_ratio": 10.0, "best_gain": 0.0, "close_tol": 0.03, "large_lr_gain": 0.0,
         "init_step_decades": 0.0, "grad_ratio": 1.0, "kurtosis_gap": 0.0}
LRS = (1e-3, 1e-2, 1e-1, 1.0)
NAN = float("nan")


def sweep(bn: dict, nobn: dict):
    """{lr: [test acc per seed]} per network (None = that seed diverged) -> analyse()'s input frame."""
    rows = []
    for is_bn, table in ((True, bn), (False, nobn)):
        for lr, accs in table.items():
            for seed, acc in enumerate(accs):
                rows.append({"bn": is_bn, "lr": lr, "seed": seed, "test_acc": NAN if acc is None else acc,
                             "train_acc": NAN if acc is None else acc, "diverged": acc is None})
    return pd.DataFrame(rows)


# the picture the paper draws: no-BN best at 1e-2 and diverged above; BN trains up to 1, peaks at 0.1,
# and is close to no-BN at 1e-2 (seeds 0-2, a point or less of seed noise)
BN = {1e-3: [0.80, 0.81, 0.79], 1e-2: [0.900, 0.905, 0.895], 1e-1: [0.95, 0.96, 0.955],
      1.0: [0.90, 0.92, 0.91]}
NOBN = {1e-3: [0.85, 0.86, 0.84], 1e-2: [0.895, 0.905, 0.90], 1e-1: [None, None, None], 1.0: [None] * 3}
INIT = {"min_eta": 1e-6, "bn_max_eta_loss_falls": 0.1, "nobn_max_eta_loss_falls": 1e-3,
        "grad_ratio_nobn_over_bn": 5.0, "bn_grad_kurtosis": 3.0, "nobn_grad_kurtosis": 50.0,
        "per_batch": {"batch": [0, 1, 2, 3], "bn_max_eta": [0.1, 0.1, 0.3, 0.1],
                      "nobn_max_eta": [1e-3, 3e-3, 1e-3, 1e-3],
                      "bn_grad_abs_mean": [0.01, 0.011, 0.012, 0.01],
                      "nobn_grad_abs_mean": [0.05, 0.06, 0.05, 0.055],
                      "bn_grad_kurtosis": [3.0, 2.5, 3.5, 3.2],
                      "nobn_grad_kurtosis": [50.0, 40.0, 60.0, 45.0]}}


def verdicts(bn=BN, nobn=NOBN, init=INIT, rules=RULES, **kw) -> dict:
    a = analyse(sweep(bn, nobn), **kw)
    out = claims(a, init, rules)
    assert [c["id"] for c in out] == ["stable_lr", "best_accuracy", "same_small_lr", "large_lr_gain",
                                      "init_step", "init_gradients", "init_grad_tails"]
    json.dumps(out, allow_nan=False)
    json.dumps(a, allow_nan=False)
    return {c["id"]: c for c in out}


def test_the_papers_picture_holds_throughout():
    c = verdicts()
    assert {k: v["verdict"] for k, v in c.items()} == dict.fromkeys(c, "holds")
    assert all(v["n"] >= 3 and v["ci_method"] == "t" and v["source"] == "paper" for v in c.values())
    assert c["stable_lr"]["estimate"] == pytest.approx(2.0)  # 1.0 vs 1e-2 in every seed: two decades
    best, gain = c["best_accuracy"]["measured"], c["large_lr_gain"]["measured"]
    assert best["BN lr"] == 0.1 and best["no BN lr"] == 0.01
    assert c["best_accuracy"]["estimate"] == pytest.approx(100 * (0.955 - 0.9))  # in points
    assert "paired t interval" in c["best_accuracy"]["rule"] and "points" in c["best_accuracy"]["rule"]
    assert gain["large lr"] == 0.1 and gain["small lr"] == 0.01


# -- stable_lr -------------------------------------------------------------------------------------------

def test_stable_lr_fails_and_is_inconclusive():
    nobn_ok = {**NOBN, 1e-1: [0.90, 0.91, 0.92], 1.0: [0.5, 0.6, 0.7]}  # no-BN trains everywhere BN does
    assert verdicts(nobn=nobn_ok)["stable_lr"]["verdict"] == "fails"
    # one seed of no-BN also stable at 0.1 (one decade), the others two decades apart: straddles 1 decade
    nobn_mixed = {**NOBN, 1e-1: [0.90, None, None]}
    c = verdicts(nobn=nobn_mixed)["stable_lr"]
    assert c["verdict"] == "inconclusive" and c["ci"][0] < 1 < c["ci"][1]


def test_stable_lr_counts_a_seed_at_chance_as_unstable_and_bounds_a_network_that_never_trains():
    at_chance = {**NOBN, 1e-3: [0.1, 0.1, 0.1], 1e-2: [0.1, 0.1, 0.1]}  # learns nothing: no stable lr
    c = verdicts(nobn=at_chance)["stable_lr"]
    assert c["verdict"] == "holds" and c["estimate"] == pytest.approx(3.0)  # bound: the grid's smallest lr
    bn_never = {lr: [0.1, 0.1, 0.1] for lr in LRS}
    assert verdicts(bn=bn_never)["stable_lr"]["verdict"] == "fails"


# -- best_accuracy ---------------------------------------------------------------------------------------

def test_best_accuracy_fails_and_is_inconclusive():
    worse = {**BN, 1e-1: [0.85, 0.86, 0.855], 1.0: [0.8, 0.8, 0.8]}  # BN's best (1e-2) at most no-BN's
    c = verdicts(bn={**worse, 1e-2: [0.88, 0.885, 0.875]})["best_accuracy"]
    assert c["verdict"] == "fails"
    noisy = {**BN, 1e-1: [0.98, 0.88, 0.92]}  # mean 0.927 > 0.9, but seed spread of 10 points
    c = verdicts(bn=noisy)["best_accuracy"]
    assert c["verdict"] == "inconclusive" and c["n"] == 3


# -- same_small_lr ---------------------------------------------------------------------------------------

def test_same_small_lr_fails_and_is_inconclusive():
    far = {**BN, 1e-2: [0.80, 0.81, 0.79]}  # 10 points behind no-BN at its best lr
    assert verdicts(bn=far)["same_small_lr"]["verdict"] == "fails"
    spread = {**BN, 1e-2: [0.95, 0.85, 0.92]}
    c = verdicts(bn=spread)["same_small_lr"]
    assert c["verdict"] == "inconclusive" and c["measured"]["lr"] == 0.01


def test_same_small_lr_drops_a_diverged_seed_and_needs_both_networks():
    c = verdicts(bn={**BN, 1e-2: [0.9, None, 0.9]})["same_small_lr"]
    assert c["n"] == 2
    nothing = verdicts(nobn={lr: [None] * 3 for lr in LRS})
    assert nothing["same_small_lr"]["verdict"] == nothing["best_accuracy"]["verdict"] == "not shown"


# -- large_lr_gain ---------------------------------------------------------------------------------------

def test_large_lr_gain_fails_is_inconclusive_and_needs_a_larger_lr():
    flat = {**BN, 1e-1: [0.85, 0.86, 0.855]}  # BN at 0.1 below BN at 1e-2
    assert verdicts(bn=flat)["large_lr_gain"]["verdict"] == "fails"
    noisy = {**BN, 1e-1: [0.97, 0.86, 0.93]}
    assert verdicts(bn=noisy)["large_lr_gain"]["verdict"] == "inconclusive"
    c = verdicts(large_lr=1e-3)["large_lr_gain"]  # a "large" lr below the small one
    assert c["verdict"] == "not shown" and c["why"]


# -- init probes -----------------------------------------------------------------------------------------

def probe(**per_batch):
    return {**INIT, "per_batch": {**INIT["per_batch"], **per_batch}}


@pytest.mark.parametrize("bn_eta, nobn_eta, expect", [
    ([1e-3, 1e-3, 3e-4, 1e-3], [0.1, 0.1, 0.1, 0.3], "fails"),      # no-BN takes the larger steps
    ([0.1, 1e-3, 0.3, 1e-4], [1e-3, 0.1, 1e-3, 0.1], "inconclusive"),
])
def test_init_step(bn_eta, nobn_eta, expect):
    assert verdicts(init=probe(bn_max_eta=bn_eta, nobn_max_eta=nobn_eta))["init_step"]["verdict"] == expect


def test_init_step_bounds_a_batch_where_no_step_helps():
    c = verdicts(init=probe(nobn_max_eta=[None, None, None, None], bn_max_eta=[0.1] * 4))["init_step"]
    assert c["verdict"] == "holds" and c["estimate"] == pytest.approx(5.0)  # 0.1 over the 1e-6 bound
    assert verdicts(init={})["init_step"]["verdict"] == "not shown"


@pytest.mark.parametrize("nobn, bn, expect", [
    ([0.01, 0.011, 0.009, 0.01], [0.05, 0.06, 0.05, 0.055], "fails"),  # BN's gradients are the larger
    ([0.05, 0.005, 0.04, 0.006], [0.01, 0.011, 0.012, 0.01], "inconclusive"),
])
def test_init_gradients(nobn, bn, expect):
    c = verdicts(init=probe(nobn_grad_abs_mean=nobn, bn_grad_abs_mean=bn))["init_gradients"]
    assert c["verdict"] == expect and c["n"] == 4
    assert verdicts(init={})["init_gradients"]["verdict"] == "not shown"


@pytest.mark.parametrize("nobn, bn, expect", [
    ([2.0, 3.0, 2.5, 2.8], [3.0, 3.5, 3.2, 3.1], "fails"),
    ([50.0, 1.0, 40.0, 2.0], [3.0, 3.5, 3.2, 3.1], "inconclusive"),
])
def test_init_grad_tails(nobn, bn, expect):
    c = verdicts(init=probe(nobn_grad_kurtosis=nobn, bn_grad_kurtosis=bn))["init_grad_tails"]
    assert c["verdict"] == expect
    assert verdicts(init={})["init_grad_tails"]["verdict"] == "not shown"


def test_rules_move_the_lines():
    c = verdicts(rules={**RULES, "stable_lr_ratio": 1000.0, "best_gain": 0.2, "grad_ratio": 100.0})
    assert c["stable_lr"]["verdict"] == "fails" and "in decades (log10) > 3 on" in c["stable_lr"]["rule"]
    assert c["best_accuracy"]["verdict"] == "fails" and "> 20 points" in c["best_accuracy"]["rule"]
    assert c["init_gradients"]["verdict"] == "fails"
    tight = verdicts(rules={**RULES, "close_tol": 0.001})["same_small_lr"]  # +-0.1 point: inside seed noise
    assert tight["verdict"] == "inconclusive" and "within ±0.1 points" in tight["rule"]


def test_rules_live_in_config():
    cfg = compose("batchnorm")
    assert check_rules(cfg.batchnorm.rules) == RULES
    assert cfg.sweep.seeds >= 3  # the default's claims are intervals over seeds
    with pytest.raises(DlxError, match="batchnorm.rules.close_tol"):
        check_rules({**RULES, "close_tol": 2})


def test_a_sweep_without_no_bn_shows_no_comparison():
    from dlx.papers.batchnorm.probes import init_summary

    rel = pd.DataFrame([{"bn": True, "batch": b, "eta": eta, "ratio": r} for b in (0, 1)
                        for eta, r in ((1e-3, 0.9), (0.1, 0.8), (10.0, 5.0))])
    empty = pd.DataFrame(columns=["bn", "layer", "std", "grad"])
    init = init_summary(rel, empty, empty)
    assert init["per_batch"]["nobn_max_eta"] == [] and init["per_batch"]["bn_max_eta"] == [0.1, 0.1]
    c = {x["id"]: x for x in claims(analyse(sweep(BN, {})), init, RULES)}
    assert {k: v["verdict"] for k, v in c.items()} == {
        "stable_lr": "not shown", "best_accuracy": "not shown", "same_small_lr": "not shown",
        "large_lr_gain": "not shown", "init_step": "not shown", "init_gradients": "not shown",
        "init_grad_tails": "not shown"}

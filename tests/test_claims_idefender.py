"""Every I-defender claim can hold, fail and (comparisons) come out inconclusive: made-up score tables fed to
the pure claims function (dlx/papers/idefender/verdicts.py), no model, no training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from dlx.errors import DlxError
from dlx.papers.idefender.verdicts import CLAIM_IDS, boot_weights, check_rules, claims, weighted_auroc

RULES = {"auroc": 0.90, "margin": 0.0, "fpr_tolerance": 0.025, "transfer": 0.5}
DETECTORS = ("idefender", "max_softmax", "mahalanobis", "kd_bu", "lid")
CELLS = (("graybox", "fgsm"), ("graybox", "pgd"), ("blackbox", "fgsm"))


def grid(n: int) -> np.ndarray:
    """n standard-normal quantiles: a noise-free 'sample'."""
    return norm.ppf((np.arange(n) + 0.5) / n)


def tables(auroc, n_clean=400, n_adv=300, fpr_flagged=0.05, success=0.9, n_attacked=400, cells=CELLS,
           detectors=DETECTORS):
    """(scores, results) shaped as scores.csv and results.csv. ``auroc[detector]`` is the AUROC its
    adversarials get in every cell, or a dict cell -> AUROC; each detector's scores are an independent
    shuffle of normal quantiles (clean N(0, 1), adversarial shifted to give that AUROC), so detectors
    share inputs but not noise. ``fpr_flagged``: the fraction of I-defender's clean inputs flagged."""
    rows, res = [], []
    for k, d in enumerate(detectors):
        rng = np.random.default_rng(k)
        flagged = np.arange(n_clean) < round(fpr_flagged * n_clean)
        rows.append(pd.DataFrame({"setting": "", "attack": "clean", "detector": d, "label": 0,
                                  "score": rng.permutation(grid(n_clean)), "flagged": flagged}))
        for cell in cells:
            a = auroc[d] if not isinstance(auroc[d], dict) else auroc[d][cell]
            adv = rng.permutation(grid(n_adv)) + np.sqrt(2) * norm.ppf(a)
            rows.append(pd.DataFrame({"setting": cell[0], "attack": cell[1], "detector": d, "label": 1,
                                      "score": adv, "flagged": adv > 1.64}))
            res.append({"setting": cell[0], "attack": cell[1], "detector": d,
                        "supervision": "supervised:fgsm" if d == "lid" else "unsupervised",
                        "success_rate": success, "n_attacked": n_attacked})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(res)


def verdicts(scores, results, rules=RULES, replicates=250, **kw):
    out = claims(scores, results, rules, fpr=0.05, substitute="a query-labelled substitute",
                 replicates=replicates, **kw)
    assert [c["id"] for c in out] == list(CLAIM_IDS)
    return {c["id"]: c for c in out}


GOOD = {"idefender": 0.98, "max_softmax": 0.80, "mahalanobis": 0.85, "kd_bu": 0.82, "lid": 0.84}


def test_everything_holds_on_a_clear_win():
    got = verdicts(*tables(GOOD))
    assert {k: c["verdict"] for k, c in got.items()} == dict.fromkeys(CLAIM_IDS, "holds")
    c = got["detects_graybox"]
    assert c["ci_method"] == "percentile" and c["n"] == 250 and c["ci"][0] > 0.9
    assert set(c["measured"]) == {"fgsm", "pgd"} and c["measured"]["fgsm"] == pytest.approx(0.98, abs=0.01)
    assert "a query-labelled substitute" in got["detects_blackbox"]["claim"]
    assert "supervised on fgsm adversarials" in got["beats_supervised_lid"]["claim"]
    assert got["beats_unsupervised_baselines"]["measured"]["graybox.fgsm"].endswith("(mahalanobis)")
    assert got["fpr_at_nominal"]["source"] == got["blackbox_transfers"]["source"] == "dlx"
    assert {got[k]["source"] for k in CLAIM_IDS[:4]} == {"paper"}


@pytest.mark.parametrize("setting", ["graybox", "blackbox"])
def test_detects_fails_and_is_inconclusive_on_the_worst_attack(setting):
    worst = next(c for c in CELLS if c[0] == setting)
    for value, verdict in ((0.80, "fails"), (0.90, "inconclusive")):
        auroc = dict(GOOD, idefender={c: value if c == worst else 0.99 for c in CELLS})
        got = verdicts(*tables(auroc))
        assert got[f"detects_{setting}"]["verdict"] == verdict, got[f"detects_{setting}"]
        other = "blackbox" if setting == "graybox" else "graybox"
        assert got[f"detects_{other}"]["verdict"] == "holds"


@pytest.mark.parametrize("baseline, claim_id", [("max_softmax", "beats_unsupervised_baselines"),
                                                ("kd_bu", "beats_unsupervised_baselines"),
                                                ("lid", "beats_supervised_lid")])
def test_beating_baselines_fails_or_is_inconclusive_on_one_attack(baseline, claim_id):
    cell = ("blackbox", "fgsm")
    for value, verdict in ((0.99, "fails"), (0.90, "inconclusive")):
        auroc = dict(GOOD, idefender={c: 0.90 if c == cell else 0.98 for c in CELLS},
                     **{baseline: {c: value if c == cell else 0.80 for c in CELLS}})
        got = verdicts(*tables(auroc))
        assert got[claim_id]["verdict"] == verdict, got[claim_id]
        assert got[claim_id]["estimate"] < got[claim_id]["ci"][1]
        other = {"beats_unsupervised_baselines", "beats_supervised_lid"} - {claim_id}
        assert got[other.pop()]["verdict"] == "holds"


@pytest.mark.parametrize("rate, verdict", [(0.05, "holds"), (0.15, "fails"), (0.03, "inconclusive")])
def test_fpr_at_nominal(rate, verdict):
    got = verdicts(*tables(GOOD, fpr_flagged=rate))["fpr_at_nominal"]
    assert got["verdict"] == verdict, got
    assert got["measured"]["fpr_test"] == pytest.approx(rate)


@pytest.mark.parametrize("success, n, verdict", [(0.9, 400, "holds"), (0.2, 400, "fails"),
                                                 (0.5, 100, "inconclusive")])
def test_blackbox_transfers(success, n, verdict):
    scores, results = tables(GOOD)
    results.loc[results.setting == "blackbox", ["success_rate", "n_attacked"]] = [success, n]
    got = verdicts(scores, results)["blackbox_transfers"]
    assert got["verdict"] == verdict, got


def test_claims_without_their_inputs_are_not_shown():
    gray = tuple(c for c in CELLS if c[0] == "graybox")
    scores, results = tables(GOOD, cells=gray, detectors=("idefender",))
    got = verdicts(scores.drop(columns="flagged"), results)
    for k in CLAIM_IDS:
        if k != "detects_graybox":
            assert got[k]["verdict"] == "not shown" and got[k]["why"], k
    assert got["detects_graybox"]["verdict"] == "holds"


def test_rules_decide_and_are_checked():
    scores, results = tables(GOOD)
    strict = dict(RULES, auroc=0.99, margin=0.2, transfer=0.95, fpr_tolerance=0.001)
    got = verdicts(scores, results, strict)
    assert got["detects_graybox"]["verdict"] == got["beats_supervised_lid"]["verdict"] == "fails"
    assert got["blackbox_transfers"]["verdict"] == "fails" and got["fpr_at_nominal"]["verdict"] != "holds"
    assert "> 0.99" in got["detects_graybox"]["rule"]
    with pytest.raises(DlxError, match="idefender.rules needs transfer"):
        check_rules({k: v for k, v in RULES.items() if k != "transfer"})
    with pytest.raises(DlxError, match="idefender.rules.auroc"):
        check_rules(dict(RULES, auroc=1.5))


def pairwise_auroc(clean, adv) -> float:
    """P(adversarial scores above clean), ties one half: the AUROC by its definition."""
    d = np.asarray(adv)[:, None] - np.asarray(clean)[None, :]
    return float((d > 0).mean() + 0.5 * (d == 0).mean())


def test_weighted_auroc_is_the_auroc_of_the_resample():
    rng = np.random.default_rng(0)
    clean, adv = rng.integers(0, 6, 40).astype(float), rng.integers(2, 8, 30).astype(float)  # many ties
    one = weighted_auroc(clean, adv, np.ones((1, 40)), np.ones((1, 30)))[0]
    assert one == pytest.approx(pairwise_auroc(clean, adv))
    wc, wa = boot_weights(rng, 40, 3), boot_weights(rng, 30, 3)
    assert (wc.sum(1) == 40).all() and (wa.sum(1) == 30).all()
    reps = weighted_auroc(clean, adv, wc, wa)
    for b in range(3):
        c, a = np.repeat(clean, wc[b].astype(int)), np.repeat(adv, wa[b].astype(int))
        assert reps[b] == pytest.approx(pairwise_auroc(c, a))


def test_paired_resamples_and_seeded():
    """Two detectors with the same scores differ by exactly 0 in every replicate (paired on the same
    resample), so the comparison is inconclusive with a zero-width interval; the same seed repeats."""
    scores, results = tables(GOOD)
    same = scores[scores.detector == "idefender"].assign(detector="lid")
    scores = pd.concat([scores[scores.detector != "lid"], same], ignore_index=True)
    got = verdicts(scores, results)["beats_supervised_lid"]
    assert got["ci"] == [0.0, 0.0] and got["verdict"] == "inconclusive"
    a, b = verdicts(*tables(GOOD), seed=3), verdicts(*tables(GOOD), seed=3)
    assert a["detects_graybox"]["ci"] == b["detects_graybox"]["ci"]
    assert a["detects_graybox"]["ci"] != verdicts(*tables(GOOD), seed=4)["detects_graybox"]["ci"]

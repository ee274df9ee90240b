"""Every symnets claim can hold, fail and come out inconclusive: made-up per-seed tables fed to
analysis.claims (no training), one scenario per claim id and verdict."""

from __future__ import annotations

import pandas as pd
import pytest

from dlx.papers.symnets import analysis

RULES = {"small": 2, "gap": 0.05, "shrink": 0.0, "beat": 0.0, "spread_ratio": 0.5, "search_gain": 0.0}
SEEDS = (0, 1, 2)
# a small per-seed wobble of its own for each network, so paired differences have a spread (a real interval)
WOBBLE = {"convnet": (0.01, -0.01, 0.0), "symnet": (0.0, 0.01, -0.01), "convnet_aug": (-0.01, 0.0, 0.01),
          "p4cnn": (0.005, -0.005, 0.0), "symnet_nosearch": (-0.005, 0.0, 0.005), "on": (0.0, 0.005, -0.005),
          "off": (0.005, 0.0, -0.005)}
# test error by network and training size, where every claim holds
MAIN = {"convnet": {50: 0.60, 100: 0.50, 800: 0.20}, "symnet": {50: 0.25, 100: 0.15, 800: 0.05},
        "convnet_aug": {50: 0.30, 100: 0.20, 800: 0.08}, "p4cnn": {50: 0.45, 100: 0.35, 800: 0.10}}
# trained upright, error by test angle (0 and 45 degrees are control points of K=8; 15 and 30 lie between)
ANGLES = (0, 15, 30, 45)
INV = {"symnet": (0.03, 0.10, 0.10, 0.03), "symnet_nosearch": (0.03, 0.14, 0.14, 0.03),
       "convnet": (0.02, 0.10, 0.50, 0.80)}
ABL = {"on": 0.15, "off": 0.20}  # the symnet at n=100, K=8, with and without the search


def per_seed(model: str, value) -> list[float]:
    """A scalar gets the network's wobble; a list is the per-seed values themselves."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value + w for w in WOBBLE[model]]


def main_rows(**change) -> pd.DataFrame:
    table = {m: dict(v) for m, v in MAIN.items()}
    for key, value in change.items():  # e.g. convnet_800=0.5 or convnet_50=[...]
        model, n = key.rsplit("_", 1)
        table[model][int(n)] = value
    return pd.DataFrame([{"model": m, "n_train": n, "seed": s, "test_error": e} for m, sizes in table.items()
                         for n, v in sizes.items() for s, e in zip(SEEDS, per_seed(m, v), strict=True)])


def ablation_rows(on=ABL["on"], off=ABL["off"]) -> pd.DataFrame:
    return pd.DataFrame([{"model": "symnet", "n_train": 100, "seed": s, "K": 8, "refine": refine,
                          "test_error": e}
                         for refine, key, v in ((True, "on", on), (False, "off", off))
                         for s, e in zip(SEEDS, per_seed(key, v), strict=True)])


def invariance_rows(**change) -> pd.DataFrame:
    """``change``: model -> per-angle errors (one tuple for every seed) or per-seed lists of them."""
    curves = {**INV, **change}
    rows = []
    for m, curve in curves.items():
        for s in SEEDS:
            errs = curve[s] if isinstance(curve, list) else [e + WOBBLE[m][s] for e in curve]
            rows += [{"model": m, "seed": s, "angle": a, "error": e}
                     for a, e in zip(ANGLES, errs, strict=True)]
    return pd.DataFrame(rows)


def verdicts(main=None, abl=None, inv=None, rules=RULES) -> dict[str, dict]:
    got = analysis.claims(main_rows() if main is None else main, ablation_rows() if abl is None else abl,
                          invariance_rows() if inv is None else inv, rules, base_k=8,
                          nosearch="symnet_nosearch")
    return {c["id"]: c for c in got}


IDS = ["small_n_gap", "gap_shrinks", "vs_augmentation", "vs_p4cnn", "invariance", "refinement_helps",
       "search_between_points"]


def test_every_claim_holds_on_the_base_tables_with_an_interval_over_three_paired_seeds():
    got = verdicts()
    assert list(got) == IDS
    for c in got.values():
        assert c["verdict"] == "holds", c
        assert c["n"] == 3 and c["ci_method"] == "t" and c["ci"][0] <= c["estimate"] <= c["ci"][1], c
        assert "95% paired t interval" in c["rule"], c["rule"]
    assert {c["id"] for c in got.values() if c["source"] == "dlx"} == {"invariance", "vs_p4cnn"}
    assert got["small_n_gap"]["estimate"] == pytest.approx(35.0)  # points: 0.35 at n=50 and at n=100
    assert got["gap_shrinks"]["estimate"] == pytest.approx(20.0)  # 35 points at n=50, 15 at n=800


SYM50, SYM100, SYM800 = MAIN["symnet"][50], MAIN["symnet"][100], MAIN["symnet"][800]


def spread_seeds(base: tuple, deltas: list[float]) -> list[list[float]]:
    """One curve per seed: the worst angle moved by each delta."""
    worst = base.index(max(base))
    return [[e + d if i == worst else e for i, e in enumerate(base)] for d in deltas]


def plus(base: float, deltas) -> list[float]:
    return [base + d for d in deltas]


SPREAD = (-0.1, 0.0, 0.1)  # per-seed offsets with a mean of 0 and a wide interval
CASES = {
    # the plain CNN as good as the symnet: the whole interval below the 5-point line
    ("small_n_gap", "fails"): {"main": main_rows(convnet_50=SYM50, convnet_100=SYM100)},
    # per-seed gaps of 0, 10 and 20 points: a mean of 10 with an interval across 5
    ("small_n_gap", "inconclusive"): {"main": main_rows(convnet_50=plus(SYM50, (0.0, 0.1, 0.2)),
                                                        convnet_100=plus(SYM100, (0.0, 0.1, 0.2)))},
    # the gap grows: 35 points at n=50, 50 at n=800
    ("gap_shrinks", "fails"): {"main": main_rows(convnet_800=SYM800 + 0.50)},
    # the gap at n=800 is 15, 35 or 55 points by seed: no change on average
    ("gap_shrinks", "inconclusive"): {"main": main_rows(convnet_800=plus(SYM800, (0.15, 0.35, 0.55)))},
    # the augmented CNN (the P4 CNN) 10 points better than the symnet
    ("vs_augmentation", "fails"): {"main": main_rows(convnet_aug_50=SYM50 - 0.1,
                                                     convnet_aug_100=SYM100 - 0.1)},
    ("vs_augmentation", "inconclusive"): {"main": main_rows(convnet_aug_50=plus(SYM50, SPREAD),
                                                            convnet_aug_100=plus(SYM100, SPREAD))},
    ("vs_p4cnn", "fails"): {"main": main_rows(p4cnn_50=SYM50 - 0.1, p4cnn_100=SYM100 - 0.1)},
    ("vs_p4cnn", "inconclusive"): {"main": main_rows(p4cnn_50=plus(SYM50, SPREAD),
                                                     p4cnn_100=plus(SYM100, SPREAD))},
    # the symnet's spread (0.53) above half the plain CNN's (0.39)
    ("invariance", "fails"): {"inv": invariance_rows(symnet=(0.03, 0.30, 0.56, 0.03))},
    # spreads of 0.19, 0.39 and 0.59 by seed against 0.39: no difference on average
    ("invariance", "inconclusive"): {"inv": invariance_rows(
        symnet=spread_seeds((0.03, 0.10, 0.10, 0.03), [0.09, 0.29, 0.49]))},
    ("refinement_helps", "fails"): {"abl": ablation_rows(on=0.25, off=0.15)},
    ("refinement_helps", "inconclusive"): {"abl": ablation_rows(off=[0.10, 0.15, 0.20])},
    # without the search the symnet errs less between its control points
    ("search_between_points", "fails"): {"inv": invariance_rows(symnet_nosearch=(0.03, 0.05, 0.05, 0.03))},
    ("search_between_points", "inconclusive"): {"inv": invariance_rows(
        symnet_nosearch=[[0.03, 0.10 + d, 0.10 + d, 0.03] for d in (-0.05, 0.0, 0.05)])},
}


@pytest.mark.parametrize("cid,verdict", list(CASES))
def test_each_claim_can_fail_and_be_inconclusive(cid, verdict):
    got = verdicts(**CASES[(cid, verdict)])[cid]
    assert got["verdict"] == verdict, got
    if verdict == "fails":
        assert got["ci"] is not None
    else:
        assert got["ci"][0] < got["ci"][1] and got["why"] == "the interval straddles the rule's line"


def test_every_id_has_a_fail_and_an_inconclusive_case():
    assert {c for c, _ in CASES} == set(IDS)
    assert {v for _, v in CASES} == {"fails", "inconclusive"}


def test_the_rules_move_the_lines():
    """A 40-point gap is asked for: the 35-point gap no longer holds; a lenient spread ratio still does; a
    negative ``beat`` asks only for non-inferiority."""
    got = verdicts(rules={**RULES, "gap": 0.40, "spread_ratio": 1.0, "beat": -0.02})
    assert got["small_n_gap"]["verdict"] == "fails" and got["invariance"]["verdict"] == "holds"
    assert got["vs_augmentation"]["verdict"] == "holds" and "> -2 points" in got["vs_augmentation"]["rule"]


def test_pairs_by_seed_and_says_what_is_missing():
    """Seeds are paired: a seed the symnet lacks drops out of the comparison. Missing networks, sizes or
    studies make a claim 'not shown' with the reason."""
    main = main_rows()
    got = verdicts(main=main[~((main.model == "symnet") & (main.seed == 2))])
    assert got["small_n_gap"]["n"] == 2 and got["vs_p4cnn"]["n"] == 2
    empty = analysis.claims(main.iloc[:0], ablation_rows().iloc[:0], invariance_rows().iloc[:0], RULES,
                            base_k=8, nosearch="symnet_nosearch")
    assert all(c["verdict"] == "not shown" and c["why"] for c in empty)
    one_size = verdicts(main=main[main.n_train == 50])
    assert one_size["small_n_gap"]["verdict"] == one_size["gap_shrinks"]["verdict"] == "not shown"
    no_p4 = verdicts(main=main[main.model != "p4cnn"])
    assert no_p4["vs_p4cnn"]["verdict"] == "not shown" and no_p4["vs_p4cnn"]["source"] == "dlx"
    assert verdicts(inv=invariance_rows()[lambda d: d.model != "symnet_nosearch"])[
        "search_between_points"]["verdict"] == "not shown"

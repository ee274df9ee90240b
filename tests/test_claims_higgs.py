"""higgs on the Nature Communications benchmark (data=higgs_uci): every claim it emits can hold, fail and
come out inconclusive, on made-up per-child results and bootstrap replicates (no training;
dlx/papers/higgs/analysis.py `claims`). The H -> tau tau claims: tests/test_higgs.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from dlx.papers.higgs.analysis import claims

RULES = OmegaConf.create({"deep_gain": 0.02, "match": 0.01, "needs_high": 0.0, "beats_high": 0.0,
                          "z_gain": 0.0})
IDS = ["deep_beats_shallow_low", "deep_low_matches_all", "shallow_needs_high", "deep_low_beats_high",
       "significance_low", "trees_need_high"]

# the paper's Table 1 shape, three seeds per network (values per seed), one run of the trees
PAPER = {("shallow", "low"): [0.733, 0.735, 0.731], ("shallow", "high"): [0.777, 0.778, 0.776],
         ("shallow", "all"): [0.816, 0.818, 0.814], ("deep", "low"): [0.880, 0.881, 0.879],
         ("deep", "high"): [0.800, 0.801, 0.799], ("deep", "all"): [0.885, 0.886, 0.884],
         ("gbt", "low"): [0.73], ("gbt", "high"): [0.78], ("gbt", "all"): [0.81]}
Z = {("deep", "low"): [4.9, 4.8, 5.0], ("shallow", "low"): [2.5, 2.6, 2.4]}


def results(aucs: dict, zs: dict) -> pd.DataFrame:
    rows = [{"model": m, "features": f, "seed": s, "curve": False, "status": "completed", "test_auc": v,
             "z": zs.get((m, f), [1.0] * len(vals))[s]}
            for (m, f), vals in aucs.items() for s, v in enumerate(vals)]
    # a learning-curve child never enters a claim
    rows.append({"model": "deep", "features": "low", "seed": 0, "curve": True, "status": "completed",
                 "test_auc": 0.1, "z": 0.1})
    return pd.DataFrame(rows)


def boot(aucs: dict, sd: float = 0.002, seed: int = 0, n: int = 400) -> dict:
    """Replicates around each cell's mean AUC (what auc_replicates would give)."""
    rng = np.random.default_rng(seed)
    return {c: np.mean(v) + rng.normal(0, sd, n) for c, v in aucs.items()}


def verdicts(aucs=PAPER, zs=Z, replicates=None) -> dict[str, str]:
    got = claims(results(aucs, zs), boot(aucs) if replicates is None else replicates, RULES, "higgs_uci")
    assert [c["id"] for c in got] == IDS
    return {c["id"]: c["verdict"] for c in got}


def shifted(cell, values, base=PAPER):
    return {**base, cell: values}


def test_the_papers_shape_holds_everywhere():
    got = claims(results(PAPER, Z), boot(PAPER), RULES, "higgs_uci")
    assert {c["id"]: c["verdict"] for c in got} == dict.fromkeys(IDS, "holds")
    for c in got:  # every claim is a comparison with its interval on the record
        assert c["ci"] is not None and c["n"] >= 3 and c["ci_method"] in ("t", "percentile"), c
        assert "95%" in c["rule"]
    by = {c["id"]: c for c in got}
    assert by["deep_beats_shallow_low"]["ci_method"] == "t" and by["deep_beats_shallow_low"]["n"] == 3
    assert by["deep_beats_shallow_low"]["estimate"] == pytest.approx(0.147)
    assert by["trees_need_high"]["ci_method"] == "percentile" and by["trees_need_high"]["n"] == 400
    assert by["deep_low_beats_high"]["measured"]["best high model"] == "deep"


DL = ("deep", "low")


@pytest.mark.parametrize("cid, fails, inconclusive", [
    # deep - shallow on low-level: +0.005 (below the 0.02 margin) / around 0.02
    ("deep_beats_shallow_low", shifted(DL, [0.738, 0.740, 0.736]),
     shifted(DL, [0.743, 0.765, 0.754])),
    # deep(all) - deep(low): 0.085 (outside +-0.01) / 0.01 +- 0.01
    ("deep_low_matches_all", shifted(DL, [0.800, 0.801, 0.799]),
     shifted(DL, [0.885, 0.866, 0.876])),
    # shallow's gain from the masses below deep's / about equal to it
    ("shallow_needs_high", shifted(("shallow", "all"), [0.735, 0.737, 0.733]),
     shifted(("shallow", "all"), [0.730, 0.750, 0.740])),
    # the trees on high-level features beat deep(low) / tie with it
    ("deep_low_beats_high", shifted(("gbt", "high"), [0.95]), shifted(("gbt", "high"), [0.88])),
    # the trees gain no more than deep from the masses / about as much
    ("trees_need_high", shifted(("gbt", "all"), [0.72]), shifted(("gbt", "all"), [0.735])),
])
def test_each_auc_claim_can_fail_and_be_inconclusive(cid, fails, inconclusive):
    assert verdicts(fails)[cid] == "fails"
    assert verdicts(inconclusive)[cid] == "inconclusive"


def test_the_significance_claim_can_fail_and_be_inconclusive():
    assert verdicts(zs={**Z, DL: [2.0, 2.1, 1.9]})["significance_low"] == "fails"
    assert verdicts(zs={**Z, DL: [2.3, 2.8, 2.5]})["significance_low"] == "inconclusive"


def test_bootstrap_claims_read_the_replicates_not_the_means():
    # the same means, wider replicates: the trees' 0.015 extra gain is no longer resolved
    aucs = shifted(("gbt", "all"), [0.75])
    assert verdicts(aucs)["trees_need_high"] == "holds"
    assert verdicts(aucs, replicates=boot(aucs, sd=0.01))["trees_need_high"] == "inconclusive"


def test_one_seed_is_inconclusive_and_missing_runs_are_not_shown():
    one = {c: v[:1] for c, v in PAPER.items()}
    got = verdicts(one, {c: v[:1] for c, v in Z.items()})
    for cid in ("deep_beats_shallow_low", "deep_low_matches_all", "shallow_needs_high", "significance_low"):
        assert got[cid] == "inconclusive", cid  # one paired difference: no interval
    assert got["trees_need_high"] == "holds"  # the bootstrap needs no second seed
    low_all = {c: v for c, v in PAPER.items() if c[1] != "high"}
    got = claims(results(low_all, Z), boot(low_all), RULES, "higgs_uci")
    shown = {c["id"]: c for c in got}
    assert shown["deep_low_beats_high"]["verdict"] == "not shown" and shown["deep_low_beats_high"]["why"]
    # no readable predictions: the bootstrap claims say why
    got = claims(results(PAPER, Z), {}, RULES, "higgs_uci")
    shown = {c["id"]: c for c in got}
    trees = shown["trees_need_high"]
    assert trees["verdict"] == "not shown" and "bootstrap" in trees["why"]
    assert shown["deep_beats_shallow_low"]["verdict"] == "holds"
    assert {c["verdict"] for c in claims(results({}, {}), {}, RULES, "higgs_uci")} == {"not shown"}

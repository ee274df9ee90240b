"""Every fp8 claim can hold, fail and come out inconclusive: made-up cell, curve, update and swamping
tables fed to the pure claims function, no training."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from dlx.papers.fp8.experiment import claims

RULES = OmegaConf.load(Path(__file__).parents[1] / "conf" / "fp8.yaml").fp8.rules
FP32 = [0.020, 0.025, 0.030]


def cells(diffs: dict, base=FP32, other="fp8_wang") -> pd.DataFrame:
    """{model: per-seed (other - fp32)} -> results rows of fp32 and ``other``, seeds 0..2."""
    rows = []
    for m, d in diffs.items():
        for s, (b, x) in enumerate(zip(base, d, strict=True)):
            rows += [{"model": m, "precision": "fp32", "seed": s, "status": "completed", "test_error": b},
                     {"model": m, "precision": other, "seed": s, "status": "completed", "test_error": b + x}]
    return pd.DataFrame(rows)


def by_id(**tables) -> dict:
    return {c["id"]: c for c in claims(rules=RULES, **tables)}


def test_every_claim_id_is_emitted_and_missing_parts_are_not_shown():
    out = claims(pd.DataFrame(columns=["model", "precision", "seed", "status", "test_error"]), rules=RULES)
    assert [c["id"] for c in out] == ["fp8_matches_fp32", "chunking_cuts_swamping",
                                      "stochastic_rounding_needed", "chunking_needed_in_training"]
    assert {c["verdict"] for c in out} == {"not shown"} and all(c["why"] for c in out)
    assert set(RULES) == {"match", "chunk", "swamp_factor", "rounding", "chunking"}


# -- fp8_matches_fp32: fp8_wang - fp32 (paired by seed) < match, for every model ---------------------------

@pytest.mark.parametrize("diffs, verdict", [
    ({"cnn": [0.001, 0.0, -0.001], "resnet": [0.0, 0.002, 0.001]}, "holds"),
    ({"cnn": [0.001, 0.0, -0.001], "resnet": [0.03, 0.031, 0.029]}, "fails"),        # one model 3 points off
    ({"cnn": [0.001, 0.0, -0.001], "resnet": [-0.02, 0.01, 0.03]}, "inconclusive"),  # seeds disagree
])
def test_fp8_matches_fp32(diffs, verdict):
    c = by_id(results=cells(diffs))["fp8_matches_fp32"]
    assert c["verdict"] == verdict and c["n"] == 3 and c["ci_method"] == "t"
    assert set(c["measured"]) == {"cnn", "resnet"}
    if verdict != "holds":
        assert c["rule"].endswith("(resnet)")  # the model that decides it
    assert "< 1 points" in c["rule"]


def test_fp8_matches_fp32_ignores_seeds_without_a_partner():
    res = cells({"cnn": [0.001, 0.0, -0.001]})
    res = pd.concat([res, pd.DataFrame([{"model": "cnn", "precision": "fp8_wang", "seed": 7,
                                         "status": "completed", "test_error": 0.5}])])
    assert by_id(results=res)["fp8_matches_fp32"]["verdict"] == "holds"


# -- chunking_cuts_swamping: per-trial log10(CL=64 error / sequential error) < -log10(10) -----------------

def trials(ratios, seq=0.9, n=65536) -> pd.DataFrame:
    rows = []
    for t, r in enumerate(ratios):
        rows += [{"n": n, "chunk": "none", "path": "exact", "trial": t, "rel_error": seq},
                 {"n": n, "chunk": 64, "path": "exact", "trial": t, "rel_error": seq * r},
                 {"n": n, "chunk": 64, "path": "fast", "trial": t, "rel_error": seq},  # not the one held
                 {"n": 256, "chunk": 64, "path": "exact", "trial": t, "rel_error": seq}]  # not the longest
    return pd.DataFrame(rows)


@pytest.mark.parametrize("ratios, verdict", [
    ([0.004, 0.003, 0.005, 0.004], "holds"),
    ([0.5, 0.6, 0.4, 0.5], "fails"),
    ([0.01, 0.5, 0.001, 0.3], "inconclusive"),
])
def test_chunking_cuts_swamping(ratios, verdict):
    c = by_id(results=cells({}), swamp_trials=trials(ratios))["chunking_cuts_swamping"]
    assert c["verdict"] == verdict and c["n"] == len(ratios) and c["measured"]["n"] == 65536


def test_chunking_cuts_swamping_needs_its_chunk():
    t = trials([0.004] * 3)
    c = by_id(results=cells({}), swamp_trials=t[t.chunk.astype(str) != "64"])["chunking_cuts_swamping"]
    assert c["verdict"] == "not shown" and "CL=64" in c["why"]


# -- stochastic_rounding_needed: nearest - SR at fp8.updates.lr (paired by seed) > rounding --------------

def updates(gaps, base=(0.55, 0.56, 0.57)) -> pd.DataFrame:
    cell = {"model": "cnn", "status": "completed"}
    return pd.DataFrame([r for s, (b, g) in enumerate(zip(base, gaps, strict=True)) for r in (
        {**cell, "precision": "fp8_wang", "seed": s, "test_error": b},
        {**cell, "precision": "fp8_wang_nearest", "seed": s, "test_error": b + g},
        {**cell, "precision": "fp32", "seed": s, "test_error": b - 0.02})])


@pytest.mark.parametrize("gaps, verdict", [
    ([0.05, 0.06, 0.07], "holds"),
    ([0.0, 0.001, -0.001], "fails"),
    ([0.0, 0.05, 0.1], "inconclusive"),
])
def test_stochastic_rounding_needed(gaps, verdict):
    res = cells({"cnn": [0.0, 0.002, 0.004]}, other="fp8_wang_nearest")
    c = by_id(results=res, updates=updates(gaps), updates_lr=0.0005)["stochastic_rounding_needed"]
    assert c["verdict"] == verdict and c["n"] == 3
    assert "lr 0.0005: nearest - SR per seed" in c["measured"]


def test_stochastic_rounding_not_shown_without_update_cells():
    c = by_id(results=cells({"cnn": [0.0] * 3}))["stochastic_rounding_needed"]
    assert c["verdict"] == "not shown" and "fp8.updates" in c["why"]


# -- chunking_needed_in_training: nochunk - fp8_wang at the same step (paired by seed) > 0, every model ----

def curves(gaps: dict) -> pd.DataFrame:
    """fp8_wang evaluated at steps 100..1000, fp8_wang_nochunk bounded at step 300 (gap over fp8_wang)."""
    rows = []
    for m, g in gaps.items():
        for s, d in enumerate(g):
            rows += [{"model": m, "precision": "fp8_wang", "seed": s, "step": st,
                      "test_error": 0.3 - st / 5000} for st in range(100, 1001, 100)]
            rows += [{"model": m, "precision": "fp8_wang_nochunk", "seed": s, "step": st,
                      "test_error": 0.3 - st / 5000 + d} for st in (100, 200, 300)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("gaps, verdict", [
    ({"cnn": [0.05, 0.06, 0.07], "resnet": [0.04, 0.05, 0.05]}, "holds"),
    ({"cnn": [0.05, 0.06, 0.07], "resnet": [-0.05, -0.06, -0.07]}, "fails"),
    ({"cnn": [0.05, 0.06, 0.07], "resnet": [-0.05, 0.0, 0.08]}, "inconclusive"),
])
def test_chunking_needed_in_training(gaps, verdict):
    c = by_id(results=cells({}), curves=curves(gaps))["chunking_needed_in_training"]
    assert c["verdict"] == verdict and c["n"] == 3 and "step 300" in c["rule"]
    assert c["estimate"] == pytest.approx(100 * sum(gaps["resnet"]) / 3)  # resnet decides in all three


def test_chunking_needed_not_shown_without_nochunk_cells():
    c = by_id(results=cells({}), curves=curves({"cnn": [0.05] * 3}).query("precision == 'fp8_wang'"))
    assert c["chunking_needed_in_training"]["verdict"] == "not shown"

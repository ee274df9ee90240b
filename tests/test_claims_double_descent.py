"""Every double-descent claim can hold, fail and (for comparisons) come out inconclusive: made-up sweep
tables fed to the pure claims function, no training."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from dlx.config import compose
from dlx.papers.double_descent.analysis import claims

W = [2, 4, 8, 16, 32, 64, 128]
TRAIN = [0.8, 0.6, 0.3, 0.08, 0.02, 0.0, 0.0]  # threshold (<= 10%) at width 16
RULES = dict(OmegaConf.load(Path(__file__).parents[1] / "conf" / "double_descent.yaml").double_descent.rules)
PEAK = [0.60, 0.50, 0.45, 0.56, 0.50, 0.46, 0.42]  # rise 0.11 at width 16; widest 3 points below best before
FLAT = [0.60, 0.55, 0.50, 0.47, 0.46, 0.45, 0.44]  # monotone: no interior rise


def shift(curve, i, by):
    return [v + by if j == i else v for j, v in enumerate(curve)]


def results(per_noise: dict, train=None) -> pd.DataFrame:
    """{noise: [per-seed test-error curve over W]} -> a sweep results table (seed s = the s-th curve);
    ``train`` per noise (default: TRAIN for every seed) as {noise: [per-seed train curves]}."""
    rows = []
    for noise, seeds in per_noise.items():
        for s, test in enumerate(seeds):
            tr = (train or {}).get(noise, [TRAIN] * len(seeds))[s]
            rows += [{"width": w, "label_noise": noise, "n_train": 4000, "seed": s, "test_error": e,
                      "train_error": t, "status": "completed"} for w, e, t in zip(W, test, tr, strict=True)]
    return pd.DataFrame(rows)


def curves(per_seed: list, width: int = 16, noise: float = 0.15) -> pd.DataFrame:
    """Per-seed test error over epochs 1, 2, 4, ... at one width (the main setting)."""
    return pd.DataFrame([{"width": width, "label_noise": noise, "n_train": 4000, "seed": s, "epoch": 2 ** k,
                          "test_error": e, "train_error": 0.0}
                         for s, c in enumerate(per_seed) for k, e in enumerate(c)])


def verdicts(res, cur=None, **rules) -> dict:
    return {c["id"]: c for c in claims(res, cur, {**RULES, **rules})}


def test_every_claim_id_is_emitted_once_with_rules_from_config():
    out = claims(results({0.15: [PEAK] * 3}), None, RULES)
    assert [c["id"] for c in out] == ["model_wise", "peak_at_threshold", "second_descent", "noise_grows_peak",
                                      "epoch_wise"]
    assert set(RULES) == {"epsilon", "min_rise", "peak_factor", "second_descent", "noise_rise",
                          "epoch_min_rise"}
    assert compose("double_descent").sweep.seeds >= 3


# -- model_wise: per-seed rise at the mean curve's peak width > min_rise ----------------------------------

@pytest.mark.parametrize("seeds, verdict", [
    ([PEAK, shift(PEAK, 3, 0.01), shift(PEAK, 3, -0.01)], "holds"),       # rises 0.10-0.12
    ([FLAT, shift(FLAT, 1, 0.002), shift(FLAT, 2, 0.003)], "fails"),      # no seed rises
    ([shift(PEAK, 3, -0.1), shift(PEAK, 3, -0.05), PEAK], "inconclusive"),  # rises 0.01, 0.06, 0.11
])
def test_model_wise(seeds, verdict):
    c = verdicts(results({0.15: seeds}))["model_wise"]
    assert c["verdict"] == verdict and c["n"] == 3 and c["ci_method"] == "t"
    assert "> 2 points" in c["rule"]


def test_model_wise_margin_is_the_config_rule():
    seeds = [PEAK, shift(PEAK, 3, 0.01), shift(PEAK, 3, -0.01)]
    assert verdicts(results({0.15: seeds}), min_rise=0.2)["model_wise"]["verdict"] == "fails"


# -- peak_at_threshold: log2(peak width / each seed's threshold) within ±log2(peak_factor) -------------

def train_reaching(width):
    """A train curve that reaches 0 (<= epsilon) first at ``width``."""
    return [0.5 if w < width else 0.0 for w in W]


@pytest.mark.parametrize("thresholds, verdict", [
    ([16, 16, 16], "holds"),          # every seed interpolates at the peak width
    ([128, 128, 128], "fails"),       # a factor of 8 from the peak for every seed
    ([16, 64, 128], "inconclusive"),  # 0, -2, -3: the interval straddles -1
])
def test_peak_at_threshold(thresholds, verdict):
    res = results({0.15: [PEAK] * 3}, train={0.15: [train_reaching(w) for w in thresholds]})
    c = verdicts(res)["peak_at_threshold"]
    assert c["verdict"] == verdict and c["n"] == 3
    assert c["measured"]["peak width"] == 16


def test_peak_at_threshold_not_shown_without_a_peak_or_a_threshold():
    flat = verdicts(results({0.15: [FLAT] * 3}))["peak_at_threshold"]
    assert flat["verdict"] == "not shown" and "model_wise fails" in flat["why"]
    never = results({0.15: [PEAK] * 3}, train={0.15: [[0.5] * len(W)] * 3})
    c = verdicts(never)["peak_at_threshold"]
    assert c["verdict"] == "not shown" and "reaches" in c["why"]


# -- second_descent: per-seed widest - best before the peak < 0, paired --------------------------------

@pytest.mark.parametrize("widest, verdict", [
    ([0.40, 0.41, 0.42], "holds"),         # 3-5 points below the best before (0.45)
    ([0.50, 0.51, 0.52], "fails"),         # 5-7 points above
    ([0.40, 0.47, 0.50], "inconclusive"),  # -5, +2, +5
])
def test_second_descent(widest, verdict):
    seeds = [[*PEAK[:-1], w] for w in widest]
    c = verdicts(results({0.15: seeds}))["second_descent"]
    assert c["verdict"] == verdict and c["n"] == 3


# -- noise_grows_peak: per-seed rise at the highest noise - at the lowest > 0, paired --------------------

@pytest.mark.parametrize("low, verdict", [
    ([FLAT] * 3, "holds"),                                                  # no peak without noise
    ([shift(PEAK, 3, 0.1)] * 3, "fails"),                                   # a larger peak without noise
    ([shift(PEAK, 3, 0.1), FLAT, shift(PEAK, 3, -0.05)], "inconclusive"),   # mixed
])
def test_noise_grows_peak(low, verdict):
    c = verdicts(results({0.0: low, 0.15: [PEAK, shift(PEAK, 3, 0.01), shift(PEAK, 3, -0.01)]}))
    assert c["noise_grows_peak"]["verdict"] == verdict and c["noise_grows_peak"]["n"] == 3
    assert set(c["noise_grows_peak"]["measured"]) == {"noise 0", "noise 0.15"}


def test_noise_grows_peak_not_shown_with_one_noise_level():
    c = verdicts(results({0.15: [PEAK] * 3}))["noise_grows_peak"]
    assert c["verdict"] == "not shown" and "sweep.label_noise" in c["why"]


# -- epoch_wise: per-seed rise at the mean epoch curve's peak epoch > epoch_min_rise ---------------------

BUMP = [0.60, 0.48, 0.58, 0.50, 0.49]  # falls, rises 10 points, falls again


@pytest.mark.parametrize("seeds, verdict", [
    ([BUMP, shift(BUMP, 2, 0.01), shift(BUMP, 2, -0.01)], "holds"),
    ([[0.60, 0.50, 0.52, 0.55, 0.56]] * 3, "fails"),                          # rises and stays up
    ([shift(BUMP, 2, -0.09), shift(BUMP, 2, -0.04), BUMP], "inconclusive"),   # rises 0.01, 0.06, 0.10
])
def test_epoch_wise(seeds, verdict):
    c = verdicts(results({0.15: [PEAK] * 3}), curves(seeds))["epoch_wise"]
    assert c["verdict"] == verdict and c["n"] == 3 and c["measured"]["width"] == 16


def test_epoch_wise_not_shown_without_curves():
    assert verdicts(results({0.15: [PEAK] * 3}))["epoch_wise"]["verdict"] == "not shown"
    short = curves([BUMP[:2]] * 3)
    assert verdicts(results({0.15: [PEAK] * 3}), short)["epoch_wise"]["verdict"] == "not shown"


def test_a_failed_child_drops_its_seed_and_too_few_widths_show_nothing():
    res = results({0.15: [PEAK, shift(PEAK, 3, 0.01), shift(PEAK, 3, -0.01)]})
    res.loc[(res.seed == 2) & (res.width == 64), "status"] = "failed"
    c = verdicts(res)
    assert c["model_wise"]["n"] == 2 and c["model_wise"]["verdict"] in ("holds", "inconclusive")
    few = results({0.15: [PEAK] * 3}).query("width <= 4")
    out = verdicts(few)
    assert {out[k]["verdict"] for k in ("model_wise", "peak_at_threshold", "second_descent")} == {"not shown"}


def test_no_completed_child_shows_nothing():
    res = results({0.15: [PEAK] * 3}).assign(status="failed")
    out = claims(res, None, RULES)
    assert len(out) == 5 and {c["verdict"] for c in out} == {"not shown"}

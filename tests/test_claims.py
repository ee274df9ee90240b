"""The one rule that decides comparisons (an interval against a line), the claim record, negative controls
merged beside the claims, and how the report counts them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlx.claims import category, claim, compare, count, headline, rule_text, summary_line


@pytest.mark.parametrize("a, b, kw, verdict", [
    ([0.50, 0.52, 0.51, 0.49], [0.40, 0.41, 0.39, 0.40], {"margin": 0.05}, "holds"),
    ([0.42, 0.43, 0.41, 0.42], [0.40, 0.41, 0.39, 0.40], {"margin": 0.05}, "fails"),
    ([0.50, 0.30, 0.60, 0.35], [0.40, 0.41, 0.39, 0.40], {"margin": 0.0}, "inconclusive"),
    ([1.01, 1.02, 1.00, 1.01], None, {"direction": "less", "margin": 1.03}, "holds"),
    ([1.05, 1.06, 1.04, 1.05], None, {"direction": "less", "margin": 1.03}, "fails"),
    ([0.90, 1.20, 1.00, 1.04], None, {"direction": "less", "margin": 1.03}, "inconclusive"),
    ([0.101, 0.099, 0.1], [0.1, 0.1, 0.1], {"direction": "within", "margin": 0.01, "paired": True}, "holds"),
    ([0.2, 0.21, 0.19], [0.1, 0.1, 0.1], {"direction": "within", "margin": 0.01, "paired": True}, "fails"),
    ([0.0, 0.2, -0.2], [0.0, 0.0, 0.0], {"direction": "within", "margin": 0.05, "paired": True},
     "inconclusive"),
])
def test_compare_holds_fails_or_is_inconclusive(a, b, kw, verdict):
    r = compare(a, b, **kw)
    assert r["verdict"] == verdict, r
    lo, hi = r["ci"]
    assert lo <= r["estimate"] <= hi and r["n"] == len(a) + (0 if b is None or kw.get("paired") else len(b))


def test_t_interval_matches_scipy_and_welch():
    from scipy import stats

    a, b = np.array([3.1, 2.9, 3.4, 3.0, 3.3]), np.array([2.0, 2.6, 2.2, 2.5])
    one = compare(a, method="t")
    want = stats.ttest_1samp(a, 0).confidence_interval(0.95)
    assert np.allclose(one["ci"], [want.low, want.high])
    two = compare(a, b, method="t")
    want = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert np.allclose(two["ci"], [want.low, want.high])
    assert two["estimate"] == pytest.approx(a.mean() - b.mean())
    paired = compare(a[:4], b, paired=True)
    want = stats.ttest_1samp(a[:4] - b, 0).confidence_interval(0.95)
    assert np.allclose(paired["ci"], [want.low, want.high])


def test_a_side_of_one_value_is_a_constant_and_one_value_has_no_interval():
    r = compare([0.5, 0.6, 0.55], [0.1])  # a deterministic baseline run once
    assert r["estimate"] == pytest.approx(0.45) and r["ci"][0] < 0.45 < r["ci"][1]
    none = compare([0.5], [0.1])
    assert none["ci"] is None and none["verdict"] == "inconclusive"
    assert compare([0.3, 0.3, 0.3], margin=0.1)["verdict"] == "holds"  # no spread: the point is the interval


def test_bootstrap_and_percentile_intervals_are_seeded_and_cover_the_estimate():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 40)
    r1, r2 = compare(a, b, method="bootstrap", seed=3), compare(a, b, method="bootstrap", seed=3)
    assert r1["ci"] == r2["ci"] and r1["ci"][0] < r1["estimate"] < r1["ci"][1] and r1["verdict"] == "holds"
    reps = rng.normal(0.02, 0.01, 1000)  # bootstrap replicates of a statistic
    p = compare(reps, method="percentile")
    assert p["ci"] == pytest.approx(list(np.quantile(reps, [0.025, 0.975])))


def test_nan_values_drop_out_and_pairs_drop_together():
    r = compare([1.0, float("nan"), 1.2, 1.1], [0.0, 5.0, 0.1, 0.0], paired=True)
    assert r["n"] == 3 and r["estimate"] == pytest.approx(np.mean([1.0, 1.1, 1.1]))
    assert compare([], [1.0])["verdict"] == "inconclusive"
    with pytest.raises(ValueError):
        compare([1, 2], [1], paired=True)
    with pytest.raises(ValueError):
        compare([1, 2], direction="bigger")


def test_claim_record_carries_the_interval_and_the_rule_in_words():
    t = compare([0.50, 0.52, 0.51], [0.40, 0.41, 0.39], margin=0.05)
    c = claim("x", "A beats B", {"A %": 51.0}, rule_text(t, "A - B", scale=100, unit=" points"), "paper says",
              test=t, scale=100)
    assert c["verdict"] == "holds" and c["n"] == 6 and c["ci_method"] == "t" and c["source"] == "paper"
    assert c["ci"][0] > 5 and c["estimate"] == pytest.approx(11.0)
    assert c["rule"] == "A - B > 5 points on its 95% t interval"
    inc = claim("y", "t", None, "r", test=compare([0.5, 0.3, 0.6], [0.45, 0.42, 0.44]))
    assert inc["verdict"] == "inconclusive" and "straddles" in inc["why"]
    with pytest.raises(ValueError):
        claim("z", "t", None, "r")  # not shown needs a reason
    with pytest.raises(ValueError):
        claim("z", "t", None, "r", holds=True, source="mine")


def test_built_in_claims_are_counted_apart():
    held = claim("a", "t", 1, "r", holds=True)
    claims = [dict(held, control="holds"), dict(held, control="fails"), held,
              claim("b", "t", 1, "r", holds=False), claim("c", "t", None, "r", why="needs paper scale"),
              claim("d", "t", None, "r", test=compare([0.5], [0.1]))]
    assert [category(c) for c in claims] == ["built in", "holds", "holds", "fails", "not shown",
                                             "inconclusive"]
    n = count(claims)
    assert n == {"holds": 2, "fails": 1, "inconclusive": 1, "not shown": 1, "built in": 1}
    assert summary_line(n) == "6 claims: 2 hold, 1 fail, 1 inconclusive, 1 not shown, 1 built in"
    line = headline("p", {"claims": claims})
    assert line.startswith("p: 2 of 6 claims hold (1 inconclusive, 1 not shown, 1 built in)")
    assert "a: 1 (built in)" in line and "a: 1 (holds; control fails)" in line


def test_merge_writes_the_controls_verdicts_beside_the_claims(tmp_path):
    from dlx.claims.controls import merge
    from dlx.registry import Experiment
    from dlx.runs import write_json

    t = compare([0.5, 0.52, 0.51], [0.4, 0.41, 0.39], margin=0.05)
    main = [claim("a", "A beats B", None, "r", test=t), claim("b", "t", 1, "r", holds=True),
            claim("c", "t", 1, "r", holds=True)]
    null = compare([0.4, 0.41, 0.4], [0.4, 0.41, 0.39], margin=0.05)
    ctrl = [claim("a", "A beats B", None, "r", test=null),
            claim("b", "t", 1, "r", holds=True)]
    write_json(tmp_path / "summary.json", {"kind": "x", "status": "completed", "claims": main})
    write_json(tmp_path / "control" / "summary.json", {"kind": "x", "status": "completed", "claims": ctrl})
    exp = Experiment(name="x", impl="x", title="t", control=("data.control=true",), control_note="no premise")
    merge(tmp_path, exp)
    merged = merge(tmp_path, exp)  # idempotent
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s == merged and [c["control"] for c in s["claims"]] == ["fails", "holds", "not shown"]
    assert s["claims"][0]["control_ci"] and s["control"]["overrides"] == ["data.control=true"]
    assert [category(c) for c in s["claims"]] == ["holds", "built in", "holds"]


def test_reproduce_controls_runs_the_control_beside_the_default(tmp_path, monkeypatch):
    """`reproduce all --controls` on two stand-in papers: the one with a control gets <paper>/control and
    its verdicts; a re-run skips both; the report counts the built-in claim apart."""
    from dlx.claims.report import build_report
    from dlx.claims.suite import run_all
    from dlx.registry import Experiment

    calls = []

    class Fake(Experiment):
        def run(self, cfg, run):
            control = "data.control=true" in (cfg.get("ov") or [])
            calls.append((self.name, control))
            t = compare([0.5, 0.52, 0.51], [0.4, 0.41, 0.39] if not control else [0.5, 0.5, 0.5], margin=0.05)
            run.summary("completed", {}, claims=[claim("a", "A beats B", None, "r", test=t),
                                                 claim("b", "always", 1, "r", holds=True)])

    monkeypatch.setattr("dlx.config.compose", lambda name, ov=(): {"name": name, "ov": list(ov)})
    papers = [Fake(name="deepmatch", impl="x", title="t", control=("data.control=true",), control_note="n"),
              Fake(name="fp8", impl="x", title="t")]
    run_all(tmp_path, papers, lambda s: None, controls=True)
    assert calls == [("deepmatch", False), ("deepmatch", True), ("fp8", False)]
    s = json.loads((tmp_path / "deepmatch" / "summary.json").read_text())
    assert [(c["verdict"], c["control"]) for c in s["claims"]] == [("holds", "fails"), ("holds", "holds")]
    run_all(tmp_path, papers, lambda s: None, controls=True)
    assert len(calls) == 3
    md, _, runs = build_report([tmp_path], tmp_path)
    assert len(runs) == 2  # the control directory is not a paper run of its own
    text = md.read_text()
    assert "2 papers, 4 claims: 3 hold, 0 fail, 0 inconclusive, 0 not shown, 1 built in." in text
    assert "| deepmatch | always | 1 | " in text and "| holds | built in |" in text

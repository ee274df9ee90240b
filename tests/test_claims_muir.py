"""MUiR's claims can hold, fail and come out inconclusive: made-up per-child results tables (no training), fed
to the pure claims function with the default rules; and the negative control's generator keeps the default's
draws but the premise (tasks of a group share a weight direction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlx.papers.muir.analysis import claims

RULES = {"stl_margin": 0.0, "oracle_ratio": 1.25, "min_ari": 0.8, "min_cross_share": 0.05,
         "worse_tolerance": 0.1}
IDS = ("noisy_beats_stl", "clean_beats_stl", "noisy_near_oracle", "groups_recovered",
       "shared_across_modalities", "no_task_much_worse", "every_task_improves")
SEEDS = (0, 1, 2)
# a neutral run: every claim holds
BASE = {"stl": (1.8, 1.7, 1.9), "muir": (0.40, 0.41, 0.39), "oracle": (0.39, 0.40, 0.40),
        "ari": (1.0, 0.98, 1.0), "cross": (0.20, 0.22, 0.18),
        "change": {"vision": (-0.05, -0.04, -0.06), "language": (-0.03, -0.02, -0.04),
                   "genomics": (-0.06, -0.05, -0.05)}}


def results(**over) -> pd.DataFrame:
    """A tidy results table of the default's shape (synthetic clean/noisy x stl/muir/oracle/random,
    cross-modal alone per task and shared), per seed, from the per-seed values in BASE (or ``over``)."""
    v = {**BASE, **over}
    v["change"] = {**BASE["change"], **over.get("change", {})}
    rows = []
    for noise in ("clean", "noisy"):
        for method in ("stl", "muir", "oracle", "random"):
            for i, seed in enumerate(SEEDS):
                rmse = v[method][i] if method != "random" else 4.0
                ari = {"muir": v["ari"][i], "random": 0.01}.get(method, np.nan)
                rows.append({"part": "synthetic", "noise": noise, "method": method, "task": None,
                             "seed": seed, "test_rmse": rmse, "ari": ari})
    alone = {"vision": 0.04, "language": 7.4, "genomics": 0.23}
    col = {"vision": "vision_error", "language": "language_perplexity", "genomics": "genomics_mse"}
    for i, seed in enumerate(SEEDS):
        for task, a in alone.items():
            rows.append({"part": "crossmodal", "method": "alone", "task": task, "seed": seed, col[task]: a})
        rows.append({"part": "crossmodal", "method": "shared", "task": None, "seed": seed,
                     "shared_modalities_fraction": v["cross"][i], "shared_modalities_chance": 0.1,
                     **{col[t]: a * (1 + v["change"][t][i]) for t, a in alone.items()}})
    return pd.DataFrame(rows)


def verdicts(df, control=False) -> dict:
    return {c["id"]: c["verdict"] for c in claims(df, RULES, control=control)}


def test_every_claim_holds_on_a_clear_run():
    out = claims(results(), RULES)
    assert [c["id"] for c in out] == list(IDS)
    assert all(c["verdict"] == "holds" for c in out), [(c["id"], c["verdict"], c["ci"]) for c in out]
    assert all(c["ci"] is not None and c["n"] >= 3 for c in out)


# (claim id, overrides that make it fail, overrides that make it inconclusive)
CASES = [
    ("noisy_beats_stl", {"muir": (2.4, 2.5, 2.3)}, {"muir": (0.4, 2.5, 1.9)}),
    ("clean_beats_stl", {"muir": (2.4, 2.5, 2.3)}, {"muir": (0.4, 2.5, 1.9)}),
    ("noisy_near_oracle", {"muir": (0.80, 0.82, 0.78)}, {"muir": (0.40, 1.2, 0.30)}),
    ("groups_recovered", {"ari": (0.1, 0.0, 0.05)}, {"ari": (1.0, 0.3, 0.95)}),
    ("shared_across_modalities", {"cross": (0.0, 0.01, 0.0)}, {"cross": (0.0, 0.3, 0.05)}),
    ("no_task_much_worse", {"change": {"vision": (0.30, 0.35, 0.32)}},
     {"change": {"vision": (0.5, -0.3, 0.1)}}),
    ("every_task_improves", {"change": {"language": (0.05, 0.06, 0.04)}},
     {"change": {"language": (0.2, -0.2, 0.05)}}),
]


@pytest.mark.parametrize("cid, fail, unsure", CASES, ids=[c[0] for c in CASES])
def test_each_claim_can_fail_and_be_inconclusive(cid, fail, unsure):
    assert verdicts(results(**fail))[cid] == "fails"
    assert verdicts(results(**unsure))[cid] == "inconclusive"


def test_clean_and_noisy_are_decided_apart():
    df = results()
    df.loc[(df.noise == "clean") & (df.method == "muir"), "test_rmse"] = 3.0
    v = verdicts(df)
    assert v["clean_beats_stl"] == "fails" and v["noisy_beats_stl"] == "holds"


def test_pairs_by_seed_and_a_task_claim_names_its_deciding_task():
    out = {c["id"]: c for c in claims(results(change={"genomics": (0.4, 0.5, 0.45)}), RULES)}
    c = out["no_task_much_worse"]
    assert c["verdict"] == "fails" and "decided by genomics" in c["why"]
    assert c["estimate"] == pytest.approx(45)
    assert set(c["measured"]) == {"vision %", "language %", "genomics %"}
    # a seed only one side has is left out of a paired comparison
    df = results()
    df = df[~((df.method == "stl") & (df.seed == 2))]
    assert {c["id"]: c["n"] for c in claims(df, RULES)}["noisy_beats_stl"] == 2


def test_missing_parts_are_not_shown_with_a_reason_and_the_control_says_why():
    syn = results()
    syn = syn[syn.part == "synthetic"]
    out = {c["id"]: c for c in claims(syn, RULES)}
    cm = ("shared_across_modalities", "no_task_much_worse", "every_task_improves")
    assert all(out[k]["verdict"] == "not shown" and "cross-modal part" in out[k]["why"] for k in cm)
    ctrl = {c["id"]: c for c in claims(syn, RULES, control=True)}
    assert [c for c in ctrl] == list(IDS)
    assert all(ctrl[k]["verdict"] == "not shown" and "negative control" in ctrl[k]["why"] for k in cm)
    empty = claims(results().iloc[0:0], RULES)
    assert all(c["verdict"] == "not shown" and c["why"] for c in empty)


def test_thresholds_come_from_the_rules():
    strict = {**RULES, "min_ari": 0.999}
    assert {c["id"]: c["verdict"] for c in claims(results(), strict)}["groups_recovered"] == "inconclusive"
    assert "0.999" in {c["id"]: c["rule"] for c in claims(results(), strict)}["groups_recovered"]


# --- the negative control's generator ----------------------------------------------------------------------

def test_control_keeps_the_draws_and_removes_the_shared_direction():
    from dlx.data.multitask import kang_tasks

    for seed in (0, 3):
        d, c = kang_tasks(seed=seed, noise=0.3), kang_tasks(seed=seed, noise=0.3, shared=False)
        # kept: the same scales, inputs, group labels and noise draws (the same numbers for the same seed)
        assert np.array_equal(d["scales"], c["scales"]) and np.array_equal(d["group"], c["group"])
        assert all(np.array_equal(a, b) for a, b in zip(d["x"], c["x"], strict=True))
        noise_d = d["y"][2] - np.einsum("tnd,td->tn", d["x"][2], d["w"])
        noise_c = c["y"][2] - np.einsum("tnd,td->tn", c["x"][2], c["w"])
        assert np.allclose(noise_d, noise_c)
        norms = np.linalg.norm(c["directions"], axis=1)
        assert np.allclose(np.linalg.norm(c["w"], axis=1) / c["scales"], norms)
        # removed: within a group every pair of default weights is parallel; the control's are not
        u = {k: x["w"] / np.linalg.norm(x["w"], axis=1, keepdims=True) for k, x in (("d", d), ("c", c))}
        same = d["group"][:, None] == d["group"][None, :]
        off = same & ~np.eye(30, dtype=bool)
        assert np.allclose(np.abs(u["d"] @ u["d"].T)[off], 1)
        assert np.abs(u["c"] @ u["c"].T)[off].mean() < 0.35  # independent 20-d directions: ~0.18
        assert np.linalg.matrix_rank(c["w"][:10]) == 10 and np.linalg.matrix_rank(d["w"][:10]) == 1
    # the weights' marginal distribution is kept: w = s d with d ~ N(0, I) either way (pooled over seeds)
    wd = np.concatenate([kang_tasks(seed=s)["w"].ravel() for s in range(40)])
    wc = np.concatenate([kang_tasks(seed=s, shared=False)["w"].ravel() for s in range(40)])
    assert abs(wd.std() - wc.std()) < 0.1 and abs(wd.mean() - wc.mean()) < 0.1


def test_control_is_switched_on_by_the_registered_overrides():
    from dlx.config import compose
    from dlx.data import build_data
    from dlx.registry import get

    exp = get("muir")
    assert exp.control and exp.control_note
    cfg = compose("muir", list(exp.control))
    assert cfg.synthetic.data.shared is False and list(cfg.parts) == ["synthetic"]
    assert compose("muir", []).synthetic.data.shared is True
    meta = build_data(cfg.synthetic.data).meta
    assert meta.extra["shared"] is False and meta.extra["groups"][:11] == [0] * 10 + [1]

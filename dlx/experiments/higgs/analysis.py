"""The paper's numbers, the model x feature-set table, and the claims held against it.

Anchors: Baldi, Sadowski & Whiteson, Nature Communications 5:4308 (2014), Table 1 (HIGGS benchmark, test
AUC and discovery significance for 100 signal vs 1000 +- 50 background events)."""

from __future__ import annotations

import math

MODELS = ("shallow", "deep", "gbt")
FEATURES = ("low", "high", "all")
LABELS = {"shallow": "shallow NN", "deep": "deep NN", "gbt": "boosted trees"}
FEATURE_LABELS = {"low": "low-level (21)", "high": "high-level (7)", "all": "all (28)"}

# Nature Comms 2014, Table 1: the paper's BDT (TMVA) stands where our gradient-boosted trees do
PAPER_AUC = {("shallow", "low"): 0.733, ("shallow", "high"): 0.777, ("shallow", "all"): 0.816,
             ("gbt", "low"): 0.73, ("gbt", "high"): 0.78, ("gbt", "all"): 0.81,
             ("deep", "low"): 0.880, ("deep", "high"): 0.800, ("deep", "all"): 0.885}
PAPER_Z = {("shallow", "low"): 2.5, ("shallow", "high"): 3.1, ("shallow", "all"): 3.7,
           ("deep", "low"): 4.9, ("deep", "high"): 3.6, ("deep", "all"): 5.0}


def summarize(results):
    """Seed mean and std of test AUC and Z per (model, features) over the full-size children."""
    import pandas as pd

    full = results[results["curve"] == False]  # noqa: E712
    done = full[full.status.isin(("completed", "diverged"))]
    rows = []
    for m in MODELS:
        for f in FEATURES:
            g = done[(done.model == m) & (done.features == f)]
            if not len(full[(full.model == m) & (full.features == f)]):
                continue
            auc, z = g.test_auc.dropna(), g.z.dropna()
            rows.append({"model": m, "features": f, "auc": mean(auc), "auc_std": std(auc), "z": mean(z),
                         "z_std": std(z), "runs": int(len(auc)), "n_train": first(g.n_train),
                         "paper_auc": PAPER_AUC.get((m, f)), "paper_z": PAPER_Z.get((m, f))})
    return pd.DataFrame(rows)


def learning(results):
    """Test AUC against training events per (model, features): the subset children plus the full-size
    runs, seed mean and std."""
    done = results[results.status.isin(("completed", "diverged"))].dropna(subset=["test_auc"])
    g = done.groupby(["model", "features", "n_train"]).test_auc
    out = g.agg(["mean", "std", "count"]).reset_index().rename(
        columns={"mean": "auc", "std": "auc_std", "count": "runs"})
    curve_cells = set(map(tuple, results[results["curve"] == True][["model", "features"]].values))  # noqa: E712
    keep = [(m, f) in curve_cells for m, f in zip(out.model, out.features, strict=True)]
    return out[keep].sort_values(["model", "features", "n_train"]).reset_index(drop=True)


def mean(s):
    return float(s.mean()) if len(s) else None


def std(s):
    return float(s.std(ddof=1)) if len(s) > 1 else None


def first(s):
    s = s.dropna()
    return int(s.iloc[0]) if len(s) else None


def cell(table, model: str, features: str, col: str = "auc"):
    row = table[(table.model == model) & (table.features == features)]
    if not len(row):
        return None
    v = row[col].iloc[0]
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def r3(v):
    return None if v is None else round(v, 3)


def claims(table, rules) -> list[dict]:
    """The paper's shape, held to rules: deep-low beats shallow-low by ``rules.deep_gain`` AUC; deep-low
    within ``rules.match`` of deep-all; the shallow net gains more from the high-level features than the
    deep one; deep-low beats every model on high-level features; deep-low's significance beats
    shallow-low's; the boosted trees, like the shallow net, need the high-level features."""
    from dlx.experiments.claims import claim

    gain, match = float(rules.deep_gain), float(rules.match)
    a = {(m, f): cell(table, m, f) for m in MODELS for f in FEATURES}
    z = {(m, f): cell(table, m, f, "z") for m in MODELS for f in FEATURES}
    missing = "the sweep did not run (or finish) the runs it compares"
    out = []

    dl, sl, da = a["deep", "low"], a["shallow", "low"], a["deep", "all"]
    ok = None not in (dl, sl)
    out.append(claim("deep_beats_shallow_low",
                     "on low-level features alone, the deep network beats the shallow one",
                     {"deep": r3(dl), "shallow": r3(sl), "gain": r3(dl - sl) if ok else None},
                     f"AUC(deep, low) >= AUC(shallow, low) + {gain:g}", "0.880 vs 0.733 (+0.147)",
                     holds=(dl - sl >= gain) if ok else None, why="" if ok else missing))
    ok = None not in (dl, da)
    out.append(claim("deep_low_matches_all",
                     "the deep network on low-level features nearly matches it on all features",
                     {"low": r3(dl), "all": r3(da), "gap": r3(da - dl) if ok else None},
                     f"AUC(deep, all) - AUC(deep, low) <= {match:g}", "0.885 vs 0.880 (gap 0.005)",
                     holds=(da - dl <= match) if ok else None, why="" if ok else missing))
    sa = a["shallow", "all"]
    ok = None not in (dl, sl, da, sa)
    out.append(claim("shallow_needs_high",
                     "the high-level features help the shallow network more than the deep one",
                     {"shallow gain": r3(sa - sl) if ok else None, "deep gain": r3(da - dl) if ok else None},
                     "AUC(shallow, all) - AUC(shallow, low) > AUC(deep, all) - AUC(deep, low)",
                     "shallow +0.083, deep +0.005",
                     holds=(sa - sl > da - dl) if ok else None, why="" if ok else missing))
    highs = {m: a[m, "high"] for m in MODELS if a[m, "high"] is not None}
    ok = dl is not None and bool(highs)
    best_high = max(highs, key=highs.get) if highs else None
    out.append(claim("deep_low_beats_high",
                     "the deep network on low-level features beats every model on the high-level ones",
                     {"deep low": r3(dl), "best high": r3(highs.get(best_high)),
                      "best high model": best_high},
                     "AUC(deep, low) > max over models of AUC(model, high)", "0.880 vs at most 0.800",
                     holds=(dl > highs[best_high]) if ok else None, why="" if ok else missing))
    zd, zs = z["deep", "low"], z["shallow", "low"]
    ok = None not in (zd, zs)
    out.append(claim("significance_low",
                     "on low-level features, the deep network's selection is more significant",
                     {"deep Z": r3(zd), "shallow Z": r3(zs)}, "Z(deep, low) > Z(shallow, low)",
                     "4.9 sigma vs 2.5 sigma", holds=(zd > zs) if ok else None, why="" if ok else missing))
    gl, ga = a["gbt", "low"], a["gbt", "all"]
    ok = None not in (gl, ga, dl, da)
    out.append(claim("trees_need_high",
                     "boosted trees, like the shallow network, need the high-level features",
                     {"trees gain": r3(ga - gl) if ok else None, "deep gain": r3(da - dl) if ok else None},
                     "AUC(trees, all) - AUC(trees, low) > AUC(deep, all) - AUC(deep, low)",
                     "BDT 0.73 -> 0.81 (+0.08), DNN +0.005",
                     holds=(ga - gl > da - dl) if ok else None, why="" if ok else missing))
    return out

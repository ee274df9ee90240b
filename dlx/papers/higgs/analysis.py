"""The papers' numbers, the model x feature-set table, and the claims held against it.

Two benchmarks (``data``): **htautau** (the default), the H -> tau tau study of Sadowski, Whiteson & Baldi,
"Searching for Higgs Boson Decay Modes with Deep Learning" (NIPS 2014; companion: Baldi, Sadowski &
Whiteson, PRL 114, 111801, 2015), whose citable numbers are the deep network's gain in discovery
significance: equivalent to 25% more data (PRL), +11% expected significance (Sadowski, Collado, Whiteson &
Baldi, JMLR W&CP 42, 2015) -- its AUC table is not quoted here; and **higgs_uci**, the exotic-Higgs
benchmark of Baldi, Sadowski & Whiteson, Nature Communications 5:4308 (2014), Table 1 (test AUC and
discovery significance for 100 signal vs 1000 +- 50 background events) as its anchors.

Every claim is decided by :func:`dlx.claims.compare` on a 95% interval: the claims between
networks on their per-seed values (paired by seed), the claims that involve the boosted trees (one
deterministic run per feature set) on bootstrap replicates of the AUC (:func:`auc_replicates`: the test
events resampled, shared by every model, and each network's seeds resampled, shared by its feature sets).
"""

from __future__ import annotations

import math

MODELS = ("shallow", "deep", "gbt")
FEATURES = ("low", "high", "all")
DATASETS = ("htautau", "higgs_uci")
LABELS = {"shallow": "shallow NN", "deep": "deep NN", "gbt": "boosted trees"}
FEATURE_LABELS = {"htautau": {"low": "low-level (10)", "high": "high-level (15)", "all": "all (25)"},
                  "higgs_uci": {"low": "low-level (21)", "high": "high-level (7)", "all": "all (28)"}}

# Nature Comms 2014, Table 1: the paper's BDT (TMVA) stands where our gradient-boosted trees do
PAPER_AUC = {"higgs_uci": {("shallow", "low"): 0.733, ("shallow", "high"): 0.777, ("shallow", "all"): 0.816,
                           ("gbt", "low"): 0.73, ("gbt", "high"): 0.78, ("gbt", "all"): 0.81,
                           ("deep", "low"): 0.880, ("deep", "high"): 0.800, ("deep", "all"): 0.885},
             "htautau": {}}
PAPER_Z = {"higgs_uci": {("shallow", "low"): 2.5, ("shallow", "high"): 3.1, ("shallow", "all"): 3.7,
                         ("deep", "low"): 4.9, ("deep", "high"): 3.6, ("deep", "all"): 5.0},
           "htautau": {}}
PAPER_EQUIVALENT_DATA = 0.25  # PRL 114, 111801: the deep network's significance gain as 25% more data


def summarize(results, data: str = "htautau"):
    """Seed mean and std of test AUC and Z per (model, features) over the full-size children, beside the
    paper's numbers for ``data`` where it has them."""
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
                         "paper_auc": PAPER_AUC[data].get((m, f)), "paper_z": PAPER_Z[data].get((m, f))})
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


# the cells the bootstrap claims read (deep_low_beats_high, trees_need_high)
BOOT_CELLS = (("deep", "low"), ("deep", "all"), ("gbt", "low"), ("gbt", "all"),
              *((m, "high") for m in MODELS))


def per_seed(results, col: str = "test_auc") -> dict[tuple[str, str], dict[int, float]]:
    """{(model, features): {seed: value}} over the full-size children that finished with a finite value."""
    full = results[(results["curve"] == False) & results.status.isin(("completed", "diverged"))]  # noqa: E712
    out: dict[tuple[str, str], dict[int, float]] = {}
    for r in full.itertuples():
        v = getattr(r, col)
        if v is not None and math.isfinite(float(v)):
            out.setdefault((r.model, r.features), {})[int(r.seed)] = float(v)
    return out


def shared(*cells: dict[int, float]):
    """The values of ``cells`` on the seeds they all have, as arrays in seed order (pairs by seed)."""
    import numpy as np

    seeds = sorted(set.intersection(*(set(c) for c in cells)))
    return [np.array([c[s] for s in seeds]) for c in cells]


def avg(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def auc_replicates(scores: dict, label, replicates: int = 1000, seed: int = 0) -> dict:
    """Bootstrap replicates of each cell's AUC: ``scores`` is {(model, features): {seed: test scores}} on one
    test set with labels ``label``; returns {(model, features): array of ``replicates`` values}.

    Replicate r resamples the test events with replacement (the same resample for every cell, so
    differences between cells are paired) and, for a cell with several seeds, the seeds with replacement
    (the same draw for every feature set of a model): the cell's value is the mean over the drawn seeds of
    the AUC on the resampled events. The trees' single run gives the test-sampling spread alone."""
    import numpy as np

    label = np.asarray(label).astype(bool)
    n, pos = len(label), label.astype(np.float64)
    rng = np.random.default_rng(seed)
    groups = {}  # each score array as the index of its distinct value (ties share one)
    for key, by_seed in scores.items():
        for s, score in by_seed.items():
            groups[key, s] = np.unique(np.asarray(score, np.float64), return_inverse=True)[1].ravel()
    auc = {k: np.empty(replicates) for k in groups}
    for r in range(replicates):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)  # times each event is drawn
        wp = w * pos
        for k, g in groups.items():
            auc[k][r] = weighted_auc(g, w, wp)
    out = {}
    models = {m for m, _ in scores}
    for m in sorted(models):
        seeds = sorted({s for (mm, _), by_seed in scores.items() if mm == m for s in by_seed})
        picks = rng.integers(0, len(seeds), (replicates, len(seeds)))
        for (mm, f), by_seed in scores.items():
            if mm != m:
                continue
            table = np.full((len(seeds), replicates), np.nan)
            for s in by_seed:
                table[seeds.index(s)] = auc[(m, f), s]
            drawn = table[picks.T, np.arange(replicates)]  # (seeds drawn, replicates)
            k = np.isfinite(drawn).sum(0)
            got = np.where(np.isfinite(drawn), drawn, 0.0).sum(0) / np.maximum(k, 1)
            # a draw of only seeds this cell lacks (a failed child): the mean over the seeds it has
            mine = np.isfinite(table[:, 0])
            out[m, f] = np.where(k > 0, got, table[mine].mean(0))
    return out


def weighted_auc(groups, w, wp) -> float:
    """The AUC of events weighted by ``w`` (``wp``: the weights of the signal events, 0 elsewhere), the
    scores given as ``groups``, the rank of each event's distinct score: P(score of a drawn signal > score
    of a drawn background), ties counting one half."""
    import numpy as np

    size = int(groups.max()) + 1
    gp = np.bincount(groups, weights=wp, minlength=size)
    gn = np.bincount(groups, weights=w, minlength=size) - gp
    return float((gp * (np.cumsum(gn) - 0.5 * gn)).sum() / (gp.sum() * gn.sum()))


def claims(results, boot: dict | None, rules, data: str = "htautau") -> list[dict]:
    """The claims of the benchmark ``data`` runs (see the module docstring): :func:`htautau_claims` or
    :func:`uci_claims`."""
    return (uci_claims if data == "higgs_uci" else htautau_claims)(results, boot, rules)


MISSING = "the sweep did not run (or finish) the runs it compares"
NO_BOOT = "no bootstrap replicates: the runs it compares wrote no readable test predictions"
DL, SL, DA, SA, GL, GA = (("deep", "low"), ("shallow", "low"), ("deep", "all"), ("shallow", "all"),
                          ("gbt", "low"), ("gbt", "all"))


class Cells:
    """What the claims read: per-seed AUC and Z of each (model, features) cell (:func:`per_seed`) and the
    AUC's bootstrap replicates (:func:`auc_replicates`; None: not computed)."""

    def __init__(self, results, boot: dict | None):
        self.auc, self.z, self.boot = per_seed(results), per_seed(results, "z"), boot or {}

    def m(self, cell, col: str = "auc"):
        """The cell's seed mean, rounded (None when it has no run)."""
        return r3(avg((self.auc if col == "auc" else self.z).get(cell, {}).values()))

    def has(self, *cells, col: str = "auc") -> bool:
        return all((self.auc if col == "auc" else self.z).get(c) for c in cells)

    def booted(self, *cells) -> bool:
        return all(c in self.boot for c in cells)


def matches_all(c: Cells, match: float, text: str, paper: str) -> dict:
    """deep_low_matches_all: AUC(deep, all) - AUC(deep, low) within +-``match``, per seed, paired."""
    from dlx.claims import claim, compare, rule_text

    ok = c.has(DL, DA)
    t = compare(*shared(c.auc[DA], c.auc[DL]), paired=True, direction="within", margin=match) if ok else None
    return claim(
        "deep_low_matches_all", text,
        {"low": c.m(DL), "all": c.m(DA), "gap": r3(c.m(DA) - c.m(DL)) if ok else None},
        rule_text(t, "AUC(deep, all) - AUC(deep, low), per seed,") if ok else
        f"AUC(deep, all) - AUC(deep, low) within ±{match:g}", paper, test=t, holds=None,
        why="" if ok else MISSING)


def shallow_needs_high(c: Cells, needs: float, text: str, paper: str) -> dict:
    """shallow_needs_high: [AUC(shallow, all) - AUC(shallow, low)] - [AUC(deep, all) - AUC(deep, low)] >
    ``needs``, per seed."""
    from dlx.claims import claim, compare, rule_text

    ok, t = c.has(DL, SL, DA, SA), None
    if ok:
        s_low, s_all, d_low, d_all = shared(c.auc[SL], c.auc[SA], c.auc[DL], c.auc[DA])
        t = compare((s_all - s_low) - (d_all - d_low), direction="greater", margin=needs)
    return claim(
        "shallow_needs_high", text,
        {"shallow gain": r3(c.m(SA) - c.m(SL)) if ok else None,
         "deep gain": r3(c.m(DA) - c.m(DL)) if ok else None},
        rule_text(t, "[AUC(shallow, all) - AUC(shallow, low)] - [AUC(deep, all) - AUC(deep, low)], per "
                  "seed,") if ok else f"shallow's gain from the high-level features - deep's > {needs:g}",
        paper, test=t, holds=None, why="" if ok else MISSING)


def trees_need_high(c: Cells, needs: float, text: str, paper: str) -> dict:
    """trees_need_high: [AUC(trees, all) - AUC(trees, low)] - [AUC(deep, all) - AUC(deep, low)] > ``needs``,
    on bootstrap replicates (the trees have one run)."""
    from dlx.claims import claim, compare, rule_text

    ok = c.has(GL, GA, DL, DA)
    got = ok and c.booted(GL, GA, DL, DA)
    b = c.boot
    t = compare((b[GA] - b[GL]) - (b[DA] - b[DL]), direction="greater", margin=needs,
                method="percentile") if got else None
    return claim(
        "trees_need_high", text,
        {"trees gain": r3(c.m(GA) - c.m(GL)) if ok else None,
         "deep gain": r3(c.m(DA) - c.m(DL)) if ok else None},
        rule_text(t, "[AUC(trees, all) - AUC(trees, low)] - [AUC(deep, all) - AUC(deep, low)], test events "
                  "and network seeds resampled,") if got else
        f"the trees' gain from the high-level features - deep's > {needs:g}", paper, test=t, holds=None,
        why="" if got else (NO_BOOT if ok else MISSING))


def htautau_claims(results, boot: dict | None, rules) -> list[dict]:
    """The H -> tau tau paper's shape (``data=htautau``), each on a 95% interval (rules: ``higgs.rules``):

    - deep_low_beats_shallow_all: AUC(deep, low) - AUC(shallow, all) > ``beats_all``, per seed, paired --
      the deep network without the engineered features beats the shallow one that has them;
    - deep_low_beats_trees_all: AUC(deep, low) - AUC(trees, all) > ``beats_all``, on bootstrap replicates;
    - deep_low_matches_all: AUC(deep, all) - AUC(deep, low) within +-``match``, per seed, paired -- it gains
      little from them (it finds what they hold);
    - shallow_needs_high / trees_need_high: the model's AUC gain from the engineered features minus the
      deep network's > ``needs_high`` (per seed; bootstrap for the trees);
    - equivalent_data: (Z(deep, all) / Z(shallow, all))^2 - 1 > ``data_gain``, per seed: the extra data the
      shallow network needs to be as significant (exact with sigma_b = 0), beside the paper's 25%."""
    import numpy as np

    from dlx.claims import claim, compare, rule_text
    from dlx.papers.higgs.significance import equivalent_data

    beats, match = float(rules.beats_all), float(rules.match)
    needs, dgain = float(rules.needs_high), float(rules.data_gain)
    c = Cells(results, boot)
    auc, z, m = c.auc, c.z, c.m
    quoted = "holds (no AUC quoted here)"
    out = []
    ok = c.has(DL, SA)
    t = compare(*shared(auc[DL], auc[SA]), paired=True, direction="greater", margin=beats) if ok else None
    out.append(claim(
        "deep_low_beats_shallow_all",
        "the deep network on the low-level features alone beats the shallow network given the engineered "
        "ones",
        {"deep low": m(DL), "shallow all": m(SA), "gain": r3(m(DL) - m(SA)) if ok else None},
        rule_text(t, "AUC(deep, low) - AUC(shallow, all), per seed,") if ok else
        f"AUC(deep, low) - AUC(shallow, all) > {beats:g}", quoted, test=t, holds=None,
        why="" if ok else MISSING))

    ok = c.has(DL, GA)
    got = ok and c.booted(DL, GA)
    t = (compare(c.boot[DL] - c.boot[GA], direction="greater", margin=beats, method="percentile") if got
         else None)
    out.append(claim(
        "deep_low_beats_trees_all",
        "the deep network on the low-level features alone beats boosted trees given the engineered ones",
        {"deep low": m(DL), "trees all": m(GA), "gain": r3(m(DL) - m(GA)) if ok else None},
        rule_text(t, "AUC(deep, low) - AUC(trees, all), test events and network seeds resampled,") if got
        else f"AUC(deep, low) - AUC(trees, all) > {beats:g}", quoted, test=t,
        holds=None, why="" if got else (NO_BOOT if ok else MISSING)))
    out.append(matches_all(c, match, "the deep network gains little from the engineered features", quoted))
    out.append(shallow_needs_high(c, needs, "the engineered features help the shallow network more than the "
                                  "deep one", quoted))
    out.append(trees_need_high(c, needs, "the engineered features help boosted trees more than the deep "
                               "network", quoted))

    ok, t = c.has(DA, SA, col="z"), None
    if ok:
        zd, zs = shared(z[DA], z[SA])
        gain = equivalent_data(zd, zs)
        t = compare(gain[np.isfinite(gain)], direction="greater", margin=dgain)
    out.append(claim(
        "equivalent_data",
        "the deep network's gain in discovery significance is worth more data to the shallow network",
        {"deep Z": m(DA, "z"), "shallow Z": m(SA, "z"),
         "equivalent data": r3(float(np.mean(gain))) if ok else None},
        rule_text(t, "(Z(deep, all) / Z(shallow, all))^2 - 1, per seed,") if ok else
        f"(Z(deep, all) / Z(shallow, all))^2 - 1 > {dgain:g}",
        f"+{PAPER_EQUIVALENT_DATA:.0%} data (PRL); +11% significance (JMLR W&CP 42)", test=t, holds=None,
        why="" if ok else MISSING))
    return out


def uci_claims(results, boot: dict | None, rules) -> list[dict]:
    """The Nature Communications benchmark's shape (``data=higgs_uci``), each claim decided on a 95%
    interval (rules: ``higgs.rules``):

    - deep_beats_shallow_low: AUC(deep, low) - AUC(shallow, low) > ``deep_gain``, per seed, paired;
    - deep_low_matches_all: AUC(deep, all) - AUC(deep, low) within +-``match``, per seed, paired;
    - shallow_needs_high: the shallow net's gain from the high-level features minus the deep net's,
      [AUC(shallow, all) - AUC(shallow, low)] - [AUC(deep, all) - AUC(deep, low)] > ``needs_high``, per seed;
    - deep_low_beats_high: AUC(deep, low) - max over models of AUC(model, high) > ``beats_high``, on
      bootstrap replicates (the trees have one run);
    - significance_low: Z(deep, low) - Z(shallow, low) > ``z_gain`` sigma, per seed, paired;
    - trees_need_high: [AUC(trees, all) - AUC(trees, low)] - [AUC(deep, all) - AUC(deep, low)] >
      ``needs_high``, on bootstrap replicates.

    ``results`` is the sweep's per-child table (model, features, seed, curve, status, test_auc, z);
    ``boot`` is :func:`auc_replicates`'s {(model, features): replicates} (None: not computed)."""
    import numpy as np

    from dlx.claims import claim, compare, rule_text

    gain, match = float(rules.deep_gain), float(rules.match)
    needs, beats, zgain = float(rules.needs_high), float(rules.beats_high), float(rules.z_gain)
    c = Cells(results, boot)
    auc, z, m = c.auc, c.z, c.m
    out = []
    ok = c.has(DL, SL)
    t = compare(*shared(auc[DL], auc[SL]), paired=True, direction="greater", margin=gain) if ok else None
    out.append(claim(
        "deep_beats_shallow_low", "on low-level features alone, the deep network beats the shallow one",
        {"deep": m(DL), "shallow": m(SL), "gain": r3(m(DL) - m(SL)) if ok else None},
        rule_text(t, "AUC(deep, low) - AUC(shallow, low), per seed,") if ok else
        f"AUC(deep, low) - AUC(shallow, low) > {gain:g}", "0.880 vs 0.733 (+0.147)", test=t,
        holds=None, why="" if ok else MISSING))
    out.append(matches_all(c, match, "the deep network on low-level features nearly matches it on all "
                           "features", "0.885 vs 0.880 (gap 0.005)"))
    out.append(shallow_needs_high(c, needs, "the high-level features help the shallow network more than the "
                                  "deep one", "shallow +0.083, deep +0.005"))

    highs = [(mm, "high") for mm in MODELS if c.has((mm, "high"))]
    best = max(highs, key=lambda h: avg(auc[h].values()))[0] if highs else None
    ok = c.has(DL) and bool(highs)
    got = ok and c.booted(DL, *highs)
    t = compare(c.boot[DL] - np.max([c.boot[h] for h in highs], axis=0), direction="greater", margin=beats,
                method="percentile") if got else None
    out.append(claim(
        "deep_low_beats_high",
        "the deep network on low-level features beats every model on the high-level ones",
        {"deep low": m(DL), "best high": m((best, "high")) if best else None, "best high model": best},
        rule_text(t, "AUC(deep, low) - max over models of AUC(model, high), test events and network seeds "
                  "resampled,") if got else
        f"AUC(deep, low) - max over models of AUC(model, high) > {beats:g}", "0.880 vs at most 0.800",
        test=t, holds=None, why="" if got else (NO_BOOT if ok else MISSING)))

    ok = c.has(DL, SL, col="z")
    t = compare(*shared(z[DL], z[SL]), paired=True, direction="greater", margin=zgain) if ok else None
    out.append(claim(
        "significance_low", "on low-level features, the deep network's selection is more significant",
        {"deep Z": m(DL, "z"), "shallow Z": m(SL, "z")},
        rule_text(t, "Z(deep, low) - Z(shallow, low), per seed,", unit=" sigma") if ok else
        f"Z(deep, low) - Z(shallow, low) > {zgain:g} sigma", "4.9 sigma vs 2.5 sigma", test=t, holds=None,
        why="" if ok else MISSING))
    out.append(trees_need_high(c, needs, "boosted trees, like the shallow network, need the high-level "
                               "features", "BDT 0.73 -> 0.81 (+0.08), DNN +0.005"))
    return out

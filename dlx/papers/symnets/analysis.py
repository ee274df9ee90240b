"""The symnets sweep's tables and the paper's claims held to dlx's rules.

* ``errors``: per variant and training size, the test error's mean and standard deviation over seeds
  (sample std, ddof=1), the parameter count and the training time per epoch and per step (the wall time
  of the training steps alone, from the last row of each child's metrics.csv).
* ``ablation``: the symnet at the ablation sizes with K control points, with and without the search for
  local maxima between them.
* ``invariance``: per variant and test angle, the error of networks trained on upright digits.

The claims (``claims``) are a pure function of per-seed tables (``seed_rows`` of the main study and of the
ablation, the invariance rows) and ``symnets.rules``: every one is a comparison decided by
dlx.claims.compare on a 95% t interval of per-seed values, paired by seed (a seed's children
train on the same subset of the pool: data.subset_seed is the seed).
"""

from __future__ import annotations

import math

PAPER_SHAPE = ("symnets over the affine group greatly reduce sample complexity relative to convnets: on "
               "MNIST-rot and NORB their test error is lower, most of all with few training examples (Gens & "
               "Domingos, NIPS 2014: abstract and the test error vs training-set size figures)")


def timing(curves):
    """run_id -> (seconds per epoch, milliseconds per step, optimizer steps) of training, from
    metrics.csv's last row."""
    if curves is None or not len(curves) or "wall_s" not in curves:
        return {}
    last = curves.sort_values("epoch").groupby("run_id").tail(1)
    return {r.run_id: (r.wall_s / max(r.epoch, 1), 1000 * r.wall_s / max(r.step, 1), int(r.step))
            for r in last.itertuples() if r.wall_s == r.wall_s}


def tidy(results, curves, studies: dict[str, list[str]]):
    """One row per child: its studies, K and refinement, test error, time per epoch and per step."""
    df = results.copy()
    t = timing(curves)
    none = (math.nan, math.nan, math.nan)
    df["epoch_s"] = [t.get(r, none)[0] for r in df.run_id]
    df["step_ms"] = [t.get(r, none)[1] for r in df.run_id]
    df["steps"] = [t.get(r, none)[2] for r in df.run_id]
    df["studies"] = ["+".join(studies.get(r, [])) for r in df.run_id]
    for col in ("K", "refine_radius", "rotate", "test_error", "train_error"):
        if col not in df:
            df[col] = math.nan
    df["refine"] = df["refine_radius"].isna() | (df["refine_radius"].astype(float) > 0)
    # an ablation row with another model.warp names it; "" is the variant's own
    df["warp"] = df["warp"].fillna("").astype(str) if "warp" in df else ""
    return df


def in_study(df, study: str):
    return df[df.studies.str.split("+").apply(lambda s: study in s)]


def error_table(df, order: list[str]):
    """Main study: per variant and n_train, mean/std/count of the test error, params, time per epoch."""
    import pandas as pd

    main = in_study(df, "main")
    ok = main[main.status == "completed"]
    if not len(ok):
        return pd.DataFrame(columns=["model", "n_train", "test_error", "test_error_std", "seeds", "params",
                                     "steps", "epoch_s", "step_ms"])
    g = ok.groupby(["variant", "n_train"])
    t = g.agg(test_error=("test_error", "mean"), test_error_std=("test_error", "std"),
              seeds=("seed", "count"), params=("params", "first"), steps=("steps", "max"),
              epoch_s=("epoch_s", "mean"),
              step_ms=("step_ms", "mean"), train_error=("train_error", "mean")).reset_index()
    t = t.rename(columns={"variant": "model"})
    t["rank"] = t.model.map({m: i for i, m in enumerate(order)})
    return t.sort_values(["rank", "n_train"]).drop(columns="rank").reset_index(drop=True)


def display_table(errors):
    """The terminal table: error as 'mean ± std' in percent."""
    out = errors[["model", "n_train"]].copy()
    out["test error %"] = [f"{100 * m:.1f} ± {100 * s:.1f}" if s == s else f"{100 * m:.1f}"
                           for m, s in zip(errors.test_error, errors.test_error_std, strict=True)]
    out["seeds"] = errors.seeds.astype(int)
    out["params"] = errors.params.astype(int)
    out["steps"] = errors.steps.astype(int)
    out["s/epoch"] = errors.epoch_s.round(3)
    return out


def ablation_table(df, base_k: int):
    """Ablation rows: per (n_train, K, refine): mean/std of the test error, params, ms per step."""
    import pandas as pd

    abl = in_study(df, "ablation")
    ok = abl[abl.status == "completed"].copy()
    if not len(ok):
        return pd.DataFrame(columns=["n_train", "K", "refine", "warp", "row", "test_error", "test_error_std",
                                     "seeds", "params", "step_ms"])
    ok["K"] = ok["K"].fillna(base_k)  # the reused main children run the symnet's own K
    g = ok.groupby(["n_train", "K", "refine", "warp"])
    t = g.agg(test_error=("test_error", "mean"), test_error_std=("test_error", "std"),
              seeds=("seed", "count"), params=("params", "first"), step_ms=("step_ms", "mean")).reset_index()
    t["K"] = t.K.astype(int)
    t["row"] = [f"K={k}" + ("" if r else ", no search") + (f", warp={w}" if w else "")
                for k, r, w in zip(t.K, t.refine, t.warp, strict=True)]
    t["main"] = (t.K == base_k) & t.refine & (t.warp == "")  # the main sweep's symnet itself
    return t.sort_values(["n_train", "warp", "refine", "K"],
                         ascending=[True, True, False, True]).reset_index(drop=True)


SHRINKS = "the symnet's advantage over the plain CNN shrinks as the training set grows"


def gap_rows(errors, sym: str, base: str) -> list[dict]:
    """Per training size where both ran: base's mean error minus the symnet's (positive = symnet better)."""
    a = errors[errors.model == sym].set_index("n_train")
    b = errors[errors.model == base].set_index("n_train")
    return [{"n_train": int(n), "symnet": float(a.test_error[n]), "other": float(b.test_error[n]),
             "gap": float(b.test_error[n] - a.test_error[n])} for n in sorted(set(a.index) & set(b.index))]


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _mean(values) -> float:
    return float(sum(values) / len(values))


def _neg(x: float) -> float:
    """-x, without a negative zero (a rule reads '< 0', not '< -0')."""
    return -x if x else 0.0


def seed_rows(df, study: str, base_k: int | None = None):
    """The completed children of ``study``, one row per child: model (the variant), n_train, seed, K,
    refine, test_error -- the per-seed values every comparison is decided on. A reused main child of the
    ablation runs the symnet's own K (``base_k``)."""
    import pandas as pd

    ok = in_study(df, study)
    ok = ok[ok.status == "completed"]
    out = pd.DataFrame({"model": ok.variant.astype(str), "n_train": ok.n_train.astype(int),
                        "seed": ok.seed.astype(int), "K": ok.K.astype(float),
                        "refine": ok.refine.astype(bool), "warp": ok.warp.astype(str),
                        "test_error": ok.test_error.astype(float)})
    if base_k is not None:
        out["K"] = out.K.fillna(base_k)
    return out.reset_index(drop=True)


def by_seed(rows, model: str, sizes: list[int]) -> dict[int, list[float]]:
    """seed -> the model's test errors at ``sizes`` (in that order), for the seeds that ran every size."""
    g = rows[(rows.model == model) & rows.n_train.isin(sizes)]
    out = {}
    for seed, s in g.groupby("seed"):
        at = dict(zip(s.n_train.astype(int), s.test_error.astype(float), strict=True))
        if all(n in at for n in sizes):
            out[int(seed)] = [at[n] for n in sizes]
    return out


def paired(rows, a: str, b: str, sizes: list[int]) -> tuple[list[int], list[float], list[float]]:
    """(seeds, a's, b's): per seed that both ran at every size, each side's error averaged over ``sizes``."""
    ea, eb = by_seed(rows, a, sizes), by_seed(rows, b, sizes)
    seeds = sorted(set(ea) & set(eb))
    return seeds, [_mean(ea[s]) for s in seeds], [_mean(eb[s]) for s in seeds]


def shared_sizes(rows, a: str, b: str) -> list[int]:
    """The training sizes both models ran at, smallest first."""
    def sizes(m):
        return set(rows[rows.model == m].n_train.astype(int))

    return sorted(sizes(a) & sizes(b))


def mean_at(rows, model: str, n: int) -> float:
    return float(rows[(rows.model == model) & (rows.n_train == n)].test_error.mean())


def _smallest(small: int) -> str:
    return "the smallest training set" if small == 1 else f"the {small} smallest training sets"


def _sizes(sizes: list[int]) -> str:
    return "n=" + ",".join(map(str, sizes))


def claims(main, ablation, invariance, rules, *, sym: str = "symnet", base_k: int | None = None,
           nosearch: str | None = None) -> list[dict]:
    """The paper's claims (and the checks dlx adds, marked source="dlx") as records with verdicts, from
    per-seed values alone: ``main`` (seed_rows of the main study: model, n_train, seed, test_error),
    ``ablation`` (seed_rows of the ablation: n_train, seed, K, refine, test_error), ``invariance``
    (invariance.evaluate's rows: model, seed, angle, error) and ``rules`` (``symnets.rules``: small, gap,
    shrink, beat, spread_ratio, search_gain). Every comparison is decided by compare() on the
    per-seed values, paired by seed (a seed's children share its training subset)."""
    r = {k: float(rules[k]) for k in ("small", "gap", "shrink", "beat", "spread_ratio", "search_gain")}
    small = int(r["small"])
    out = [small_gap_claim(main, sym, small, r["gap"]), shrink_claim(main, sym, r["shrink"])]
    for other, cid, what, paper, source in (
            ("convnet_aug", "vs_augmentation", "a plain CNN trained with random rotations of every batch",
             "convnets must approximate other groups' effects, 'which often requires augmenting datasets and "
             "leads to high sample complexity' (Gens & Domingos, NIPS 2014, abstract); the paper does not "
             "train an augmented convnet", "paper"),
            ("p4cnn", "vs_p4cnn", "a P4 group-convolution CNN (rotations by 90 degrees)",
             "P4 CNNs (Cohen & Welling 2016) came later; not in the paper", "dlx")):
        out.append(beats_claim(main, sym, other, cid, what, paper, source, small, r["beat"]))
    out.append(invariance_claim(invariance, sym, r["spread_ratio"]))
    out.append(refinement_claim(ablation, base_k, r["search_gain"]))
    out.append(between_claim(invariance, sym, nosearch, base_k, r["search_gain"]))
    return out


def small_gap_claim(main, sym: str, small: int, gap: float) -> dict:
    from dlx.claims import claim, compare, rule_text

    text = (f"at {_smallest(small)} the symnet's test error is at least {100 * gap:g} points below the "
            "plain CNN's")
    sizes = shared_sizes(main, sym, "convnet")[:small]
    seeds, cnn, ours = paired(main, "convnet", sym, sizes)
    what = f"the plain CNN's error minus the symnet's (per seed, mean over {_smallest(small)})"
    if len(sizes) >= small:
        what = f"the plain CNN's error minus the symnet's (per seed, mean over {_sizes(sizes)})"
    if len(sizes) < small or not seeds:
        return claim("small_n_gap", text, None, f"{what} > {100 * gap:g} points", PAPER_SHAPE, None,
                     why=f"needs the symnet and the convnet at {small} training sizes and a shared seed "
                         "(sweep.models, sweep.n_train)")
    test = compare(cnn, ours, paired=True, direction="greater", margin=gap)
    got = {f"n={n}": f"{_pct(mean_at(main, sym, n))} vs {_pct(mean_at(main, 'convnet', n))}" for n in sizes}
    return claim("small_n_gap", text, got, rule_text(test, what=what, scale=100, unit=" points"),
                 PAPER_SHAPE, test=test, scale=100)


def shrink_claim(main, sym: str, shrink: float) -> dict:
    from dlx.claims import claim, compare, rule_text

    sizes = shared_sizes(main, sym, "convnet")
    what = "the gap (plain CNN's error minus the symnet's) at the smallest size minus the gap at the largest"
    if len(sizes) < 2:
        return claim("gap_shrinks", SHRINKS, None, f"{what} > {100 * shrink:g} points", PAPER_SHAPE, None,
                     why="needs the symnet and the convnet at two training sizes")
    ends = [sizes[0], sizes[-1]]
    cnn, ours = by_seed(main, "convnet", ends), by_seed(main, sym, ends)
    seeds = sorted(set(cnn) & set(ours))
    if not seeds:
        return claim("gap_shrinks", SHRINKS, None, f"{what} > {100 * shrink:g} points", PAPER_SHAPE, None,
                     why="needs the symnet and the convnet at a shared seed at both ends")
    first = [cnn[s][0] - ours[s][0] for s in seeds]
    last = [cnn[s][1] - ours[s][1] for s in seeds]
    test = compare(first, last, paired=True, direction="greater", margin=shrink)
    got = {f"gap at n={ends[0]}": round(100 * _mean(first), 1),
           f"gap at n={ends[1]}": round(100 * _mean(last), 1)}
    return claim("gap_shrinks", SHRINKS, got,
                 rule_text(test, what=f"{what} (per seed, n={ends[0]} vs n={ends[1]})", scale=100,
                           unit=" points"), PAPER_SHAPE, test=test, scale=100)


def beats_claim(main, sym: str, other: str, cid: str, what: str, paper: str, source: str, small: int,
                beat: float) -> dict:
    """The other network's error minus the symnet's > ``beat`` (0: the symnet more accurate; a negative
    value would ask only that it be at most that much worse), per seed averaged over the smallest sizes."""
    from dlx.claims import claim, compare, rule_text

    text = f"at {_smallest(small)} the symnet is more accurate than {what}"
    sizes = shared_sizes(main, sym, other)[:small]
    seeds, theirs, ours = paired(main, other, sym, sizes)
    diff = f"{other}'s error minus the symnet's (per seed, mean over {_smallest(small)})"
    if len(sizes) >= small:
        diff = f"{other}'s error minus the symnet's (per seed, mean over {_sizes(sizes)})"
    if len(sizes) < small or not seeds:
        return claim(cid, text, None, f"{diff} > {100 * beat:g} points", paper, None,
                     why=f"{other} not in sweep.models (or too few shared sizes or seeds)", source=source)
    test = compare(theirs, ours, paired=True, direction="greater", margin=beat)
    got = {f"n={n}": f"{_pct(mean_at(main, sym, n))} vs {_pct(mean_at(main, other, n))}" for n in sizes}
    return claim(cid, text, got, rule_text(test, what=diff, scale=100, unit=" points"),
                 paper, test=test, scale=100, source=source)


def invariance_spread(invariance):
    """Per variant: (error at 0 degrees, worst error over angles, spread = worst - best), seed-mean."""
    if invariance is None or not len(invariance):
        return {}
    m = invariance.groupby(["model", "angle"]).error.mean().reset_index()
    out = {}
    for v, g in m.groupby("model"):
        at0 = g[g.angle == 0].error
        out[v] = {"at_0": float(at0.iloc[0]) if len(at0) else math.nan, "worst": float(g.error.max()),
                  "spread": float(g.error.max() - g.error.min())}
    return out


def seed_spreads(invariance, model: str) -> dict[int, float]:
    """seed -> worst minus best error over the test angles, for one variant trained upright."""
    g = invariance[invariance.model == model]
    return {int(s): float(x.error.max() - x.error.min()) for s, x in g.groupby("seed")}


def invariance_claim(invariance, sym: str, ratio: float) -> dict:
    from dlx.claims import claim, compare, rule_text

    text = ("trained on upright digits only, the symnet's error hardly changes when the test digits are "
            "turned, while the plain CNN's climbs")
    paper = "pooling over the group makes a symnet's features invariant to G; not measured in the paper"
    what = (f"the symnet's spread minus {ratio:g} x the plain CNN's (worst - best error over the test "
            "angles, per seed)")
    a = seed_spreads(invariance, sym) if invariance is not None and len(invariance) else {}
    b = seed_spreads(invariance, "convnet") if invariance is not None and len(invariance) else {}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return claim("invariance", text, None, f"{what} < 0 points", paper, None,
                     why="needs the symnet and the convnet in invariance.models", source="dlx")
    test = compare([a[s] for s in seeds], [ratio * b[s] for s in seeds], paired=True, direction="less")
    got = {"symnet spread": round(100 * _mean([a[s] for s in seeds]), 1),
           "convnet spread": round(100 * _mean([b[s] for s in seeds]), 1)}
    return claim("invariance", text, got, rule_text(test, what=what, scale=100, unit=" points"), paper,
                 test=test, scale=100, source="dlx")


def refinement_claim(ablation, base_k: int | None, gain: float) -> dict:
    from dlx.claims import claim, compare, rule_text

    text = "searching the interpolated responses for local maxima between control points lowers the error"
    paper = ("symnets pool over neighbourhoods in G at local maxima found from the control points by "
             "Gauss-Newton (Gens & Domingos, NIPS 2014); the paper does not ablate it")
    what = "the symnet's error with the search minus without (per seed, mean over the ablation sizes)"
    rule = f"{what} < {100 * _neg(gain):g} points"
    if ablation is None or not len(ablation) or base_k is None:
        return claim("refinement_helps", text, None, rule, paper, None,
                     why="no ablation rows (ablation.n_train, ablation.refine)")
    own = ablation.warp == "" if "warp" in ablation else True  # the variant's own maps, not another warp's
    at = ablation[(ablation.K == base_k) & own]
    rows = at.assign(model=["on" if r else "off" for r in at.refine.astype(bool)])
    sizes = shared_sizes(rows, "on", "off")
    seeds, on, off = paired(rows, "on", "off", sizes)
    if not seeds:
        return claim("refinement_helps", text, None, rule, paper, None,
                     why="needs ablation.refine=[true,false] at a shared seed")
    test = compare(on, off, paired=True, direction="less", margin=_neg(gain))
    got = {f"n={n}": f"{_pct(mean_at(rows, 'on', n))} with vs {_pct(mean_at(rows, 'off', n))} without"
           for n in sizes}
    return claim("refinement_helps", text, got,
                 rule_text(test, what=f"K={base_k}: the symnet's error with the search minus without "
                                      f"(per seed, mean over {_sizes(sizes)})", scale=100, unit=" points"),
                 paper, test=test, scale=100)


def between_angles(invariance, k: int):
    """The test angles that fall between the control points of K rotations (not multiples of 360/K)."""
    spacing = 360 / k
    return [a for a in sorted(invariance.angle.unique()) if min(a % spacing, spacing - a % spacing) > 1e-6]


def between_claim(invariance, sym: str, nosearch: str | None, base_k: int | None, gain: float) -> dict:
    from dlx.claims import claim, compare, rule_text

    text = ("the search for local maxima of the interpolated responses makes the symnet more invariant to "
            "rotations that fall between its control points")
    paper = ("kernel interpolation extends the feature maps to all of G, between the control points "
             "(Gens & Domingos, NIPS 2014); not measured there")
    what = ("trained upright: the symnet's mean error at the test angles between its control points with the "
            "search minus without (per seed)")
    rule = f"{what} < {100 * _neg(gain):g} points"
    have = invariance is not None and len(invariance) and nosearch and base_k
    models = set(invariance.model) if have else set()
    if not have or sym not in models or nosearch not in models:
        return claim("search_between_points", text, None, rule, paper, None,
                     why="needs the symnet and its no-search variant in invariance.models")
    angles = between_angles(invariance, base_k)
    if not angles:
        return claim("search_between_points", text, None, rule, paper, None,
                     why=f"no test angle falls between the control points (invariance.angle_step vs "
                         f"K={base_k})")
    at = invariance[invariance.angle.isin(angles)]
    per = {m: {int(s): float(g.error.mean()) for s, g in at[at.model == m].groupby("seed")}
           for m in (sym, nosearch)}
    seeds = sorted(set(per[sym]) & set(per[nosearch]))
    if not seeds:
        return claim("search_between_points", text, None, rule, paper, None,
                     why="needs the symnet and its no-search variant at a shared seed")
    on, off = [per[sym][s] for s in seeds], [per[nosearch][s] for s in seeds]
    test = compare(on, off, paired=True, direction="less", margin=_neg(gain))
    return claim("search_between_points", text,
                 {"with search": _pct(_mean(on)), "without": _pct(_mean(off)), "angles": len(angles)},
                 rule_text(test, what=what, scale=100, unit=" points"), paper, test=test, scale=100)


def metrics(errors, ablation, invariance, sym: str = "symnet") -> dict:
    """Headline numbers for summary.json: per-size gaps, errors at the smallest and largest size, cost."""
    out: dict = {}
    for base in ("convnet", "convnet_aug", "p4cnn"):
        for r in gap_rows(errors, sym, base):
            out[f"gap_{base}_n{r['n_train']}"] = round(r["gap"], 4)
    for v, g in errors.groupby("model"):
        g = g.sort_values("n_train")
        out[f"{v}_error_n{int(g.n_train.iloc[0])}"] = round(float(g.test_error.iloc[0]), 4)
        out[f"{v}_error_n{int(g.n_train.iloc[-1])}"] = round(float(g.test_error.iloc[-1]), 4)
        out[f"{v}_step_ms"] = round(float(g.step_ms.mean()), 2)
        out[f"{v}_params"] = int(g.params.iloc[0])
    if f"{sym}_step_ms" in out and out.get("convnet_step_ms"):
        out["symnet_cost_ratio"] = round(out[f"{sym}_step_ms"] / out["convnet_step_ms"], 2)
    for v, s in invariance_spread(invariance).items():
        out[f"invariance_spread_{v}"] = round(s["spread"], 4)
    return out

"""The symnets sweep's tables and the paper's claims held to dlx's rules.

* ``errors``: per variant and training size, the test error's mean and standard deviation over seeds
  (sample std, ddof=1), the parameter count and the training time per epoch and per step (the wall time
  of the training steps alone, from the last row of each child's metrics.csv).
* ``ablation``: the symnet at the ablation sizes with K control points, with and without the search for
  local maxima between them.
* ``invariance``: per variant and test angle, the error of networks trained on upright digits.
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
        return pd.DataFrame(columns=["n_train", "K", "refine", "row", "test_error", "test_error_std", "seeds",
                                     "params", "step_ms"])
    ok["K"] = ok["K"].fillna(base_k)  # the reused main children run the symnet's own K
    g = ok.groupby(["n_train", "K", "refine"])
    t = g.agg(test_error=("test_error", "mean"), test_error_std=("test_error", "std"),
              seeds=("seed", "count"), params=("params", "first"), step_ms=("step_ms", "mean")).reset_index()
    t["K"] = t.K.astype(int)
    t["row"] = [f"K={k}" + ("" if r else ", no search") for k, r in zip(t.K, t.refine, strict=True)]
    t["main"] = (t.K == base_k) & t.refine  # the main sweep's symnet itself
    return t.sort_values(["n_train", "refine", "K"], ascending=[True, False, True]).reset_index(drop=True)


SHRINKS = "the symnet's advantage over the plain CNN shrinks as the training set grows"


def gap_rows(errors, sym: str, base: str) -> list[dict]:
    """Per training size where both ran: base's mean error minus the symnet's (positive = symnet better)."""
    a = errors[errors.model == sym].set_index("n_train")
    b = errors[errors.model == base].set_index("n_train")
    return [{"n_train": int(n), "symnet": float(a.test_error[n]), "other": float(b.test_error[n]),
             "gap": float(b.test_error[n] - a.test_error[n])} for n in sorted(set(a.index) & set(b.index))]


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def claims(errors, ablation, invariance, *, sym: str = "symnet", gap: float = 0.05, small: int = 2,
           base_k: int | None = None, nosearch: str | None = None) -> list[dict]:
    """The paper's claims (and the comparisons the reproduction adds) as records with verdicts."""
    from dlx.experiments.claims import claim

    out = []
    rows = gap_rows(errors, sym, "convnet")
    few = rows[:small]
    text = (f"with the {small} smallest training sets the symnet's mean test error is at least "
            f"{100 * gap:g} points below the plain CNN's")
    if len(few) < small:
        out.append(claim("small_n_gap", text, None, f"convnet - symnet >= {100 * gap:g} points at each of "
                         f"the {small} smallest sizes", PAPER_SHAPE, None,
                         why=f"needs the symnet and the convnet at {small} training sizes (sweep.models, "
                             "sweep.n_train)"))
    else:
        out.append(claim("small_n_gap", text,
                         {f"n={r['n_train']}": f"{_pct(r['symnet'])} vs {_pct(r['other'])}" for r in few},
                         f"convnet - symnet >= {100 * gap:g} points at each of the {small} smallest sizes",
                         PAPER_SHAPE, all(r["gap"] >= gap for r in few)))
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        got = {f"gap at n={r['n_train']}": round(100 * r["gap"], 1) for r in (first, last)}
        out.append(claim("gap_shrinks", SHRINKS, got,
                         "gap (points) at the largest size < gap at the smallest size", PAPER_SHAPE,
                         last["gap"] < first["gap"]))
    else:
        out.append(claim("gap_shrinks", SHRINKS, None, "gap at the largest size < gap at the smallest",
                         PAPER_SHAPE, None, why="needs two training sizes"))
    for other, cid, what, paper in (
            ("convnet_aug", "vs_augmentation", "a plain CNN trained with random rotations of every batch",
             "the paper: without symmetry in the network, convnets rely on augmented data and pay in "
             "sample complexity (abstract); not measured there"),
            ("p4cnn", "vs_p4cnn", "a P4 group-convolution CNN (rotations by 90 degrees)",
             "P4 CNNs (Cohen & Welling 2016) came later; not in the paper")):
        r = gap_rows(errors, sym, other)[:small]
        text = f"at the {small} smallest training sets the symnet is at least as accurate as {what}"
        if len(r) < small:
            out.append(claim(cid, text, None, "symnet mean error <= theirs", paper, None,
                             why=f"{other} not in sweep.models (or too few sizes)"))
            continue
        got = {f"n={x['n_train']}": f"{_pct(x['symnet'])} vs {_pct(x['other'])}" for x in r}
        out.append(claim(cid, text, got,
                         f"symnet mean test error <= {other}'s at each of the {small} smallest sizes", paper,
                         all(x["gap"] >= 0 for x in r)))
    out.append(invariance_claim(invariance, sym))
    out.append(refinement_claim(ablation, base_k))
    out.append(between_claim(invariance, sym, nosearch, base_k))
    return out


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


def invariance_claim(invariance, sym: str) -> dict:
    from dlx.experiments.claims import claim

    text = ("trained on upright digits only, the symnet's error hardly changes when the test digits are "
            "turned, while the plain CNN's climbs")
    paper = "pooling over the group makes a symnet's features invariant to G; not measured in the paper"
    s = invariance_spread(invariance)
    if sym not in s or "convnet" not in s:
        return claim("invariance", text, None, "symnet spread <= half the convnet's spread", paper, None,
                     why="needs the symnet and the convnet in invariance.models")
    a, b = s[sym], s["convnet"]
    return claim("invariance", text, {"symnet spread": round(100 * a["spread"], 1),
                                      "convnet spread": round(100 * b["spread"], 1)},
                 "spread (worst - best error over test angles, points): symnet <= half the convnet's", paper,
                 a["spread"] <= 0.5 * b["spread"])


def refinement_claim(ablation, base_k: int | None) -> dict:
    from dlx.experiments.claims import claim

    text = "searching the interpolated responses for local maxima between control points lowers the error"
    paper = ("symnets pool over neighbourhoods in G at local maxima found from the control points by "
             "Gauss-Newton; the paper does not ablate it")
    if ablation is None or not len(ablation) or base_k is None:
        return claim("refinement_helps", text, None, "error with search < without", paper, None,
                     why="no ablation rows (ablation.n_train, ablation.refine)")
    at = ablation[ablation.K == base_k]
    on, off = at[at.refine], at[~at.refine]
    if not len(on) or not len(off):
        return claim("refinement_helps", text, None, "error with search < without", paper, None,
                     why="needs ablation.refine=[true,false]")
    pairs = {int(n): (float(on[on.n_train == n].test_error.iloc[0]),
                      float(off[off.n_train == n].test_error.iloc[0]))
             for n in sorted(set(on.n_train) & set(off.n_train))}
    got = {f"n={n}": f"{_pct(a)} with vs {_pct(b)} without" for n, (a, b) in pairs.items()}
    return claim("refinement_helps", text, got,
                 f"K={base_k}: mean error with the search < without, at every ablation size", paper,
                 all(a < b for a, b in pairs.values()))


def between_angles(invariance, k: int):
    """The test angles that fall between the control points of K rotations (not multiples of 360/K)."""
    spacing = 360 / k
    return [a for a in sorted(invariance.angle.unique()) if min(a % spacing, spacing - a % spacing) > 1e-6]


def between_claim(invariance, sym: str, nosearch: str | None, base_k: int | None) -> dict:
    from dlx.experiments.claims import claim

    text = ("the search for local maxima of the interpolated responses makes the symnet more invariant to "
            "rotations that fall between its control points")
    paper = ("kernel interpolation extends the feature maps to all of G, between the control points "
             "(Gens & Domingos, NIPS 2014); not measured there")
    rule = ("trained upright: the symnet's mean error at test angles between its control points, with "
            "search < without")
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
    at = invariance[invariance.angle.isin(angles)].groupby("model").error.mean()
    return claim("search_between_points", text, {"with search": _pct(at[sym]), "without": _pct(at[nosearch]),
                                                 "angles": len(angles)}, rule, paper, at[sym] < at[nosearch])


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

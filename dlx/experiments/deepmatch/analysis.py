"""The deepmatch tables and claims, from results.csv alone (a row per child).

* ``summarize``: per (model, variant), on all training pairs: mean and std over seeds of test P@1 and MRR,
  runs, mean fit time (setup + training seconds).
* ``learning``: per (model, training pairs): mean and std of test P@1 over the curve seeds, with the
  full-size runs as the largest point.
* ``claims``: the paper's shape (Lu & Li, NIPS 2013), each held to a rule with the margins in
  ``deepmatch.rules``.
"""

from __future__ import annotations

import math

from dlx.experiments.claims import claim

PAPER_BASELINES = ("inner_product", "pls", "bilinear")
LABELS = {"random": "random", "inner_product": "inner product", "pls": "PLS",
          "bilinear": "bilinear (RMLS-like)", "dual_encoder": "dual encoder", "deepmatch": "DeepMatch"}
VARIANT_LABELS = {"full": "", "one_resolution": "one resolution", "no_hierarchy": "no hierarchy"}
ORDER = ("random", "inner_product", "pls", "bilinear", "dual_encoder", "deepmatch")


def _done(results):
    return results[results.status == "completed"]


def summarize(results):
    import pandas as pd

    ok = _done(results)
    ok = ok[~ok.curve.astype(bool)] if "curve" in ok else ok
    rows = []
    for (model, variant), g in ok.groupby(["model", "variant"], sort=False):
        p, m = g.test_p_at_1.astype(float), g.test_mrr.astype(float)
        fit = (pd.to_numeric(g.setup_s, errors="coerce").fillna(0)
               + pd.to_numeric(g.train_s, errors="coerce").fillna(0))
        rows.append({"model": model, "variant": variant, "p_at_1": p.mean(), "p_at_1_std": p.std(ddof=1),
                     "mrr": m.mean(), "mrr_std": m.std(ddof=1), "runs": len(g), "fit_s": fit.mean()})
    table = pd.DataFrame(rows, columns=["model", "variant", "p_at_1", "p_at_1_std", "mrr", "mrr_std", "runs",
                                        "fit_s"])
    key = {m: i for i, m in enumerate(ORDER)}
    vkey = {v: i for i, v in enumerate(VARIANT_LABELS)}
    table["_o"] = [key.get(m, 99) * 10 + vkey.get(v, 9)
                   for m, v in zip(table.model, table.variant, strict=True)]
    return table.sort_values("_o").drop(columns="_o").reset_index(drop=True)


def learning(results):
    """P@1 against training pairs per model (variant full): curve children plus the full-size runs."""
    import pandas as pd

    ok = _done(results)
    ok = ok[ok.variant == "full"]
    curve_models = set(ok[ok.curve.astype(bool)].model)
    ok = ok[ok.model.isin(curve_models)]
    rows = []
    for (model, n), g in ok.groupby(["model", "n_train"], sort=True):
        p = g.test_p_at_1.astype(float)
        rows.append({"model": model, "n_train": int(n), "p_at_1": p.mean(), "p_at_1_std": p.std(ddof=1),
                     "runs": len(g)})
    return pd.DataFrame(rows, columns=["model", "n_train", "p_at_1", "p_at_1_std", "runs"])


def _p(table, model: str, variant: str = "full"):
    row = table[(table.model == model) & (table.variant == variant)]
    return float(row.p_at_1.iloc[0]) if len(row) and not math.isnan(float(row.p_at_1.iloc[0])) else None


def _pct(v):
    return None if v is None else round(100 * v, 1)


def claims(table, rules, candidates: int) -> list[dict]:
    """The paper's shape as claims (P@1 in points, 0-100)."""
    margin, band = float(rules.margin), float(rules.random_band)
    chance = 1.0 / candidates
    out = []
    dm = _p(table, "deepmatch")
    base = {m: _p(table, m) for m in PAPER_BASELINES}
    have = {m: v for m, v in base.items() if v is not None}
    best = max(have, key=have.get) if have else None
    if dm is None or best is None:
        out.append(claim("deepmatch_wins", "DeepMatch ranks true responses first more often than the paper's "
                         "baselines (inner product, PLS, bilinear).", None,
                         f"DeepMatch P@1 >= best of inner product, PLS, bilinear + {100 * margin:g} points",
                         "DeepMatch best of all models on both corpora (Weibo, Yahoo! Answers)",
                         holds=None, why="needs the deepmatch run and at least one of the paper's baselines"))
    else:
        out.append(claim("deepmatch_wins", "DeepMatch ranks true responses first more often than the paper's "
                         "baselines (inner product, PLS, bilinear).",
                         {"deepmatch": _pct(dm), LABELS[best]: _pct(have[best])},
                         f"DeepMatch P@1 >= best of inner product, PLS, bilinear + {100 * margin:g} points",
                         "DeepMatch best of all models on both corpora (Weibo, Yahoo! Answers)",
                         holds=dm >= have[best] + margin))
    ip, rnd = base.get("inner_product"), _p(table, "random")
    ref = rnd if rnd is not None else chance
    if ip is None:
        out.append(claim("inner_product_chance", "On two disjoint vocabularies inner product is no better "
                         "than chance.", None, f"|inner product P@1 - random P@1| <= {100 * band:g} points",
                         "inner product is the weakest model", holds=None, why="needs the inner_product run"))
    else:
        out.append(claim("inner_product_chance", "On two disjoint vocabularies inner product is no better "
                         "than chance.", {"inner product": _pct(ip), "random": _pct(ref)},
                         f"|inner product P@1 - random P@1| <= {100 * band:g} points",
                         "inner product is the weakest model", holds=abs(ip - ref) <= band))
    mid = {m: base[m] for m in ("pls", "bilinear") if base.get(m) is not None}
    if not mid or ip is None or dm is None:
        out.append(claim("latent_between", "The latent-space models (PLS, bilinear) sit between inner "
                         "product and DeepMatch.", None, "inner product < PLS, bilinear < DeepMatch (P@1)",
                         "DeepMatch > bilinear / PLS > inner product", holds=None,
                         why="needs inner_product, deepmatch and pls or bilinear runs"))
    else:
        out.append(claim("latent_between", "The latent-space models (PLS, bilinear) sit between inner "
                         "product and DeepMatch.", {LABELS[m]: _pct(v) for m, v in mid.items()},
                         "inner product < PLS, bilinear < DeepMatch (P@1)",
                         "DeepMatch > bilinear / PLS > inner product",
                         holds=all(ip < v < dm for v in mid.values())))
    variants = {v: _p(table, "deepmatch", v) for v in ("one_resolution", "no_hierarchy")}
    for v, text, paper in (
            ("one_resolution", "Several topic resolutions match better than one.",
             "the paper motivates several resolutions (the hierarchy of localness)"),
            ("no_hierarchy", "The hierarchy (sparse layers wired by patch containment) helps beyond the "
             "local layer alone.", "the paper credits depth (hierarchy) as well as localness")):
        if dm is None or variants[v] is None:
            out.append(claim(f"ablation_{v}", text, None, f"DeepMatch P@1 > {VARIANT_LABELS[v]} P@1", paper,
                             holds=None, why=f"needs the deepmatch run and the {v} ablation"))
        else:
            out.append(claim(f"ablation_{v}", text, {"full": _pct(dm), VARIANT_LABELS[v]: _pct(variants[v])},
                             f"DeepMatch P@1 > {VARIANT_LABELS[v]} P@1", paper, holds=dm > variants[v]))
    de = _p(table, "dual_encoder")
    if de is not None and dm is not None:
        out.append(claim("dual_encoder", "A modern dual encoder (reported beside the paper's models) does "
                         "not beat DeepMatch.", {"deepmatch": _pct(dm), "dual encoder": _pct(de)},
                         "DeepMatch P@1 >= dual encoder P@1", "not in the paper (a later model)",
                         holds=dm >= de))
    return out

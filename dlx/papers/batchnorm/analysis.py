"""The batchnorm sweep's grid and the rules that turn its results table into the paper's claims.

Which lrs are compared is chosen on the seed-mean table: a learning rate is *stable* for a network when no
seed diverged and the seed-mean final test accuracy is >= batchnorm.min_acc (a run that neither diverges
nor learns, e.g. stuck at chance, is not counted as stable; the largest merely non-diverged lr is reported
too). best = highest seed-mean final test accuracy over non-diverged lrs. The matched *small lr* is
batchnorm.small_lr, or by default no-BN's best lr (in the paper, no-BN's best is also its largest trainable
lr, 1e-4). The *large lr* is batchnorm.large_lr, by default the smallest lr above no-BN's largest stable lr
at which BN is stable (the training-curve figure shows BN there too).

How they compare is decided per seed: claims() holds each comparison to a line in batchnorm.rules on the
95% paired t interval of compare(), over the per-seed values analyse() lists under ``per_seed`` (the BN
and no-BN networks of a seed start from the same conv weights, so values pair by seed; a seed missing on
one side drops out). The init probes' claims pair by probed batch instead (probes.py).
"""

from __future__ import annotations

import math

from dlx.errors import DlxError


def grid(sweep) -> dict[str, list]:
    """Validate the sweep block and turn it into the grid (bn, lr, seed)."""
    from dlx.config import positive_floats

    lrs = positive_floats(sweep.lrs, "sweep.lrs")
    bns = list(sweep.bn)
    if not bns or any(not isinstance(b, bool) for b in bns):
        raise DlxError(f"sweep.bn must be a list of true/false, got {bns}")
    if not isinstance(sweep.seeds, int) or sweep.seeds < 1:
        raise DlxError(f"sweep.seeds must be an integer >= 1, got {sweep.seeds}")
    # large lrs first: the no-BN ones diverge fast, and a pool then ends with the long small-lr runs evenly
    return {"model.batchnorm": bns, "optimizer.lr": sorted(set(lrs), reverse=True),
            "seed": list(range(int(sweep.seeds)))}


def check_analysis(a) -> None:
    """Refuse analysis settings that would make the verdict meaningless, in one line each."""
    from dlx.config import number, positive_floats

    positive_floats(a.step_sizes, "batchnorm.step_sizes")
    for key in ("small_lr", "large_lr"):
        if a.get(key) is not None and number(a[key], f"batchnorm.{key}", lo=0) <= 0:
            raise DlxError(f"batchnorm.{key} must be a positive learning rate or null, got {a[key]}")
    if a.get("batch_size") is not None:
        number(a.batch_size, "batchnorm.batch_size", lo=1, integer=True)
    number(a.batches, "batchnorm.batches", lo=1, integer=True)
    number(a.min_acc, "batchnorm.min_acc", lo=0, hi=1)
    check_rules(a.get("rules"))


def check_rules(rules) -> dict[str, float]:
    """batchnorm.rules as numbers within the bounds the record declares (RULES in dlx/papers/batchnorm)."""
    from dlx.config import numbers
    from dlx.papers.batchnorm import RULES

    return numbers(rules, RULES, "batchnorm.rules")


def tidy(results):
    """collect()'s frame -> one row per child: bn, lr, seed, accuracies, diverged and its epoch."""
    import numpy as np

    df = results.rename(columns={"batchnorm": "bn"}).copy()
    df["diverged"] = df.status == "diverged"
    for split in ("train", "test"):
        acc = 1.0 - df[f"{split}_error"].astype(float)
        df[f"{split}_acc"] = acc.where(~df.diverged, np.nan)  # a diverged net has no final accuracy
    return df


def lr_table(df):
    """Per (bn, lr): seed-mean test accuracy, and whether any seed diverged."""
    return (df.groupby(["bn", "lr"]).agg(test_acc=("test_acc", "mean"), train_acc=("train_acc", "mean"),
                                         diverged=("diverged", "any"), runs=("seed", "count"))
            .reset_index().sort_values(["bn", "lr"]))


def analyse(df, small_lr: float | None = None, min_acc: float = 0.5, large_lr: float | None = None) -> dict:
    """Largest stable lr, best accuracy and its lr per network; the matched small lr and BN's large lr;
    the seed-mean gaps between them (descriptive only) and, under ``per_seed``, the per-seed values the
    claims are decided on."""
    table = lr_table(df)
    records = table.astype(object).where(table.notna(), None).to_dict("records")  # NaN is not JSON
    out: dict = {"per_lr": records}
    for bn, tag in ((True, "bn"), (False, "nobn")):
        t = table[(table.bn == bn) & ~table.diverged & table.test_acc.notna()]
        best = t.loc[t.test_acc.idxmax()] if len(t) else None
        useful = t[t.test_acc >= min_acc]
        out[f"{tag}_max_nondiverged_lr"] = float(t.lr.max()) if len(t) else None
        out[f"{tag}_max_stable_lr"] = float(useful.lr.max()) if len(useful) else None
        out[f"{tag}_best_lr"] = float(best.lr) if best is not None else None
        out[f"{tag}_best_test_acc"] = float(best.test_acc) if best is not None else None
        out[f"{tag}_diverged_lrs"] = sorted(table[(table.bn == bn) & table.diverged].lr.tolist())
    a, b = out["bn_max_stable_lr"], out["nobn_max_stable_lr"]
    out["stable_lr_ratio"] = a / b if a and b else None
    if out["bn_best_test_acc"] is not None and out["nobn_best_test_acc"] is not None:
        out["best_gap"] = out["bn_best_test_acc"] - out["nobn_best_test_acc"]
    small = float(small_lr) if small_lr is not None else out["nobn_best_lr"]
    out["small_lr"] = small
    if small is not None:
        at = table[table.lr == small].set_index("bn").test_acc
        bn_acc, nobn_acc = at.get(True), at.get(False)
        out["small_lr_bn_test_acc"] = None if bn_acc is None or bn_acc != bn_acc else float(bn_acc)
        out["small_lr_nobn_test_acc"] = None if nobn_acc is None or nobn_acc != nobn_acc else float(nobn_acc)
        if out["small_lr_bn_test_acc"] is not None and out["small_lr_nobn_test_acc"] is not None:
            out["small_lr_gap"] = out["small_lr_bn_test_acc"] - out["small_lr_nobn_test_acc"]
    out["large_lr"] = float(large_lr) if large_lr is not None else beyond_nobn(table, min_acc, out)
    out["lrs"] = sorted({float(v) for v in df.lr})
    out["min_acc"] = float(min_acc)
    out["per_seed"] = per_seed(df, out, min_acc)
    return out


def per_seed(df, out: dict, min_acc: float) -> dict:
    """Lists in seed order: each network's largest lr at which that seed was stable (did not diverge and
    reached >= min_acc; None: at no lr), and the final test accuracy at the lrs the claims compare (None
    where the run diverged or is missing)."""
    seeds = sorted({int(v) for v in df.seed})

    def acc(bn: bool, lr) -> list:
        rows = df[(df.bn == bn) & (df.lr == lr)].set_index("seed").test_acc if lr is not None else {}
        vals = [rows.get(s) if lr is not None else None for s in seeds]
        return [None if v is None or not math.isfinite(float(v)) else float(v) for v in vals]

    def stable(bn: bool) -> list:  # [] where the network has no runs at all
        if not (df.bn == bn).any():
            return []
        ok = df[(df.bn == bn) & ~df.diverged.astype(bool) & (df.test_acc >= min_acc)]
        top = ok.groupby("seed").lr.max()
        return [float(top[s]) if s in top.index else None for s in seeds]

    return {"seed": seeds, "bn_stable_lr": stable(True), "nobn_stable_lr": stable(False),
            "bn_best": acc(True, out["bn_best_lr"]), "nobn_best": acc(False, out["nobn_best_lr"]),
            "bn_small": acc(True, out.get("small_lr")), "nobn_small": acc(False, out.get("small_lr")),
            "bn_large": acc(True, out.get("large_lr"))}


def _vals(xs, fill: float | None = None) -> list[float]:
    """A per-seed (or per-batch) list with None as NaN (compare drops a pair with a missing side), or as
    ``fill`` where given."""
    return [(math.nan if fill is None else fill) if v is None else float(v) for v in xs]


def _log10(xs) -> list[float]:
    return [math.log10(v) if v > 0 else math.nan for v in xs]  # NaN > 0 is False: NaN stays NaN


def _missing(*xs) -> bool:
    return any(not x or all(v is None for v in x) for x in xs)


def _pct(v):
    return None if v is None else round(100 * v, 1)


def claims(a: dict, init: dict, rules: dict) -> list[dict]:
    """Bjorck et al.'s claims from analyse()'s and init_summary()'s dicts alone: each a compare() of
    per-seed values paired by seed (the init probes': per probed batch, paired by batch) against a line in
    batchnorm.rules (``rules``, see check_rules)."""
    from dlx.claims import claim, compare, rule_text

    ps = a.get("per_seed") or {}
    out = []

    # stable_lr: per seed, BN's largest stable lr over no-BN's, in decades; a network with no stable lr
    # in a seed counts at the grid's smallest lr (a bound that can only shrink BN's lead over no-BN)
    text = "BN makes much larger learning rates trainable"
    paper = "ResNet-110 on CIFAR-10: BN trains at lr 0.1, no-BN only up to about 1e-4"
    what = "BN's largest stable lr / no-BN's, per seed, in decades (log10)"
    note = (f" (stable in a seed: not diverged and test accuracy >= {a.get('min_acc', 0.5):g}; no stable "
            "lr: the grid's smallest)")
    margin = math.log10(rules["stable_lr_ratio"])
    if not (ps.get("bn_stable_lr") and ps.get("nobn_stable_lr") and a.get("lrs")):
        out.append(claim("stable_lr", text, None, f"{what} > {margin:g}", paper,
                         why="the sweep has no results for both networks"))
    else:
        floor = min(a["lrs"])
        t = compare(_log10(_vals(ps["bn_stable_lr"], floor)), _log10(_vals(ps["nobn_stable_lr"], floor)),
                    paired=True, direction="greater", margin=margin)
        r = a.get("stable_lr_ratio")
        out.append(claim("stable_lr", text,
                         {"BN": a.get("bn_max_stable_lr"), "no BN": a.get("nobn_max_stable_lr"),
                          "ratio": None if r is None else round(r, 3)},
                         rule_text(t, what=what) + note, paper, test=t))

    def paired(id, text, paper, x, y, direction, margin, measured, what, why):
        if _missing(x, y):
            line = {"greater": ">", "within": "within ±"}[direction]
            return claim(id, text, None, f"{what} {line} {100 * margin:g} points", paper, why=why)
        t = compare(_vals(x), _vals(y), paired=True, direction=direction, margin=margin)
        return claim(id, text, measured, rule_text(t, what=what, scale=100, unit=" points"), paper, test=t,
                     scale=100)

    out.append(paired("best_accuracy", "with its larger learning rate, BN reaches a higher best accuracy",
                      "93% vs 82% (ResNet-110, CIFAR-10)", ps.get("bn_best"), ps.get("nobn_best"), "greater",
                      rules["best_gain"],
                      {"BN %": _pct(a.get("bn_best_test_acc")), "BN lr": a.get("bn_best_lr"),
                       "no BN %": _pct(a.get("nobn_best_test_acc")), "no BN lr": a.get("nobn_best_lr")},
                      "BN's test accuracy at its best lr - no-BN's at its best lr, per seed",
                      "neither network trained without diverging"))
    small, large = a.get("small_lr"), a.get("large_lr")
    out.append(paired("same_small_lr", "at the same small lr, BN and no-BN are close (the gain is the lr)",
                      "lr 1e-4: BN 81% vs no-BN 82%", ps.get("bn_small"), ps.get("nobn_small"), "within",
                      rules["close_tol"],
                      {"lr": small, "BN %": _pct(a.get("small_lr_bn_test_acc")),
                       "no BN %": _pct(a.get("small_lr_nobn_test_acc"))},
                      "BN - no BN test accuracy at the matched small lr, per seed",
                      "the sweep has no lr at which both networks trained"))
    text = "with BN, the larger lr that only BN trains at beats the small lr"
    paper = "BN: 93% at lr 0.1 vs 81% at 1e-4"
    what = "BN's test accuracy at the large lr - at the small lr, per seed"
    if large is None or small is None or large <= small:
        out.append(claim("large_lr_gain", text, None, f"{what} > {100 * rules['large_lr_gain']:g} points",
                         paper, why="no lr above the matched small lr at which BN is stable"))
    else:
        at = {r["lr"]: r["test_acc"] for r in a.get("per_lr") or [] if r.get("bn")}
        out.append(paired("large_lr_gain", text, paper, ps.get("bn_large"), ps.get("bn_small"), "greater",
                          rules["large_lr_gain"],
                          {"large lr": large, "BN % there": _pct(at.get(large)), "small lr": small,
                           "BN % at small lr": _pct(at.get(small))},
                          what, "BN has no results at one of the two lrs"))
    return out + init_claims(init, rules)


def init_claims(init: dict, rules: dict) -> list[dict]:
    """The init probes' claims: per probed batch, paired by batch (the same batches through the same conv
    weights with and without BN)."""
    from dlx.claims import claim, compare, rule_text

    pb = init.get("per_batch") or {}
    why = "the probes did not run for both networks"

    def decide(id, text, paper, x, y, margin, what, unit, measured, why=why):
        if _missing(x, y):
            return claim(id, text, None, f"{what} > {margin:g}{unit}", paper, why=why)
        t = compare(x, y, paired=True, direction="greater", margin=margin)
        return claim(id, text, measured, rule_text(t, what=what, unit=unit), paper, test=t)

    # a batch on which no step lowered the loss counts at the smallest step size (a bound, as in stable_lr)
    bn, nobn, floor = pb.get("bn_max_eta"), pb.get("nobn_max_eta"), init.get("min_eta")
    ok = bool(bn and nobn) and floor is not None and not all(v is None for v in bn + nobn)
    out = [decide("init_step", "at initialization one large step raises the no-BN loss but not BN's",
                  "no-BN loss rises above a step of ~1e-3, BN's keeps falling up to ~1e-1",
                  _log10(_vals(bn, floor)) if ok else None, _log10(_vals(nobn, floor)) if ok else None,
                  rules["init_step_decades"],
                  "BN's largest loss-lowering step / no-BN's, per batch, in decades (log10)", "",
                  {"BN largest loss-lowering step (median over batches)": init.get("bn_max_eta_loss_falls"),
                   "no BN": init.get("nobn_max_eta_loss_falls")},
                  why="no step lowered the loss for either network")]
    gn, gb = pb.get("nobn_grad_abs_mean"), pb.get("bn_grad_abs_mean")
    g = init.get("grad_ratio_nobn_over_bn")
    ok = not _missing(gn, gb)
    out.append(decide("init_gradients", "without BN, gradients at initialization are larger", "~100x larger",
                      _log10(_vals(gn)) if ok else None, _log10(_vals(gb)) if ok else None,
                      math.log10(rules["grad_ratio"]),
                      "no-BN mean |gradient| / BN's, per batch, middle layer, in decades (log10)", "",
                      {"mean |grad| no BN / BN (first batch)": None if g is None else round(g, 2)}))
    kn, kb = pb.get("nobn_grad_kurtosis"), pb.get("bn_grad_kurtosis")
    ok = not _missing(kn, kb)
    out.append(decide("init_grad_tails", "without BN, gradients at initialization are heavy-tailed",
                      "heavy-tailed (the gradient histograms)", _vals(kn) if ok else None,
                      _vals(kb) if ok else None, rules["kurtosis_gap"],
                      "no-BN excess kurtosis - BN's, per batch, middle layer", "",
                      {"kurtosis BN (first batch)": None if init.get("bn_grad_kurtosis") is None
                       else round(init["bn_grad_kurtosis"], 1),
                       "kurtosis no BN": None if init.get("nobn_grad_kurtosis") is None
                       else round(init["nobn_grad_kurtosis"], 1)}))
    return out


def beyond_nobn(table, min_acc: float, out: dict) -> float | None:
    """The smallest lr above no-BN's largest stable lr at which BN is stable: the lr that shows what BN
    makes possible. BN's best lr when there is none, or when the sweep has no no-BN runs."""
    def stable(t):
        return set(t[~t.diverged & (t.test_acc >= min_acc)].lr)

    nobn_rows = table[table.bn == False]  # noqa: E712
    if not len(nobn_rows):
        return out["bn_best_lr"]
    bn, nobn = stable(table[table.bn == True]), stable(nobn_rows)  # noqa: E712
    beyond = sorted(lr for lr in bn if not nobn or lr > max(nobn))
    return float(beyond[0]) if beyond else out["bn_best_lr"]

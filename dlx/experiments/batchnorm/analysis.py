"""The batchnorm sweep's grid and the rules that turn its results table into the paper's claims.

A learning rate is *stable* for a network when no seed diverged and the seed-mean final test accuracy is
>= analysis.min_acc (a run that neither diverges nor learns, e.g. stuck at chance, is not counted as
stable; the largest merely non-diverged lr is reported too). best = highest seed-mean final test accuracy
over non-diverged lrs. The matched *small lr* is analysis.small_lr, or by default no-BN's best lr (in the
paper, no-BN's best is also its largest trainable lr, 1e-4); the two are *close* when their seed-mean
test accuracies differ by <= analysis.close_tol. The training-curve figure adds BN at analysis.large_lr,
by default the smallest lr above no-BN's largest stable lr at which BN is stable.
"""

from __future__ import annotations

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

    positive_floats(a.step_sizes, "analysis.step_sizes")
    for key in ("small_lr", "large_lr"):
        if a.get(key) is not None and number(a[key], f"analysis.{key}", lo=0) <= 0:
            raise DlxError(f"analysis.{key} must be a positive learning rate or null, got {a[key]}")
    if a.get("batch_size") is not None:
        number(a.batch_size, "analysis.batch_size", lo=1, integer=True)
    number(a.batches, "analysis.batches", lo=1, integer=True)
    number(a.close_tol, "analysis.close_tol", lo=0, hi=1)
    number(a.min_acc, "analysis.min_acc", lo=0, hi=1)


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


def analyse(df, small_lr: float | None = None, close_tol: float = 0.03, min_acc: float = 0.5,
            large_lr: float | None = None) -> dict:
    """Largest stable lr, best accuracy and its lr per network; the matched small-lr comparison; the
    large lr the training-curve figure shows BN at."""
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
    out["bn_best_above_nobn"] = (out["bn_best_test_acc"] is not None and out["nobn_best_test_acc"] is not None
                                 and out["bn_best_test_acc"] > out["nobn_best_test_acc"])
    out.update(best_gap(df, out))
    small = float(small_lr) if small_lr is not None else out["nobn_best_lr"]
    out["small_lr"] = small
    if small is not None:
        at = table[table.lr == small].set_index("bn").test_acc
        bn_acc, nobn_acc = at.get(True), at.get(False)
        out["small_lr_bn_test_acc"] = None if bn_acc is None or bn_acc != bn_acc else float(bn_acc)
        out["small_lr_nobn_test_acc"] = None if nobn_acc is None or nobn_acc != nobn_acc else float(nobn_acc)
        if out["small_lr_bn_test_acc"] is not None and out["small_lr_nobn_test_acc"] is not None:
            out["small_lr_gap"] = out["small_lr_bn_test_acc"] - out["small_lr_nobn_test_acc"]
            out["small_lr_close"] = abs(out["small_lr_gap"]) <= close_tol
    out["large_lr"] = float(large_lr) if large_lr is not None else beyond_nobn(table, min_acc, out)
    out["close_tol"] = close_tol
    return out


def claims(a: dict, init: dict) -> list[dict]:
    """Bjorck et al.'s claims, held to dlx's rules, from the sweep's analysis and the init probes."""
    from dlx.experiments.claims import claim

    def pct(v):
        return None if v is None else round(100 * v, 1)

    r = a.get("stable_lr_ratio")
    out = [claim("stable_lr", "BN makes much larger learning rates trainable",
                 {"BN": a.get("bn_max_stable_lr"), "no BN": a.get("nobn_max_stable_lr"),
                  "ratio": None if r is None else round(r, 3)},
                 "largest stable lr with BN >= 10x the largest without (stable: no seed diverged, "
                 "seed-mean test accuracy >= analysis.min_acc)",
                 "ResNet-110 on CIFAR-10: BN trains at lr 0.1, no-BN only up to about 1e-4",
                 holds=r is not None and r >= 10),
           claim("best_accuracy", "with its larger learning rate, BN reaches a higher best accuracy",
                 {"BN %": pct(a.get("bn_best_test_acc")), "no BN %": pct(a.get("nobn_best_test_acc")),
                  "Welch p": a.get("best_gap_welch_p")},
                 "BN's best seed-mean test accuracy > no-BN's", "93% vs 82% (ResNet-110, CIFAR-10)",
                 holds=bool(a.get("bn_best_above_nobn")))]
    if a.get("small_lr_close") is None:
        out.append(claim("same_small_lr", "at the same small lr, BN and no-BN are close", None,
                         "|BN - no BN| <= analysis.close_tol at no-BN's best lr", "lr 1e-4: 81% vs 82%",
                         why="the sweep has no lr at which both networks trained"))
    else:
        out.append(claim("same_small_lr", "at the same small lr, BN and no-BN are close (the gain is the lr)",
                         {"lr": a.get("small_lr"), "BN %": pct(a.get("small_lr_bn_test_acc")),
                          "no BN %": pct(a.get("small_lr_nobn_test_acc"))},
                         f"|BN - no BN| <= {100 * a.get('close_tol', 0.03):g} points at no-BN's best lr",
                         "lr 1e-4: BN 81% vs no-BN 82%", holds=bool(a["small_lr_close"])))
    bn_eta, nobn_eta = init.get("bn_max_eta_loss_falls"), init.get("nobn_max_eta_loss_falls")
    out.append(claim("init_step", "at initialization one large step raises the no-BN loss but not BN's",
                     {"BN largest loss-lowering step": bn_eta, "no BN": nobn_eta},
                     "BN's largest step that lowers the loss > no-BN's",
                     "no-BN loss rises above a step of ~1e-3, BN's keeps falling up to ~1e-1",
                     holds=None if bn_eta is None or nobn_eta is None else bn_eta > nobn_eta,
                     why="" if bn_eta is not None and nobn_eta is not None else "no step lowered the loss"))
    g = init.get("grad_ratio_nobn_over_bn")
    kb, kn = init.get("bn_grad_kurtosis"), init.get("nobn_grad_kurtosis")
    out.append(claim("init_gradients", "without BN, gradients at initialization are larger and heavy-tailed",
                     {"mean |grad| no BN / BN": None if g is None else round(g, 2),
                      "kurtosis BN": None if kb is None else round(kb, 1),
                      "kurtosis no BN": None if kn is None else round(kn, 1)},
                     "no-BN mean |gradient| > BN's and its kurtosis higher (middle layer)",
                     "~100x larger and heavy-tailed",
                     holds=None if None in (g, kb, kn) else bool(g > 1 and kn > kb),
                     why="" if None not in (g, kb, kn) else "the probes did not run for both networks"))
    return out


def best_gap(df, out: dict) -> dict:
    """BN's best minus no-BN's best seed-mean accuracy, and whether seed noise could explain it: Welch's
    t-test p-value over the per-seed accuracies at the two best lrs (None with fewer than 2 seeds each)."""
    if out["bn_best_test_acc"] is None or out["nobn_best_test_acc"] is None:
        return {}
    from scipy import stats

    a = df[(df.bn == True) & (df.lr == out["bn_best_lr"])].test_acc.dropna()  # noqa: E712
    b = df[(df.bn == False) & (df.lr == out["nobn_best_lr"])].test_acc.dropna()  # noqa: E712
    p = None
    if min(len(a), len(b)) >= 2 and (a.std() > 0 or b.std() > 0):
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return {"best_gap": out["bn_best_test_acc"] - out["nobn_best_test_acc"], "best_gap_welch_p": p}


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

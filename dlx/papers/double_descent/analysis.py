"""Double-descent analysis of a sweep's results table (pure pandas; unit-tested on synthetic curves).

On a test-error curve ordered by width (or by epoch), the *rise* of an interior point p is
err[p] - max(min(err[:p]), min(err[p+1:])): how far it stands above the best error on *both* sides. The
peak of the seed-mean curve is its interior point of largest rise; a monotone curve has no positive rise.
The interpolation threshold is the smallest width whose final train error is <= epsilon.

The claims (:func:`claims`) are decided on per-seed values at the seed-mean curve's peak, each through
:func:`dlx.claims.compare` (a 95% t interval over seeds), with every threshold from
``double_descent.rules`` in the config. The peak is located on the same seeds' mean curve, so the
per-seed rise there is read where the mean curve is highest: the interval says whether the seeds agree
on that peak, not where the peak would be on fresh seeds.
"""

from __future__ import annotations

import math


def rise_at(errors, i: int) -> float:
    """How far point ``i`` of a curve stands above the best error on both sides (interior points only)."""
    errors = [float(v) for v in errors]
    return errors[i] - max(min(errors[:i]), min(errors[i + 1:]))


def curve_stats(widths, test, train, epsilon: float, min_rise: float) -> dict:
    """Threshold, peak and detection (mean rise >= min_rise) on one seed-mean curve (ordered by width)."""
    widths, test, train = list(widths), [float(v) for v in test], [float(v) for v in train]
    threshold = next((w for w, e in zip(widths, train, strict=True) if e <= epsilon), None)
    best_i, best_rise = None, -math.inf
    for i in range(1, len(test) - 1):
        rise = rise_at(test, i)
        if rise > best_rise:
            best_i, best_rise = i, rise
    out = {"threshold_width": threshold, "epsilon": epsilon, "min_rise": min_rise,
           "widest_test_error": test[-1] if test else None,
           "min_test_error": min(test) if test else None, "detected": False, "rise": None, "peak_width": None}
    if best_i is not None:
        before, after = min(test[:best_i]), min(test[best_i + 1:])
        out.update(peak_width=widths[best_i], peak_index=best_i, peak_test_error=test[best_i],
                   peak_train_error=train[best_i], best_before=before,
                   best_before_width=widths[test.index(before)],
                   best_after=after, rise=best_rise, detected=bool(best_rise >= min_rise),
                   peak_over_widest=test[best_i] - test[-1], peak_over_before=test[best_i] - before)
        if threshold:
            out["peak_to_threshold_ratio"] = widths[best_i] / threshold
    return out


def _label(noise, n) -> str:
    return f"noise={noise:g},n={int(n) if n == n and n is not None else 'all'}"


def analyse(results, epsilon: float, min_rise: float) -> dict:
    """Per (label_noise, n_train) curve: seed-mean errors vs width -> curve_stats (the summary's analysis)."""
    ok = results[results.status == "completed"]
    curves = {}
    for (noise, n), g in ok.groupby(["label_noise", "n_train"], dropna=False):
        m = g.groupby("width")[["test_error", "train_error"]].mean().sort_index()
        curves[_label(noise, n)] = {"label_noise": float(noise), "n_train": None if n != n else int(n),
                                    **curve_stats(m.index.tolist(), m.test_error, m.train_error, epsilon,
                                                  min_rise)}
    main = max(curves.values(), key=lambda c: (c["label_noise"], c["n_train"] or 0)) if curves else {}
    return {"curves": curves, "main": main, "detected": bool(main.get("detected")),
            "children": int(len(results)), "completed": int((results.status == "completed").sum()),
            "diverged": int((results.status == "diverged").sum()), "failed": int(results.status.isin(
                ["failed", "missing", "running", "interrupted"]).sum())}


def _setting(df, noise, n):
    """The rows of one (label noise, training-set size) setting; n None/NaN = the whole training split."""
    sub = df[df.label_noise == noise]
    if "n_train" not in sub:
        return sub
    return sub[sub.n_train.isna()] if n is None or n != n else sub[sub.n_train == n]


def _per_seed(rows, axis: str, value: str):
    """A seed x ``axis`` table of ``value``: points no seed has are dropped, then seeds missing a point
    (a failed child), so every row is a whole curve. A table without seeds is one seed."""
    rows = rows.assign(seed=rows.seed if "seed" in rows else 0)
    table = rows.pivot_table(index="seed", columns=axis, values=value, aggfunc="mean").sort_index(axis=1)
    return table.dropna(axis=1, how="all").dropna(axis=0, how="any")


def seed_curves(results, noise, n):
    """Per-seed final test and train error vs width for one setting (completed children only)."""
    ok = _setting(results[results.status == "completed"], noise, n)
    test, train = _per_seed(ok, "width", "test_error"), _per_seed(ok, "width", "train_error")
    seeds = test.index.intersection(train.index)
    widths = test.columns.intersection(train.columns)
    return test.loc[seeds, widths], train.loc[seeds, widths]


def settings(results) -> dict[float, object]:
    """label noise -> its largest training-set size (None = the whole split), noise ascending."""
    ok = results[results.status == "completed"]
    out = {}
    for noise, g in ok.groupby("label_noise"):
        sizes = g.n_train.dropna() if "n_train" in g else []
        out[float(noise)] = int(sizes.max()) if len(sizes) else None
    return dict(sorted(out.items()))


def peak_rises(results, noise, n) -> dict | None:
    """The seed-mean curve's peak for one setting and every seed's rise there (None: < 3 widths)."""
    test, train = seed_curves(results, noise, n)
    if test.shape[1] < 3 or not len(test):
        return None
    widths = [int(w) for w in test.columns]
    mean = test.mean(axis=0).tolist()
    i = max(range(1, len(mean) - 1), key=lambda j: rise_at(mean, j))
    return {"label_noise": noise, "n_train": n, "widths": widths, "seeds": [int(s) for s in test.index],
            "peak_index": i, "peak_width": widths[i], "mean": mean, "mean_train": train.mean(axis=0).tolist(),
            "rises": [rise_at(row, i) for row in test.to_numpy().tolist()],
            "widest": test.iloc[:, -1].tolist(), "best_before": test.iloc[:, :i].min(axis=1).tolist(),
            "train": train.to_numpy().tolist()}


def epochwise(curves, width, noise, n, min_rise: float) -> dict | None:
    """Epoch-wise double descent at one width and setting: the interior-bump rule over evaluated epochs,
    the peak epoch from the seed-mean curve and every seed's rise there (None: < 3 epochs)."""
    if curves is None or not len(curves) or width is None or "epoch" not in curves:
        return None
    sub = _setting(curves, noise, n)
    sub = sub[sub.width == width]
    if not len(sub):
        return None
    table = _per_seed(sub, "epoch", "test_error")
    if table.shape[1] < 3 or not len(table):
        return None
    epochs, mean = [int(e) for e in table.columns], table.mean(axis=0).tolist()
    i = max(range(1, len(mean) - 1), key=lambda j: rise_at(mean, j))
    return {"width": width, "label_noise": noise, "n_train": n, "rise": rise_at(mean, i),
            "detected": bool(rise_at(mean, i) >= min_rise), "peak_epoch": epochs[i], "epochs": epochs,
            "final": float(mean[-1]), "seeds": [int(s) for s in table.index],
            "rises": [rise_at(row, i) for row in table.to_numpy().tolist()]}


PAPER = {
    "model_wise": "ResNet18 on CIFAR-10, 20% noise: 24.6% (k=3) -> 34.6% (k=12) -> 19.6% (k=64); MNIST-1D "
                  "MLP notebook: 47.2% (h=16) -> 54.1% (h=47) -> 45.5% (h=300)",
    "peak_at_threshold": "the peak is at the interpolation threshold (effective model complexity ~ n)",
    "second_descent": "ResNet18: 19.6% widest vs 24.6% before the peak; MNIST-1D: 45.5% vs 47.2%",
    "noise_grows_peak": "CIFAR-10: the peak grows from 0% to 10% to 20% label noise",
    "epoch_wise": "4K-epoch ResNet18 runs near the threshold: descent, rise, then a second descent",
}


TEXT = {
    "model_wise": "test error falls, rises near the interpolation threshold, falls again",
    "peak_at_threshold": "the peak sits at the interpolation threshold",
    "second_descent": "the widest models beat the best small ones",
    "noise_grows_peak": "the peak grows with label noise",
    "epoch_wise": "near the threshold, test error falls, rises and falls again over epochs",
}


def pct(v):
    return None if v is None else round(100 * v, 1)


def _points(values) -> list:
    return [round(100 * v, 2) for v in values]


def claims(results, curves, rules) -> list[dict]:
    """Nakkiran et al.'s claims, decided on per-seed values: a pure function of the sweep's results table
    (width, label_noise, n_train, seed, train_error, test_error, status), its curves table (the same keys
    and epoch; may be None) and the ``rules`` block (epsilon, min_rise, peak_factor, second_descent,
    noise_rise, epoch_min_rise; error fractions)."""
    from dlx.claims import claim, compare, rule_text

    eps, min_rise = float(rules["epsilon"]), float(rules["min_rise"])
    by_noise = settings(results)
    if not by_noise:
        return [claim(i, TEXT[i], None, "decided on per-seed values at the seed-mean curve's peak", PAPER[i],
                      why="no completed children") for i in PAPER]
    noise = max(by_noise)
    n = by_noise[noise]
    p = peak_rises(results, noise, n)
    text = TEXT["model_wise"]
    what = ("per-seed rise at the mean curve's peak width (its error there minus the larger of its best "
            "errors on either side)")
    if p is None:
        why = "fewer than 3 widths with a completed seed"
        out = [claim("model_wise", text, None, f"{what} > {100 * min_rise:g} points", PAPER["model_wise"],
                     why=why)]
        out.append(claim("peak_at_threshold", TEXT["peak_at_threshold"], None,
                         f"peak width within a factor of {float(rules['peak_factor']):g} of each seed's "
                         "interpolation threshold", PAPER["peak_at_threshold"], why=why))
        out.append(claim("second_descent", TEXT["second_descent"], None,
                         "per-seed widest error minus best error before the peak < "
                         f"{100 * float(rules['second_descent']):g} points", PAPER["second_descent"],
                         why=why))
    else:
        i = p["peak_index"]
        t = compare(p["rises"], direction="greater", margin=min_rise)
        before = min(p["mean"][:i])
        model_wise = claim(
            "model_wise", text,
            {"best narrow %": pct(before), "at width": p["widths"][p["mean"].index(before)],
             "peak %": pct(p["mean"][i]), "peak width": p["peak_width"], "widest %": pct(p["mean"][-1]),
             "per-seed rise (points)": _points(p["rises"])},
            rule_text(t, what=what, scale=100, unit=" points") + f" ({len(p['rises'])} seeds)",
            PAPER["model_wise"], test=t, scale=100)
        out = [model_wise, _peak_at_threshold(p, model_wise["verdict"], eps, float(rules["peak_factor"]))]
        t = compare(p["widest"], p["best_before"], direction="less", margin=float(rules["second_descent"]),
                    paired=True)
        out.append(claim("second_descent", TEXT["second_descent"],
                         {"widest %": pct(p["mean"][-1]), "best narrow %": pct(before),
                          "per-seed widest - best before the peak (points)":
                              _points(w - b for w, b in zip(p["widest"], p["best_before"], strict=True))},
                         rule_text(t, what="per-seed widest error minus the seed's best error at widths "
                                   "below the mean curve's peak", scale=100, unit=" points"),
                         PAPER["second_descent"], test=t, scale=100))
    out.append(_noise_grows_peak(results, by_noise, float(rules["noise_rise"])))
    out.append(_epoch_wise(curves, p, float(rules["epoch_min_rise"])))
    return out


def _peak_at_threshold(p: dict, model_wise: str, eps: float, factor: float) -> dict:
    """log2(peak width / each seed's threshold width) within ±log2(factor), decided over seeds."""
    from dlx.claims import claim, compare, rule_text

    text = TEXT["peak_at_threshold"]
    thresholds = [next((w for w, e in zip(p["widths"], row, strict=True) if e <= eps), None)
                  for row in p["train"]]
    reached = [w for w in thresholds if w is not None]
    rule = (f"log2(peak width / each seed's interpolation threshold, the smallest width with train error <= "
            f"{100 * eps:g}%) within ±log2({factor:g})")
    measured = {"peak width": p["peak_width"], "seed thresholds": [w if w else "none" for w in thresholds]}
    if model_wise != "holds":
        return claim("peak_at_threshold", text, measured, rule, PAPER["peak_at_threshold"],
                     why=f"no peak established (model_wise {model_wise})")
    if not reached:
        return claim("peak_at_threshold", text, measured, rule, PAPER["peak_at_threshold"],
                     why=f"no seed's train error reaches {100 * eps:g}% at any width")
    logs = [math.log2(p["peak_width"] / w) if w else math.nan for w in thresholds]
    t = compare(logs, direction="within", margin=math.log2(factor))
    measured["ratio"] = round(2 ** t["estimate"], 2)
    why = "" if len(reached) == len(thresholds) else \
        f"{len(thresholds) - len(reached)} seed(s) never interpolate (left out)"
    return claim("peak_at_threshold", text, measured,
                 rule_text(t, what=f"log2(peak width / each seed's interpolation threshold, the smallest "
                           f"width with train error <= {100 * eps:g}%)") + f" (= a factor of {factor:g})",
                 PAPER["peak_at_threshold"], test=t, why=why)


def _noise_grows_peak(results, by_noise: dict, margin: float) -> dict:
    """Per-seed rise at the highest noise minus at the lowest, paired by seed, each at its own curve's
    peak."""
    from dlx.claims import claim, compare, rule_text

    text, rule = TEXT["noise_grows_peak"], \
        f"per-seed rise at the highest label noise minus at the lowest > {100 * margin:g} points"
    peaks = {k: peak_rises(results, k, n) for k, n in by_noise.items()}
    peaks = {k: v for k, v in peaks.items() if v is not None}
    measured = {f"noise {k:g}": pct(sum(v["rises"]) / len(v["rises"])) for k, v in peaks.items()} or None
    if len(peaks) < 2:
        return claim("noise_grows_peak", text, measured, rule, PAPER["noise_grows_peak"],
                     why="one label-noise level swept (sweep.label_noise=[0.0,0.15])")
    lo, hi = peaks[min(peaks)], peaks[max(peaks)]
    seeds = sorted(set(lo["seeds"]) & set(hi["seeds"]))
    a = [hi["rises"][hi["seeds"].index(s)] for s in seeds]
    b = [lo["rises"][lo["seeds"].index(s)] for s in seeds]
    t = compare(a, b, direction="greater", margin=margin, paired=True)
    return claim("noise_grows_peak", text, measured,
                 rule_text(t, what=f"per-seed rise at noise {max(peaks):g} minus at noise {min(peaks):g} "
                           "(each at its own mean curve's peak width)", scale=100, unit=" points"),
                 PAPER["noise_grows_peak"], test=t, scale=100)


def _epoch_wise(curves, p: dict | None, min_rise: float) -> dict:
    from dlx.claims import claim, compare, rule_text

    text = TEXT["epoch_wise"]
    rule = f"per-seed rise at the mean epoch curve's peak epoch > {100 * min_rise:g} points (peak width)"
    e = None if p is None else epochwise(curves, p["peak_width"], p["label_noise"], p["n_train"], min_rise)
    if e is None:
        return claim("epoch_wise", text, None, rule, PAPER["epoch_wise"],
                     why="no per-epoch curves with 3 or more evaluated epochs at the peak width")
    t = compare(e["rises"], direction="greater", margin=min_rise)
    return claim("epoch_wise", text,
                 {"width": e["width"], "peak epoch": e["peak_epoch"],
                  "per-seed rise (points)": _points(e["rises"]), "final %": pct(e["final"])},
                 rule_text(t, what=f"per-seed rise at the mean epoch curve's peak epoch (width {e['width']})",
                           scale=100, unit=" points"),
                 PAPER["epoch_wise"], test=t, scale=100,
                 why="" if t["verdict"] != "fails" else
                 "no second descent within the trained epochs (the paper trains 4K epochs)")

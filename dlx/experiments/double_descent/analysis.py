"""Double-descent analysis of a sweep's results table (pure pandas; unit-tested on synthetic curves).

On the seed-mean final test error vs width, the *rise* of an interior width p is
err[p] - max(min(err[:p]), min(err[p+1:])): how far it stands above the best error on *both* sides.
The peak is the width of largest rise; a double descent is detected when that rise >= min_rise. A
monotone curve has no positive rise, so it has no peak. The interpolation threshold is the smallest
width whose seed-mean final train error is <= epsilon.
"""

from __future__ import annotations

import math


def curve_stats(widths, test, train, epsilon: float = 0.1, min_rise: float = 0.02) -> dict:
    """Threshold, peak and detection on one seed-mean curve (arrays ordered by width)."""
    widths, test, train = list(widths), [float(v) for v in test], [float(v) for v in train]
    threshold = next((w for w, e in zip(widths, train, strict=True) if e <= epsilon), None)
    best_i, best_rise = None, -math.inf
    for i in range(1, len(test) - 1):
        rise = test[i] - max(min(test[:i]), min(test[i + 1:]))
        if rise > best_rise:
            best_i, best_rise = i, rise
    out = {"threshold_width": threshold, "epsilon": epsilon, "min_rise": min_rise,
           "widest_test_error": test[-1] if test else None,
           "min_test_error": min(test) if test else None, "detected": False, "rise": None, "peak_width": None}
    if best_i is not None:
        before, after = min(test[:best_i]), min(test[best_i + 1:])
        out.update(peak_width=widths[best_i], peak_test_error=test[best_i], peak_train_error=train[best_i],
                   best_before=before, best_before_width=widths[test.index(before)], best_after=after,
                   rise=best_rise, detected=bool(best_rise >= min_rise),
                   peak_over_widest=test[best_i] - test[-1], peak_over_before=test[best_i] - before)
        if threshold:
            out["peak_to_threshold_ratio"] = widths[best_i] / threshold
    return out


def analyse(results, epsilon: float = 0.1, min_rise: float = 0.02) -> dict:
    """Per (label_noise, n_train) curve: seed-mean errors vs width -> curve_stats."""
    ok = results[results.status == "completed"]
    curves = {}
    for (noise, n), g in ok.groupby(["label_noise", "n_train"], dropna=False):
        m = g.groupby("width")[["test_error", "train_error"]].mean().sort_index()
        key = f"noise={noise:g},n={int(n) if n == n else 'all'}"
        curves[key] = {"label_noise": float(noise), "n_train": None if n != n else int(n),
                       **curve_stats(m.index.tolist(), m.test_error, m.train_error, epsilon, min_rise)}
    main = max(curves.values(), key=lambda c: (c["label_noise"], c["n_train"] or 0)) if curves else {}
    return {"curves": curves, "main": main, "detected": bool(main.get("detected")),
            "children": int(len(results)), "completed": int((results.status == "completed").sum()),
            "diverged": int((results.status == "diverged").sum()), "failed": int(results.status.isin(
                ["failed", "missing", "running", "interrupted"]).sum())}


def epochwise(curves, width, min_rise: float = 0.02) -> dict | None:
    """Epoch-wise double descent at one width (the main curve's noisiest, largest-n setting): the same
    interior-bump rule applied to seed-mean test error over the evaluated epochs."""
    if curves is None or not len(curves) or width is None:
        return None
    sub = curves[(curves.label_noise == curves.label_noise.max()) & (curves.width == width)]
    if "n_train" in sub and sub.n_train.notna().any():
        sub = sub[sub.n_train == sub.n_train.max()]
    m = sub.groupby("epoch")[["test_error", "train_error"]].mean().sort_index()
    if len(m) < 3:
        return None
    stats = curve_stats(m.index.tolist(), m.test_error, m.train_error, 0.0, min_rise)
    return {"width": width, "rise": stats["rise"], "detected": stats["detected"],
            "peak_epoch": stats["peak_width"], "final": float(m.test_error.iloc[-1])}


PAPER = {
    "model_wise": "ResNet18 on CIFAR-10, 20% noise: 24.6% (k=3) -> 34.6% (k=12) -> 19.6% (k=64); MNIST-1D "
                  "MLP notebook: 47.2% (h=16) -> 54.1% (h=47) -> 45.5% (h=300)",
    "second_descent": "ResNet18: 19.6% widest vs 24.6% before the peak; MNIST-1D: 45.5% vs 47.2%",
    "noise_grows_peak": "CIFAR-10: the peak grows from 0% to 10% to 20% label noise",
    "epoch_wise": "4K-epoch ResNet18 runs near the threshold: descent, rise, then a second descent",
}


def pct(v):
    return None if v is None else round(100 * v, 1)


def largest_n_per_noise(curves: dict) -> dict[float, dict]:
    out: dict[float, dict] = {}
    for c in curves.values():
        if c.get("rise") is None:
            continue
        old = out.get(c["label_noise"])
        if old is None or (c["n_train"] or 0) > (old["n_train"] or 0):
            out[c["label_noise"]] = c
    return dict(sorted(out.items()))


def claims(a: dict, epoch: dict | None) -> list[dict]:
    """Nakkiran et al.'s claims held to dlx's rules, from analyse() and epochwise()."""
    from dlx.experiments.claims import claim

    m = a.get("main") or {}
    bump = f">= {100 * m.get('min_rise', 0.02):g} points above the best error on both sides"
    text = "test error falls, rises near the interpolation threshold, falls again"
    if not m.get("peak_width"):
        return [claim("model_wise", text, None, f"an interior width {bump}", PAPER["model_wise"],
                      why="fewer than 3 widths")]
    out = [claim("model_wise", text,
                 {"best narrow %": pct(m["best_before"]), "at width": m["best_before_width"],
                  "peak %": pct(m["peak_test_error"]), "peak width": m["peak_width"],
                  "widest %": pct(m["widest_test_error"])},
                 f"an interior width's seed-mean test error {bump}", PAPER["model_wise"],
                 holds=bool(m["detected"]))]
    thr, ratio = m.get("threshold_width"), m.get("peak_to_threshold_ratio")
    shown = bool(thr and m["detected"])
    out.append(claim("peak_at_threshold", "the peak sits at the interpolation threshold",
                     {"peak width": m["peak_width"], "threshold width": thr,
                      "ratio": None if ratio is None else round(ratio, 2)},
                     f"peak width within a factor of 2 of the smallest width with train error <= "
                     f"{100 * m.get('epsilon', 0.1):g}%", "the peak is at the interpolation threshold",
                     holds=0.5 <= ratio <= 2 if shown else None,
                     why="" if shown else "no peak detected" if thr else "no width reaches the threshold"))
    out.append(claim("second_descent", "the widest models beat the best small ones",
                     {"widest %": pct(m["widest_test_error"]), "best narrow %": pct(m["best_before"])},
                     "widest seed-mean test error < the best error before the peak", PAPER["second_descent"],
                     holds=m["widest_test_error"] < m["best_before"]))
    by_noise = largest_n_per_noise(a.get("curves", {}))
    rises = [c["rise"] for c in by_noise.values()]
    grows = all(b > x for x, b in zip(rises, rises[1:], strict=False))
    out.append(claim("noise_grows_peak", "the peak grows with label noise",
                     {f"noise {k:g}": pct(c["rise"]) for k, c in by_noise.items()} or None,
                     "the rise at the peak (points) increases with label noise", PAPER["noise_grows_peak"],
                     holds=grows if len(rises) > 1 else None,
                     why="" if len(rises) > 1 else "one noise level swept (sweep.label_noise=[0.0,0.1,0.2])"))
    text = "near the threshold, test error falls, rises and falls again over epochs"
    if epoch is None:
        out.append(claim("epoch_wise", text, None, "the interior-bump rule over evaluated epochs",
                         PAPER["epoch_wise"], why="fewer than 3 evaluated epochs"))
    else:
        out.append(claim("epoch_wise", text,
                         {"width": epoch["width"], "rise points": pct(epoch["rise"]),
                          "final %": pct(epoch["final"])},
                         f"an interior epoch's test error {bump} (at the peak width)", PAPER["epoch_wise"],
                         holds=bool(epoch["detected"]),
                         why="" if epoch["detected"] else "no second descent within the trained epochs (the "
                                                          "paper trains 4K epochs)"))
    return out

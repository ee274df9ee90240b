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

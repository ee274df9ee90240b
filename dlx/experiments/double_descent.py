"""Deep double descent (Nakkiran et al. 2019): a sweep over width x label noise x training-set size x
seed. Every child is an ordinary train run evaluated at log-spaced epochs, so one sweep yields the
model-wise, epoch-wise and sample-wise views.

Detection (documented in docs/reproductions.md, unit-tested): on the seed-mean final test error vs
width, the *rise* of an interior width p is err[p] - max(min(err[:p]), min(err[p+1:])) — how far it
stands above the best error on *both* sides. The peak is the width of largest rise; a double descent
is detected when that rise >= analysis.min_rise. A monotone curve has no positive rise.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv

CONFIG = "sweep_double_descent"
GRID_KEYS = ("model.width", "data.label_noise", "data.n_train", "seed")
SWEPT_BY = {"model.width": "set sweep.widths=[...]", "data.label_noise": "set sweep.label_noise=[...]",
            "data.n_train": "set sweep.n_train=[...]", "seed": "set sweep.seeds=N (seeds 0..N-1)"}
TABLE_COLUMNS = ["width", "label_noise", "n_train", "seed", "params", "train_error", "test_error", "status",
                 "wall_s"]


def grid(sweep) -> dict[str, list]:
    """Validate the sweep block and turn it into the grid over GRID_KEYS."""
    widths = list(sweep.widths)
    if not widths:
        raise DlxError("sweep.widths is empty: give at least one width, e.g. sweep.widths=[4,8,16]")
    if any((not isinstance(w, int)) or w < 1 for w in widths):
        raise DlxError(f"sweep.widths must be positive integers, got {widths}")
    noise = list(sweep.label_noise)
    if not noise or any(not (0.0 <= float(p) < 1.0) for p in noise):
        raise DlxError(f"sweep.label_noise values must lie in [0, 1), got {noise}")
    n_train = list(sweep.n_train) or [None]
    if any(n is not None and (not isinstance(n, int) or n < 1) for n in n_train):
        raise DlxError(f"sweep.n_train values must be positive integers or null, got {n_train}")
    if int(sweep.seeds) < 1:
        raise DlxError(f"sweep.seeds must be >= 1, got {sweep.seeds}")
    # widest first: the longest children start first, so a process pool finishes evenly
    return {"model.width": sorted(widths, reverse=True), "data.label_noise": noise, "data.n_train": n_train,
            "seed": list(range(int(sweep.seeds)))}


def curve_stats(widths, test, train, epsilon: float = 0.1, min_rise: float = 0.02) -> dict:
    """Threshold, peak and detection on one seed-mean curve (arrays ordered by width)."""
    widths, test, train = list(widths), [float(v) for v in test], [float(v) for v in train]
    threshold = next((w for w, e in zip(widths, train, strict=True) if e <= epsilon), None)
    best_i, best_rise = None, -math.inf
    for i in range(1, len(test) - 1):
        rise = test[i] - max(min(test[:i]), min(test[i + 1:]))
        if rise > best_rise:
            best_i, best_rise = i, rise
    out = {"threshold_width": threshold, "epsilon": epsilon, "widest_test_error": test[-1] if test else None,
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


def children(cfg):
    from dlx.sweep import expand

    return expand(grid(cfg.sweep))


def run(cfg, run: Run):
    from dlx.sweep.driver import run_sweep

    return run_sweep(cfg, run, sys.modules[__name__])


def finalize(cfg, run: Run, children):
    """Collect the children, analyse, write results.csv / curves.csv / summary.json and the figures."""
    from dlx.sweep import collect
    from dlx.sweep.execute import DONE

    results, curves = collect(run.dir, children)
    write_csv(run.path("results.csv"), results)
    write_csv(run.path("curves.csv"), curves)
    analysis = analyse(results, float(cfg.analysis.epsilon), float(cfg.analysis.min_rise))
    done = results.status.isin(DONE).all()
    run.summary("completed" if done else "failed", analysis["main"], analysis=analysis,
                model=cfg.model.name, data=cfg.data.name)
    plot(run.dir)
    return results.sort_values(["label_noise", "n_train", "width", "seed"])


def headline(summary: dict) -> str:
    m = summary.get("metrics", {})
    if summary.get("status") == "running" or not m:
        return f"double descent: {summary.get('status')}"
    thr = m.get("threshold_width")
    where = f"interpolation threshold at width {thr}" if thr else "no width reaches train error <= epsilon"
    if not m.get("peak_width"):
        return f"double descent: not detected (fewer than 3 widths); {where}"
    verdict = "detected" if m.get("detected") else "not detected"
    return (f"double descent: {verdict} — test error {100 * m['best_before']:.1f}% at width "
            f"{m['best_before_width']} -> peak {100 * m['peak_test_error']:.1f}% at width "
            f"{m['peak_width']} -> {100 * m['widest_test_error']:.1f}% at the widest; {where}")


def plot(run_dir: Path) -> list[Path]:
    from dlx.plots.double_descent import plot_sweep

    return plot_sweep(Path(run_dir))

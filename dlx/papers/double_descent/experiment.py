"""Deep double descent (Nakkiran et al. 2019): a sweep over width x label noise x training-set size x
seed. Every child is an ordinary train run evaluated at log-spaced epochs, so one sweep yields the
model-wise, epoch-wise and sample-wise views. The peak and threshold rules are in analysis.py.
"""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run


def grid(sweep) -> dict[str, list]:
    """Validate the sweep block and turn it into the grid (width, label noise, n_train, seed)."""
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


def children(cfg):
    from dlx.sweep import expand

    return expand(grid(cfg.sweep))


def finalize(cfg, run: Run, children):
    """Collect the children, analyse, write results.csv / curves.csv / summary.json and the figures."""
    from dlx.papers.double_descent.analysis import analyse, claims, epochwise
    from dlx.sweep import collect
    from dlx.sweep.driver import finish

    results, curves = collect(run.dir, children)
    rules = cfg.double_descent.rules
    analysis = analyse(results, float(rules.epsilon), float(rules.min_rise))
    main = analysis["main"]
    epoch = epochwise(curves, main.get("peak_width"), main.get("label_noise"), main.get("n_train"),
                      float(rules.epoch_min_rise))
    finish(run, results, main, curves=curves, analysis=analysis,
           claims=claims(results, curves, rules), epochwise=epoch, model=cfg.model.name, data=cfg.data.name)
    return results.sort_values(["label_noise", "n_train", "width", "seed"])


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.double_descent.plots import plot_sweep

    return plot_sweep(Path(run_dir))

"""The `--estimate` hook of a baseline fit (dlx/estimate.py fit_cost reaches it through the fit kind's
record): how the fit and the scoring of one shape grow with its training rows and its rounds."""

from __future__ import annotations

import time


def time_fit(cfg, data) -> dict:
    """How a baseline's fit and scoring cost grow. The fit is timed on FIT_SIZES training rows (fewer when
    the data has fewer) and modelled as a fixed part plus a part per row; a boosted ensemble is timed at
    FIT_ROUNDS rounds, which separates what it does once (binning the features) from what it does per round
    (a tree grown), and scaled to its own rounds. Scoring is timed on SCORE_ROWS test rows (per round, for
    an ensemble: a tree read per row)."""
    import numpy as np
    from omegaconf import OmegaConf

    from dlx.estimate import FIT_ROUNDS, FIT_SIZES, SCORE_ROWS, _Head, rss_mb
    from dlx.kinds.fit.estimators import ROUNDS, SCORE_BATCH, Predictor, arrays, build_estimator
    from dlx.tasks import build_task
    from dlx.train.evaluate import evaluate

    task = build_task(cfg.task, data.meta)
    key = ROUNDS.get(str(cfg.baseline.get("name")))
    rounds = int(cfg.baseline[key]) if key else 1
    points = [r for r in FIT_ROUNDS if r < rounds] if key else []
    points = points if len(points) == 2 else [rounds]  # few rounds: timed as they are
    x, y = arrays(data.train)
    order = np.random.default_rng(0).permutation(len(x))
    sizes = sorted({min(len(x), s) for s in FIT_SIZES})
    costs, est = [], None
    for size in sizes:
        rows = np.sort(order[:size])
        seconds = []
        for r in points:
            est = build_estimator(OmegaConf.merge(cfg.baseline, {key: r}) if key else cfg.baseline,
                                  task.name, int(cfg.seed))
            t = time.perf_counter()
            est.fit(x[rows], y[rows])
            seconds.append(time.perf_counter() - t)
        if len(points) == 2:
            per_round = max((seconds[1] - seconds[0]) / (points[1] - points[0]), 0.0)
            costs.append(max(seconds[0] - per_round * points[0], 0.0) + per_round * rounds)
        else:
            costs.append(seconds[0])
    if len(sizes) == 2:
        row_s = max((costs[1] - costs[0]) / (sizes[1] - sizes[0]), 0.0)
        fixed_s = max(costs[0] - row_s * sizes[0], 0.0)
    else:  # fewer rows than the smaller size: all of its cost per row
        row_s, fixed_s = costs[0] / sizes[0], 0.0
    split = data.test if len(data.test) else data.train
    head = _Head(split, SCORE_ROWS, 1) if len(split) > SCORE_ROWS else split  # one predict call's worth
    model = Predictor(est, task.name, data.meta.num_classes)
    t = time.perf_counter()
    evaluate(model, task, head, min(SCORE_ROWS, SCORE_BATCH))
    score_s = (time.perf_counter() - t) / max(len(head), 1) * rounds / points[-1]
    note = f"; {' and '.join(map(str, points))} of {rounds} rounds, scaled" if points[-1] < rounds else ""
    return {"fixed_s": fixed_s, "row_s": row_s, "score_s": score_s, "sizes": sizes, "rounds_note": note,
            "peak_mb": rss_mb()}

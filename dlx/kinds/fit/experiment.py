"""`dlx fit`: a non-torch baseline fit on a dlx dataset under a dlx task, with a train run's contract
(config.yaml, metrics.csv with one row of <split>_<metric> columns, summary.json with the same metric
names and best_<split>_<primary>), so sweeps collect baselines and networks into one table."""

from __future__ import annotations

import time
from pathlib import Path

from dlx.kinds.fit.cost import time_fit  # noqa: F401  (the --estimate hook: dlx/estimate.py fit_cost)
from dlx.runs import Run, write_csv


def run(cfg, run: Run) -> dict:
    import pandas as pd

    from dlx import threads
    from dlx.build import final_metrics
    from dlx.data import build_data
    from dlx.kinds.fit.estimators import SCORE_BATCH, Predictor, arrays, build_estimator
    from dlx.tasks import build_task
    from dlx.train import evaluate
    from dlx.train.evaluate import save_predictions, write_predictions

    with run.recording():
        n, why = threads.choose("auto")  # no torch model to measure: the free cores (within a sweep's cap)
        threads.apply(n)
        run.env["threads_rule"] = why
        data = build_data(cfg.data, device="cpu")
        task = build_task(cfg.task, data.meta)
        est = build_estimator(cfg.baseline, task.name, int(cfg.seed))
        run.summary("running", device="cpu", baseline=cfg.baseline.name, data=cfg.data.name,
                    n_train=len(data.train), params=None, **task.describe())
        t0 = time.perf_counter()
        est.fit(*arrays(data.train))
        fit_s = time.perf_counter() - t0
        model = Predictor(est, task.name, data.meta.num_classes)
        row = {"epoch": 1}
        # false in a dlx tune trial: the test split is never read (a paper's fit child: its trainer's key)
        test = bool(cfg.get("eval_test", (cfg.get("trainer") or {}).get("eval_test", True)))
        saved = [str(s) for s in cfg.task.get("save_predictions") or [] if s != "test" or test]
        scored = [s for s in ("train", "val", "test") if (s != "val" or data.val is not None) and
                  (s != "test" or test)]
        outputs: dict[str, dict] = {}
        for split in scored:  # one pass per split: its metrics, and its predictions where they are saved
            got = outputs[split] = {} if split in saved else None
            row.update({f"{split}_{k}": v for k, v in evaluate(model, task, data.split(split), SCORE_BATCH,
                                                               per_example=got).items()})
        row["wall_s"] = round(fit_s, 3)
        write_csv(run.path("metrics.csv"), pd.DataFrame([row]))
        for split, got in outputs.items():
            write_predictions(run, split, got or {})
        save_predictions(run, model, task, data, [s for s in saved if s not in outputs], SCORE_BATCH)
        return run.summary("completed", final_metrics([row], task), fit_wall_s=round(fit_s, 3),
                           estimator=repr(est))


def plot(run_dir: Path) -> list[Path]:
    """A fit has no training curve: its table is the result."""
    return []

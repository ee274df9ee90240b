"""`dlx forecast`: train (or fit) one forecaster on a panel of series and write its forecasts.

The run has a train run's contract (config.yaml, metrics.csv, checkpoint.pt, summary.json with
``test_<metric>`` and ``best_test_<primary>``), so sweeps collect it like any child, plus:

- ``forecasts.csv``: one row per series, rolling window and step of the test windows: item_id, timestamp,
  window, step, target and the quantiles (p5, p10, p50, p90, p95 by default);
- ``actuals.csv``: the plotted series' history before the forecast start and their truth after it;
- ``components.csv`` (models that expose ``decompose``, i.e. DeepState): the learned level and seasonal
  contributions, residual, noise sd and innovation strengths over the first window's context and horizon;
- ``skipped_series.csv`` when series were too short for the context;
- figures: ``fan_chart.png``, ``components.png``, ``learning_curves.png`` (trained models).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import Run, write_csv


def check_settings(cfg) -> None:
    """Settings a forecast run refuses before building anything."""
    if cfg.trainer.get("resume"):
        raise DlxError("dlx forecast runs start fresh (trainer.resume=true is for dlx train); a "
                       "dlx reproduce deepstate sweep re-run with the same --name resumes its children")
    if str(cfg.task.name) != "forecast":
        raise DlxError(f"dlx forecast needs task=forecast, got task={cfg.task.name}")
    n = cfg.get("plot", {}).get("series", 4) if cfg.get("plot") is not None else 4
    from dlx.config import number

    number(n, "plot.series", lo=0, integer=True)


def index_of(meta):
    """The panel's PeriodIndex (time index -> period) from the bundle's metadata."""
    import pandas as pd

    from dlx.forecast.time import grid, parse_freq

    freq = parse_freq(meta.extra["freq"])
    return grid(pd.Period(meta.extra["start"], freq=freq.period), int(meta.extra["steps"]), freq)


def forecast_table(arrays: dict, meta) -> object:
    """The task's per-step outputs as the forecasts table (item ids and timestamps instead of indices)."""
    import numpy as np
    import pandas as pd

    index = index_of(meta)
    items = np.asarray(meta.extra["item_ids"], dtype=object)
    df = pd.DataFrame({"item_id": items[np.asarray(arrays["series"], np.int64)],
                       "timestamp": index[np.asarray(arrays["time"], np.int64)].to_timestamp().astype(str),
                       "window": np.asarray(arrays["window"], np.int64),
                       "step": np.asarray(arrays["step"], np.int64),
                       "target": np.asarray(arrays["target"], np.float64)})
    for k in sorted((k for k in arrays if k.startswith("p") and k[1:].replace(".", "").isdigit()),
                    key=lambda k: float(k[1:])):
        df[k] = np.asarray(arrays[k], np.float64)
    return df


def plotted_items(forecasts, n: int) -> list[str]:
    """The ``n`` series with the largest mean |target| over the test windows (they weigh most in the
    weighted quantile loss)."""
    size = forecasts.assign(abs=forecasts.target.abs()).groupby("item_id", sort=False)["abs"].mean()
    return list(size.sort_values(ascending=False).index[:n])


def actuals_table(data, items: list[str], history: int):
    """History (``history`` steps before the forecast start) and truth of the plotted series."""
    import numpy as np
    import pandas as pd

    meta = data.meta
    index = index_of(meta)
    ids = list(meta.extra["item_ids"])
    target = data.test.t["target"].cpu().numpy()
    t0, end = int(meta.extra["t0"]), int(meta.extra["t0"]) + meta.extra["horizon"] * meta.extra["rolling"]
    lo = max(0, t0 - history)
    rows = []
    for item in items:
        s = ids.index(item)
        rows.append(pd.DataFrame({"item_id": item, "timestamp": index[lo:end].to_timestamp().astype(str),
                                  "target": target[s, lo:end].astype(np.float64),
                                  "phase": np.where(np.arange(lo, end) < t0, "history", "test")}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def components_table(model, data, items: list[str]):
    """DeepState's decomposition of the first test window of each plotted series."""
    import numpy as np
    import pandas as pd
    import torch

    meta, split = data.meta, data.test
    ids = list(meta.extra["item_ids"])
    want = [ids.index(i) for i in items]
    pick = [int(j) for j in range(len(split)) if int(split.window[j]) == 0 and int(split.series[j]) in want]
    if not pick:
        return None
    batch, parts = _decompose(model, split, pick)
    index = index_of(meta)
    P = batch["past_target"].shape[1]
    target = torch.cat([batch["past_target"], batch["future_target"]], 1).cpu().numpy()
    rows = []
    for r, j in enumerate(pick):
        begin = int(split.begin[j])
        steps = np.arange(begin, begin + target.shape[1])
        df = pd.DataFrame({"item_id": ids[int(split.series[j])],
                           "timestamp": index[steps].to_timestamp().astype(str), "target": target[r],
                           "phase": np.where(np.arange(target.shape[1]) < P, "context", "forecast")})
        for k, v in parts.items():
            df[k] = v[r]
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def _decompose(model, split, pick: list[int]):
    """(batch of the windows ``pick``, the model's decomposition of it in eval mode; training mode kept)."""
    import torch

    batch = split.gather(torch.as_tensor(pick, device=split.series.device))
    was = model.training
    model.eval()
    try:
        return batch, model.decompose(batch)
    finally:
        model.train(was)


def recovery_table(model, data):
    """On a synthetic panel with known parameters: per series, the true noise sd against DeepState's
    learned σ_t (mean over the first test window, target units), and the correlation of the learned daily
    and weekly seasonal patterns (each season's state as read over the last cycle of the context, centred)
    with the true ones. None when the panel has no ground truth or the model no decomposition."""
    import numpy as np
    import pandas as pd

    truth = data.notes.get("truth")
    if truth is None or not hasattr(model, "decompose"):
        return None
    split, meta = data.test, data.meta
    pick = [j for j in range(len(split)) if int(split.window[j]) == 0]
    batch, parts = _decompose(model, split, pick)
    P = batch["past_target"].shape[1]
    season = batch["past_season"].cpu().numpy()
    names = [s[0] for s in meta.extra["seasons"]]
    rows = []
    for r, j in enumerate(pick):
        s = int(split.series[j])
        row = {"item_id": meta.extra["item_ids"][s], "sigma_true": float(truth["sigma"][s]),
               "sigma_learned": float(np.mean(parts["sigma"][r]))}
        for key, name, cycle in (("daily", "hour_of_day", 24), ("weekly", "day_of_week", 168)):
            col = f"component_{name}"
            if key not in truth or col not in parts or name not in names or P < cycle:
                continue
            k = names.index(name)
            idx, val = season[r, P - cycle:, k], parts[col][r, P - cycle:P]
            true = np.asarray(truth[key][s], np.float64)
            learned = np.array([val[idx == i].mean() for i in range(len(true))])
            row[f"{key}_corr"] = float(np.corrcoef(learned - learned.mean(), true - true.mean())[0, 1])
        rows.append(row)
    df = pd.DataFrame(rows)
    df["sigma_ratio"] = df.sigma_learned / df.sigma_true
    return df


def write_outputs(run: Run, cfg, parts, task) -> dict:
    """forecasts.csv, actuals.csv, components.csv of a completed run; returns what the summary records."""
    from dlx.train import evaluate

    arrays: dict = {}
    evaluate(parts.model, task, parts.data.test, int(cfg.trainer.get("eval_batch_size", 1024)),
             parts.precision, per_example=arrays)
    forecasts = forecast_table(arrays, parts.data.meta)
    write_csv(run.path("forecasts.csv"), forecasts)
    n = int(cfg.plot.series) if cfg.get("plot") is not None else 4
    items = plotted_items(forecasts, n)
    meta = parts.data.meta.extra
    write_csv(run.path("actuals.csv"), actuals_table(parts.data, items, 3 * int(meta["horizon"])))
    extra = {"plotted_series": items}
    if hasattr(parts.model, "decompose") and items:
        comp = components_table(parts.model, parts.data, items)
        if comp is not None:
            write_csv(run.path("components.csv"), comp)
    rec = recovery_table(parts.model, parts.data)
    if rec is not None:
        write_csv(run.path("recovery.csv"), rec)
        extra["recovery"] = {k: float(rec[k].median()) for k in ("sigma_ratio", "daily_corr", "weekly_corr")
                             if k in rec}
    if hasattr(parts.model, "fallbacks"):
        extra.update(local_fits=int(parts.model.fits), fit_fallbacks=int(parts.model.fallbacks))
    return extra


def run(cfg, run: Run):
    """Train or fit one forecaster; everything lands in run.dir. Returns a table of the test metrics."""
    import pandas as pd

    from dlx.build import build, final_metrics
    from dlx.train import fit
    from dlx.train.callbacks import Checkpointer, CsvLogger, Progress
    from dlx.train.evaluate import save_predictions
    from dlx.train.loop import check_settings as check_trainer

    with run.recording():
        check_settings(cfg)
        parts = build(cfg)
        if not getattr(parts.model, "is_forecaster", False):
            raise DlxError(f"model '{cfg.model.name}' is not a forecaster (choose from: deepstate, deepar, "
                           "seasonal_naive, ets, arima)")
        check_trainer(cfg.trainer, cfg.optimizer, len(parts.data.train))
        run.device = parts.device
        run.env["threads_rule"] = parts.threads
        meta = parts.data.meta.extra
        info = {"params": parts.params, "model": cfg.model.name, "data": cfg.data.name,
                "n_train": len(parts.data.train), "n_test": len(parts.data.test),
                "n_series": meta["n_series"],
                "n_forecast_series": meta["n_kept"], "freq": meta["freq"], "horizon": meta["horizon"],
                "rolling": meta["rolling"], "context_length": meta["context_length"],
                "train_range": meta["train_range"], "train_window": meta["train_window"],
                "forecast_start": meta["forecast_start"], **parts.task.describe()}
        skipped = parts.data.notes.get("skipped_series") or []
        info["skipped_series"] = len(skipped)
        run.summary("running", **info)
        if skipped:
            write_csv(run.path("skipped_series.csv"), pd.DataFrame(skipped))
            print(f"dlx: skipped {len(skipped)} of {meta['n_series']} series of '{cfg.data.name}' shorter "
                  f"than the context (first: {skipped[0]['item_id']}, {skipped[0]['reason']}); see "
                  "skipped_series.csv", file=sys.stderr)
        callbacks = [CsvLogger(run.path("metrics.csv")), Checkpointer(run.path("checkpoint.pt")),
                     Progress(cfg.trainer.get("progress", "auto"), label=run.dir.name), *run.callbacks]
        setup_s = round(time.time() - run.t0, 3)
        hist = fit(parts.model, parts.task, parts.data, parts.precision, cfg.trainer, cfg.optimizer,
                   seed=cfg.seed, callbacks=callbacks)
        extra = {"epochs": hist.epoch, "steps": hist.step, "setup_s": setup_s,
                 "train_wall_s": round(hist.wall_s, 3)}
        # trainer.eval_test=false (a dlx tune trial): the test windows are never forecast
        if hist.status == "completed" and cfg.trainer.get("eval_test", True):
            t0 = time.time()
            extra.update(write_outputs(run, cfg, parts, parts.task))
            save_predictions(run, parts.model, parts.task, parts.data, cfg.task.get("save_predictions"),
                             int(cfg.trainer.get("eval_batch_size", 1024)), parts.precision)
            extra["forecast_s"] = round(time.time() - t0, 3)
        if hist.status == "diverged":
            extra["diverged_step"] = hist.diverged_step
        summary = run.summary(hist.status, final_metrics(hist.rows, parts.task), **extra)
        plot(run.dir)
    return metrics_frame(summary)


def metrics_frame(summary: dict):
    """The CLI's table: one row of test metrics."""
    import pandas as pd

    m = summary.get("metrics", {})
    row = {"model": summary.get("model"), "data": summary.get("data"), "status": summary.get("status"),
           **{k: m.get(f"test_{k}") for k in ("ql50", "ql90", "mean_wql", "mase", "coverage", "loss")},
           "params": summary.get("params"), "wall_s": summary.get("wall_s")}
    return pd.DataFrame([row])


def plot(run_dir: Path) -> list[Path]:
    from dlx.forecast.plots import plot_forecast_run

    return plot_forecast_run(Path(run_dir))

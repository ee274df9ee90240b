"""Deep State Space Models for Time Series Forecasting (Rangapuram et al., NeurIPS 2018).

A sweep of ``forecast`` runs (dlx/kinds/forecast): DeepState, DeepAR and the local baselines
(seasonal naive, ETS, ARIMA) x training ranges x seeds on one panel, each forecasting the same rolling
windows after the forecast start. ``finalize`` collects them into results.csv and table.csv, merges the
children's forecasts and DeepState's learned components into the sweep's own tables (fan.csv, actuals.csv,
components.csv, recovery.csv), checks the paper's claims (analysis.py) and draws the figures (plots.py).
"""

from __future__ import annotations

from pathlib import Path

from dlx.runs import Run
from dlx.threads import cpu_seconds

# the process's CPU seconds when this sweep started (a control runs in the same process as its default)
_CPU_AT_START = [0.0]


OWN_GROUPS = ("optimizer",)  # deepstate.settings.<model>.optimizer.lr=...: that model's own


def settings(cfg, model: str) -> dict:
    """A trained model's own settings (``deepstate.settings.<model>``), resolved: {} for the baselines."""
    from omegaconf import OmegaConf

    got = (cfg.deepstate.get("settings") or {}).get(model)
    return dict(OmegaConf.to_container(got, resolve=True)) if got else {}


def children(cfg):
    from dataclasses import replace

    from dlx.papers.deepstate.analysis import grid
    from dlx.sweep import expand
    from dlx.sweep.tuning import own_overrides

    out = []
    for model, ranges, seeds in grid(cfg):
        own = own_overrides(settings(cfg, model), OWN_GROUPS)
        out += [replace(c, overrides=(*c.overrides, *own)) for c in
                expand({"model": [model], "data.train_range": ranges, "seed": seeds}, kind="forecast")]
    return out


def tunables(cfg):
    """`tune=true`: DeepState and DeepAR (conf/tune/<model>.yaml: lr, LSTM width and depth), each as its
    seed-0 child at ``deepstate.tune_range``, scored on validation windows one test span before the
    forecast start (data.val_windows); the choices go to ``deepstate.settings.<model>``. The local
    baselines fit each window's own history and have nothing to tune."""
    from dlx.papers.deepstate.analysis import TRAINED, grid
    from dlx.sweep.tuning import Tunable, into_block, own_overrides

    out = []
    for model, ranges, _ in grid(cfg):
        if model not in TRAINED:
            continue
        at = cfg.deepstate.get("tune_range") or ranges[0]
        ovs = (f"model={model}", f"data.train_range={at}", "seed=0",
               *own_overrides(settings(cfg, model), OWN_GROUPS))
        out.append(Tunable(model, "forecast", ovs, into_block(f"deepstate.settings.{model}.", OWN_GROUPS)))
    return out


def check(cfg, overrides) -> None:
    from dlx.kinds.forecast.experiment import check_settings
    from dlx.papers.deepstate.analysis import TRAINED, check_analysis, grid
    from dlx.sweep.tuning import owned_keys, refuse_shadowed

    blocks = {m: settings(cfg, m) for m in TRAINED}
    refuse_shadowed(list(overrides), cfg, owned_keys(blocks, "deepstate.settings.", OWN_GROUPS))
    check_analysis(cfg.deepstate)
    check_settings(cfg)
    grid(cfg)


def prepare(cfg, run: Run) -> None:
    _CPU_AT_START[0] = cpu_seconds()


def _read(path: Path):
    from dlx.plots import read_table

    return read_table(path)


def merged_tables(run_dir: Path, df) -> dict:
    """The children's forecasts (for the fan chart), actuals and DeepState's components and recovery,
    gathered into sweep-level tables."""
    import pandas as pd

    out: dict = {}
    done = df[df.status == "completed"]
    if not len(done):
        return out
    shortest = done.range_steps.min()
    ds = done[(done.model == "deepstate") & (done.range_steps == shortest)].sort_values("seed")
    anchor = ds.iloc[0] if len(ds) else done[done.range_steps == shortest].iloc[0]
    actuals = _read(Path(run_dir) / "runs" / anchor.run_id / "actuals.csv")
    if actuals is not None:
        out["actuals"] = actuals.assign(train_range=anchor.train_range)
        items = list(dict.fromkeys(actuals.item_id))
        fans = []
        for model in ("deepstate", "deepar", "ets", "arima", "seasonal_naive"):
            rows = done[(done.model == model) & (done.range_steps == shortest)].sort_values("seed")
            if len(rows):
                f = _read(Path(run_dir) / "runs" / rows.iloc[0].run_id / "forecasts.csv")
                if f is not None:
                    fans.append(f[f.item_id.isin(items)].assign(model=model, train_range=anchor.train_range))
        if fans:
            out["fan"] = pd.concat(fans, ignore_index=True)
    if len(ds):
        comp = _read(Path(run_dir) / "runs" / ds.iloc[0].run_id / "components.csv")
        if comp is not None:
            out["components"] = comp.assign(train_range=ds.iloc[0].train_range)
    rec = []
    for r in done[done.model == "deepstate"].itertuples():
        t = _read(Path(run_dir) / "runs" / r.run_id / "recovery.csv")
        if t is not None:
            rec.append(t.assign(train_range=r.train_range, seed=r.seed))
    if rec:
        out["recovery"] = pd.concat(rec, ignore_index=True)
    return out


def per_run_recovery(rec):
    """recovery.csv (a row per series and DeepState run) -> per run (training range, seed): the medians over
    its series of the learned/true σ ratio and the daily and weekly pattern correlations."""
    if rec is None or not len(rec):
        return None
    cols = [k for k in ("sigma_ratio", "daily_corr", "weekly_corr") if k in rec]
    return rec.groupby(["train_range", "seed"], sort=False)[cols].median().reset_index()


def data_label(data) -> str:
    """The panel's name, with its generator when it is not the default ISSM (the negative control)."""
    gen = data.get("generator")
    return str(data.name) if gen in (None, "issm") else f"{data.name} (generator={gen})"


def finalize(cfg, run: Run, children):
    from dlx.papers.deepstate.analysis import claims, table, tidy
    from dlx.runs import read_summary
    from dlx.sweep import collect
    from dlx.sweep.driver import finish

    results, _ = collect(run.dir, children)
    summaries = {c.run_id: read_summary(run.dir / "runs" / c.run_id) for c in children}
    df = tidy(results, summaries)
    cols = ["model", "train_range", "train_days", "range_steps", "seed", "status", "ql50", "ql90", "mean_wql",
            "mase", "coverage", "loss", "params", "wall_s", "train_s", "run_id", "error"]
    df = df[[c for c in cols if c in df]]
    tab = table(df)
    tables = merged_tables(run.dir, df)
    found = claims(df, per_run_recovery(tables.get("recovery")), cfg)
    steps = sorted(tab.range_steps.unique()) if len(tab) else []
    label = dict(zip(tab.range_steps, tab.train_range, strict=False)) if len(tab) else {}
    at = label.get(steps[0]) if steps and cfg.deepstate.get("range") is None else cfg.deepstate.get("range")
    metrics = {f"{r.model}_{r.train_range}_{m}": float(getattr(r, m)) for r in tab.itertuples()
               for m in ("ql50", "ql90", "coverage")} if len(tab) else {}
    return finish(run, df, metrics, tables={"table": tab, **tables}, claims=found,
                  claim_range=str(at) if at is not None else None, data=data_label(cfg.data),
                  children=len(children), children_wall_s=round(float(df.wall_s.fillna(0).sum()), 1),
                  cpu_s=round(cpu_seconds() - _CPU_AT_START[0], 1))


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.deepstate.plots import plot_all

    return plot_all(Path(run_dir))

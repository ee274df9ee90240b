"""Searching for Higgs Boson Decay Modes with Deep Learning (Sadowski, Whiteson & Baldi, NIPS 2014; PRL 114,
111801): a shallow network, a deep network and gradient-boosted trees, each on the low-level, high-level
and all features of H -> tau tau vs Z -> tau tau events (``data=htautau``; the exotic-Higgs benchmark of
Nature Communications 2014 with ``data=higgs_uci``); test AUC and discovery significance.

Children (dlx.sweep): every network is a ``train`` run (model=mlp, tanh) and every tree ensemble a ``fit``
run (baseline=gbt), each writing its validation and test predictions. The finalize step reads those
predictions (it never retrains): each child's selection threshold is the one most significant on its
validation predictions, and its Z is what that threshold gives on the test set (significance.py); it draws
ROC curves, aggregates seeds, bootstraps the AUC over test events for the claims that involve the trees,
decides the claims (analysis.py) and draws the figures (plots.py). Extra children on training subsets
(``higgs.curve``) give AUC against the number of training events.
"""

from __future__ import annotations

from pathlib import Path

from dlx.config import integers
from dlx.errors import DlxError
from dlx.runs import Run
from dlx.threads import cpu_seconds

NETS = ("shallow", "deep")


def plan(cfg) -> dict:
    """The sweep's settings, checked: models, feature sets, seeds, architectures, curve sizes."""
    from dlx.config import name_list, number
    from dlx.papers.higgs.analysis import FEATURES, MODELS
    from dlx.papers.higgs.significance import Setting

    h = cfg.higgs
    models = name_list(h.models, MODELS, "higgs.models", "model")
    features = name_list(h.features, FEATURES, "higgs.features", "feature set")
    if not models or not features:
        raise DlxError("higgs.models and higgs.features must not be empty")
    arch = {m: {"depth": number(h[m].depth, f"higgs.{m}.depth", lo=1, integer=True),
                "width": number(h[m].width, f"higgs.{m}.width", lo=1, integer=True)} for m in NETS}
    curve = h.curve
    sizes = integers(curve.n_train, "higgs.curve.n_train", lo=2) if curve.n_train else []
    return {"models": models, "features": features, "seeds": integers(h.seeds, "higgs.seeds"),
            "gbt_seeds": integers(h.gbt_seeds, "higgs.gbt_seeds"), "arch": arch, "own": own_settings(h),
            "curve_sizes": sorted(set(sizes)),
            "curve_models": [m for m in name_list(curve.models, MODELS, "higgs.curve.models", "model")
                             if m in models] if sizes else [],
            "curve_features": name_list(curve.features, FEATURES, "higgs.curve.features", "feature set")
            if sizes else [],
            "curve_seeds": integers(curve.seeds, "higgs.curve.seeds") if sizes else [],
            "significance": Setting.from_cfg(h.significance)}


OWN = {"shallow": "optimizer", "deep": "optimizer", "gbt": "baseline"}  # the group of each model's own keys


def own_settings(h) -> dict:
    """Each model's own optimizer (networks) or baseline (trees) keys: ``higgs.<model>`` (the shared
    optimizer/baseline values unless set, or chosen by tune=true)."""
    from omegaconf import OmegaConf

    out = {}
    for m, group in OWN.items():
        node = h.get(m)
        node = node.get(group) if m in NETS and node is not None else node
        got = OmegaConf.to_container(node, resolve=True) if node is not None else {}
        out[m] = {k: v for k, v in got.items() if k not in ("depth", "width")}
    return out


def child(p: dict, model: str, features: str, seed: int, n_train: int | None):
    from dlx.sweep import Child, run_id

    params = {"model": model}
    if model in NETS:
        a = p["arch"][model]
        params.update({"model.depth": a["depth"], "model.width": a["width"]})
    params.update({"data.features": features, "seed": seed, "data.n_train": n_train})
    overrides = [f"{k}={'null' if v is None else v}" for k, v in params.items() if k != "model"]
    overrides += [f"{OWN[model]}.{k}={v}" for k, v in p["own"].get(model, {}).items()]
    return Child(run_id(params), tuple(overrides), params, "train" if model in NETS else "fit")


def tunables(cfg):
    """`tune=true`: the shallow and the deep network (learning rate and weight decay; their shapes are the
    comparison) and the boosted trees (conf/tune/gbt.yaml), each on ``higgs.tune_features`` as its first
    seed's child; the choices go to ``higgs.<model>``."""
    from dlx.config import name_list
    from dlx.papers.higgs.analysis import FEATURES
    from dlx.sweep.tuning import Tunable

    p = plan(cfg)
    features = name_list([cfg.higgs.get("tune_features", "all")], FEATURES, "higgs.tune_features",
                         "feature set")[0]
    out = []
    for m in p["models"]:
        if m in NETS:
            out.append(Tunable(m, "train", child(p, m, features, p["seeds"][0], None).overrides,
                               {"optimizer.": f"higgs.{m}.optimizer."}, space_file="higgs_net"))
        else:
            out.append(Tunable(m, "fit", child(p, m, features, p["gbt_seeds"][0], None).overrides,
                               {"baseline.": f"higgs.{m}."}))
    return out


def children(cfg):
    p = plan(cfg)
    kids = [child(p, m, f, s, None) for m in p["models"] for f in p["features"]
            for s in (p["gbt_seeds"] if m == "gbt" else p["seeds"])]
    for n in p["curve_sizes"]:
        kids += [child(p, m, f, s, n) for m in p["curve_models"] for f in p["curve_features"]
                 for s in (p["gbt_seeds"][:1] if m == "gbt" else p["curve_seeds"])]
    return kids


def check(cfg, overrides=()) -> None:
    """What would make every child fail, refused before the sweep starts."""
    from dlx.sweep.tuning import refuse_shadowed

    owned: dict = {}  # optimizer.lr -> {higgs.shallow.optimizer.lr: its value, ...}
    for m, settings in own_settings(cfg.higgs).items():
        for k, v in settings.items():
            owned.setdefault(f"{OWN[m]}.{k}", {})[f"higgs.{m}.{'optimizer.' if m in NETS else ''}{k}"] = v
    refuse_shadowed(list(overrides), cfg, owned)
    from dlx.config import number
    from dlx.papers.higgs.analysis import DATASETS

    if cfg.data.name not in DATASETS:
        raise DlxError(f"dlx reproduce higgs needs data=htautau (the paper) or data=higgs_uci, got "
                       f"data={cfg.data.name}")
    if cfg.task.name != "binary":
        raise DlxError(f"dlx reproduce higgs needs task=binary, got task={cfg.task.name}")
    if not {"val", "test"} <= set(cfg.task.get("save_predictions") or []):
        raise DlxError("dlx reproduce higgs reads each child's validation and test predictions: keep "
                       "task.save_predictions=[val,test]")
    if not float(cfg.data.get("val_fraction") or 0) > 0:
        raise DlxError("dlx reproduce higgs chooses each selection threshold on the validation split: set "
                       "data.val_fraction > 0")
    if cfg.model.name != "mlp":
        raise DlxError(f"the higgs networks are model=mlp (depth and width from higgs.shallow/deep), got "
                       f"model={cfg.model.name}")
    if cfg.baseline.name != "gbt":
        raise DlxError(f"the higgs trees are baseline=gbt, got baseline={cfg.baseline.name}")
    real = on_files(cfg)
    if real and cfg.data.name == "higgs_uci":
        from dlx.data.higgs import source_file

        source_file(cfg.data.root)  # a missing file: one line now, not a failure in every child
    elif real:
        from dlx.data.htautau import source_files

        source_files(cfg.data)
    if cfg.higgs.get("needs_root") and not real:
        raise DlxError("this preset runs on the real files: give data.root=<folder of htautau.csv(.gz) and "
                       "ztautau.csv(.gz)> (data=higgs_uci: of HIGGS.csv(.gz)); the default preset uses the "
                       "embedded generator" if cfg.data.name == "htautau" else
                       "this preset runs on the real HIGGS file: give data.root=<folder of HIGGS.csv(.gz)> "
                       "(the UCI HIGGS data set; the default preset uses the embedded generator)")
    # higgs.rules: checked against the record's bounds (RULES in dlx/papers/higgs) by dlx/launch.py
    number(cfg.higgs.bootstrap.replicates, "higgs.bootstrap.replicates", lo=2, integer=True)
    number(cfg.higgs.bootstrap.seed, "higgs.bootstrap.seed", lo=0, integer=True)
    if real and cfg.data.get("particles", "events") != "events":
        raise DlxError("data.particles=shuffled (the negative control) needs the generator: drop data.root")
    # the training events left after the validation carve-out (memmap_bundle / table_bundle round it so)
    left = int(cfg.data.n) - int(round(float(cfg.data.val_fraction) * int(cfg.data.n))) if not real else None
    for n in plan(cfg)["curve_sizes"]:
        if not real and n > left:
            raise DlxError(f"higgs.curve.n_train has {n}, more than the {left} training events data.n="
                           f"{cfg.data.n} leaves after data.val_fraction={cfg.data.val_fraction}")




def on_files(cfg) -> bool:
    """Does the data come from the user's files (not the generator)?"""
    return any(cfg.data.get(k) is not None for k in ("root", "signal_file", "background_file"))


def scores(run_dir: Path, split: str = "test"):
    """(score, label) arrays of a child's predictions_<split>.csv, or None when it wrote none."""
    import pandas as pd

    path = Path(run_dir) / f"predictions_{split}.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    return df["score"].to_numpy(), df["label"].to_numpy()


def finalize(cfg, run: Run, kids):
    import numpy as np
    import pandas as pd

    from dlx.papers.higgs.analysis import BOOT_CELLS, auc_replicates, claims, learning, summarize
    from dlx.papers.higgs.significance import at, roc_points, scan
    from dlx.sweep import collect
    from dlx.sweep.driver import finish

    p = plan(cfg)
    results, _ = collect(run.dir, kids)
    results["curve"] = [c.params["data.n_train"] is not None for c in kids]
    for col in ("test_auc", "z", "z_val", "threshold", "eps_s", "eps_b", "s", "b"):
        if col not in results:
            results[col] = float("nan")
    rocs, sigs, test_scores, label = [], [], {}, None
    for i, c in enumerate(kids):
        done = results.status[i] in ("completed", "diverged")
        got = scores(run.dir / "runs" / c.run_id) if done else None
        val = scores(run.dir / "runs" / c.run_id, "val") if done else None
        if got is None:
            continue
        tag = {"model": c.params["model"], "features": c.params["data.features"], "seed": c.params["seed"],
               "run_id": c.run_id}
        best = None
        try:  # the threshold most significant on validation, its significance on test
            if val is None:
                raise DlxError("no predictions_val.csv: the selection threshold is chosen on validation")
            chosen = scan(*val, p["significance"])
            on_test = at(*got, chosen["threshold"], p["significance"])
            best = chosen
        except DlxError as err:  # e.g. a diverged child whose scores are all NaN
            results.loc[i, "error"] = str(err)
            if not np.isfinite(got[0]).all():
                continue
        if best is not None:
            results.loc[i, "z_val"], results.loc[i, "threshold"] = best["z"], best["threshold"]
            for k in ("z", "eps_s", "eps_b", "s", "b"):
                results.loc[i, k] = on_test[k]
        if not results["curve"][i]:
            if best is not None:
                sigs.append(best["curve"].assign(split="val", **tag))
            rocs.append(roc_points(*got).assign(**tag))
            cell = (tag["model"], tag["features"])
            if cell in BOOT_CELLS and np.isfinite(got[0]).all():
                if label is None:
                    label = got[1]
                if np.array_equal(got[1], label):  # every child scores the one test set
                    test_scores.setdefault(cell, {})[tag["seed"]] = got[0]
    data = str(cfg.data.name)
    table = summarize(results, data)
    curve = learning(results)
    boot = cfg.higgs.bootstrap
    replicates = (auc_replicates(test_scores, label, int(boot.replicates), int(boot.seed))
                  if test_scores else {})
    said = claims(results, replicates, cfg.higgs.rules, data)
    cols = ["model", "features", "seed", "n_train", "curve", "depth", "width", "params", "test_auc", "z",
            "z_val", "threshold", "eps_s", "eps_b", "s", "b", "train_auc", "val_auc", "test_loss", "status",
            "epochs", "wall_s", "run_id", "error"]
    results = results[[c for c in cols if c in results.columns]]
    metrics = {f"{k}_{r.model}_{r.features}": float(getattr(r, k)) for r in table.itertuples()
               for k in ("auc", "z") if pd.notna(getattr(r, k))}
    setting = p["significance"]
    real = on_files(cfg)
    finish(run, results, metrics,
           tables={"table": table, "learning": curve,
                   "roc": pd.concat(rocs, ignore_index=True) if rocs else pd.DataFrame(),
                   "significance": pd.concat(sigs, ignore_index=True) if sigs else pd.DataFrame()},
           claims=said, data=data, source="file" if real else "generator",
           n_train=int(cfg.data.n) if not real else None,
           n_test=int(cfg.data.n_test) if not real else int(cfg.data.test_rows),
           significance={"signal": setting.signal, "background": setting.background,
                         "sigma_b": setting.sigma_b, "luminosity": setting.luminosity,
                         "min_background": setting.min_background, "threshold_chosen_on": "val"},
           bootstrap={"replicates": int(boot.replicates), "seed": int(boot.seed),
                      "cells": sorted(f"{m}/{f}" for m, f in replicates)},
           particles=str(cfg.data.get("particles", "events")),
           architectures=p["arch"], children=len(kids),
           children_wall_s=round(float(pd.to_numeric(results.wall_s, errors="coerce").fillna(0).sum()), 1),
           cpu_s=round(cpu_seconds(), 1))
    return display(table)


def display(table):
    """The terminal's view of table.csv: mean ± std as text beside the paper's number."""
    import pandas as pd

    def pm(mean, sd, digits):
        if pd.isna(mean):
            return "-"
        return f"{mean:.{digits}f}" + ("" if pd.isna(sd) else f"±{sd:.{digits}f}")

    return pd.DataFrame({
        "model": table.model, "features": table.features,
        "AUC": [pm(m, s, 3) for m, s in zip(table.auc, table.auc_std, strict=True)],
        "paper AUC": [("-" if pd.isna(v) else f"{v:.3f}") for v in table.paper_auc],
        "Z": [pm(m, s, 2) for m, s in zip(table.z, table.z_std, strict=True)],
        "paper Z": [("-" if pd.isna(v) else f"{v:.1f}") for v in table.paper_z],
        "runs": table.runs})


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.higgs.plots import plot_all

    return plot_all(Path(run_dir))

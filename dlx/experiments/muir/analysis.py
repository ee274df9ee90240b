"""Tables and claims of the MUiR experiment, from the children's run directories.

Per child (results.csv): the synthetic test RMSE (mean over the 30 tasks of each task's RMSE) and the
adjusted Rand index of the found grouping; the cross-modal per-task metric (vision: test error; language:
test perplexity; genomics: test MSE of standardised targets) and the fractions of modules in use shared by
more than one task / modality. Tables average over seeds (mean, std)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlx.experiments.claims import claim

# Meyerson & Miikkulainen (2019): synthetic test RMSE (clean, noisy); the authors' poster
PAPER_SYN = {"stl": (1.35, 1.49), "muir": (0.00, 0.38), "oracle": (0.77, 0.37), "random": (1.26, 4.67)}
# cross-modal (their task, STL, MUiR): LeNet CIFAR-10 error %, LSTM WikiText-2 perplexity, DeepBind CRISPR MSE
PAPER_CROSS = {"vision": ("CIFAR-10 error %", 21.46, 20.51),
               "language": ("WikiText-2 perplexity", 135.03, 130.70),
               "genomics": ("CRISPR binding MSE", 0.1543, 0.1464)}
LABELS = {"stl": "single-task ridge", "muir": "MUiR", "oracle": "MUiR + oracle grouping",
          "random": "MUiR + random assignment", "alone": "alone (plain layers)",
          "alone_hyper": "alone (own hypermodules)", "shared": "MUiR, one pool"}


def _read(path: Path) -> pd.DataFrame | None:
    from dlx.plots import read_table

    return read_table(path)


def child_tables(run_dir: Path, children) -> dict:
    """search.csv and assignment.csv of every child, stacked with the child's grid values."""
    out = {"search": [], "assignment": []}
    for c in children:
        grid = {"part": None, "method": None, "noise": None, "task": None, "seed": None,
                **{k.split(".")[-1]: v for k, v in c.params.items()}}
        for name in out:
            df = _read(Path(run_dir) / "runs" / c.run_id / f"{name}.csv")
            if df is not None:
                for k, v in grid.items():
                    if k not in df:  # an assignment's own task column (a location's task) stays
                        df[k] = v
                out[name].append(df)
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in out.items()}


def tidy(results: pd.DataFrame) -> pd.DataFrame:
    """One row per child with the columns the tables use (the children's summaries hold every metric)."""
    df = results.copy()
    for col in ("part", "method", "noise", "task", "seed"):
        if col not in df:
            df[col] = None
    if "test_rmse" not in df:
        df["test_rmse"] = np.nan
    for t, metric in (("vision", "error"), ("language", "perplexity"), ("genomics", "mse")):
        src = f"test_{t}.rmse" if metric == "mse" else f"test_{t}.{metric}"
        df[f"{t}_{metric}"] = (df[src] ** 2 if metric == "mse" else df[src]) if src in df else np.nan
    keep = ["part", "noise", "method", "task", "seed", "status", "test_rmse", "val_rmse", "train_rmse", "ari",
            "modules_in_use", "shared_tasks_fraction", "shared_modalities_fraction", "vision_error",
            "language_perplexity", "genomics_mse", "params", "epochs", "wall_s", "train_s", "run_id", "error"]
    for col in keep:
        if col not in df:
            df[col] = np.nan
    return df[keep]


def _stat(values) -> tuple[float, float, int]:
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    mean = float(v.mean()) if len(v) else np.nan
    return mean, float(v.std(ddof=1)) if len(v) > 1 else np.nan, int(len(v))


def synthetic_table(results: pd.DataFrame) -> pd.DataFrame:
    """noise x method: test RMSE mean and std over seeds, the ARI, modules in use, and the paper's RMSE."""
    syn = results[results.part == "synthetic"]
    rows = []
    for noise in syn.noise.dropna().unique():
        for method in ("stl", "muir", "oracle", "random"):
            cell = syn[(syn.noise == noise) & (syn.method == method)]
            if not len(cell):
                continue
            m, s, n = _stat(cell.test_rmse)
            paper = PAPER_SYN[method][1 if "noisy" in str(noise) else 0] if str(noise) in ("clean", "noisy") \
                else np.nan
            rows.append({"noise": noise, "method": method, "rmse_mean": m, "rmse_std": s, "seeds": n,
                         "ari_mean": _stat(cell.ari)[0], "modules_mean": _stat(cell.modules_in_use)[0],
                         "paper_rmse": paper})
    return pd.DataFrame(rows)


def crossmodal_table(results: pd.DataFrame) -> pd.DataFrame:
    """task: its metric alone and shared (mean, std over seeds), the relative change, the paper's numbers."""
    cm = results[results.part == "crossmodal"]
    shared = cm[cm.method == "shared"]
    rows = []
    for task, metric in (("vision", "error"), ("language", "perplexity"), ("genomics", "mse")):
        col = f"{task}_{metric}"
        alone = cm[(cm.method == "alone") & (cm.task == task)]
        hyper = cm[(cm.method == "alone_hyper") & (cm.task == task)]
        if not len(alone) and not len(hyper) and not shared[col].notna().any():
            continue
        am, asd, an = _stat(alone[col])
        hm, hsd, _ = _stat(hyper[col])
        sm, ssd, sn = _stat(shared[col])
        what, p_stl, p_muir = PAPER_CROSS[task]
        rows.append({"task": task, "metric": metric, "alone_mean": am, "alone_std": asd,
                     "alone_hyper_mean": hm, "alone_hyper_std": hsd, "shared_mean": sm, "shared_std": ssd,
                     "seeds": min(an, sn),
                     "change": sm / am - 1 if am else np.nan,
                     "change_vs_hyper": sm / hm - 1 if hm else np.nan,
                     "hyper_cost": hm / am - 1 if am else np.nan,
                     "paper_task": what, "paper_alone": p_stl, "paper_shared": p_muir,
                     "paper_change": p_muir / p_stl - 1})
    return pd.DataFrame(rows)


def _fmt(m, s=None, pct=False) -> str:
    """'mean±std' (std over seeds; none for one seed), compact enough for an 80-column table."""
    if m != m:
        return "-"
    k = 100 if pct else 1
    return f"{k * m:.3g}" + ("%" if pct else "") + (f"±{k * s:.2g}" if s is not None and s == s else "")


def comparison(synth, cross, results) -> pd.DataFrame:
    """The printed table: our number beside the paper's, one row per (part, setting, method, metric)."""
    rows = []
    if synth is not None:
        for r in synth.itertuples():
            rows.append({"part": "synthetic", "setting": r.noise, "method": r.method, "metric": "RMSE",
                         "ours": _fmt(r.rmse_mean, r.rmse_std), "paper": f"{r.paper_rmse:.2f}"})
        for r in synth[synth.method == "muir"].itertuples():
            rows.append({"part": "synthetic", "setting": r.noise, "method": "muir",
                         "metric": "ARI", "ours": _fmt(r.ari_mean), "paper": "3 groups"})
    if cross is not None:
        for r in cross.itertuples():
            pct = r.metric == "error"
            for method in ("alone", "alone_hyper", "shared"):
                m = getattr(r, f"{method}_mean")
                if m != m:
                    continue
                paper = getattr(r, f"paper_{method}", None)
                rows.append({"part": "crossmodal", "setting": r.task, "method": method,
                             "metric": {"perplexity": "ppl", "mse": "MSE"}.get(r.metric, r.metric),
                             "ours": _fmt(m, getattr(r, f"{method}_std"), pct),
                             "paper": "-" if paper is None else f"{paper:g}" + ("%" if pct else "")})
        sh = results[(results.part == "crossmodal") & (results.method == "shared")]
        if len(sh):
            rows.append({"part": "crossmodal", "setting": "all", "method": "shared",
                         "metric": "x-modal %", "ours": _fmt(*_stat(
                             sh.shared_modalities_fraction)[:2], pct=True), "paper": "> 0"})
    return pd.DataFrame(rows, columns=["part", "setting", "method", "metric", "ours", "paper"])


def _median(results, noise, method) -> float:
    c = results[(results.part == "synthetic") & (results.noise == noise) & (results.method == method)]
    return float(c.test_rmse.median()) if len(c) else np.nan


def _cell(synth, noise, method, col="rmse_mean"):
    if synth is None:
        return np.nan
    c = synth[(synth.noise == noise) & (synth.method == method)]
    return float(c[col].iloc[0]) if len(c) else np.nan


def claims(synth, cross, results, cfg) -> list[dict]:
    margin, min_ari, tol = float(cfg.oracle_margin), float(cfg.min_ari), float(cfg.worse_tolerance)
    out = []
    noisy = {m: _cell(synth, "noisy", m) for m in ("stl", "muir", "oracle")}
    why_syn = "needs the synthetic part with its noisy variant and the stl, muir and oracle methods"

    def shown(*values):
        return all(v == v for v in values)

    ok = shown(noisy["muir"], noisy["stl"])
    out.append(claim("noisy_beats_stl", "On the noisy synthetic set MUiR's test RMSE is below single-task "
                     "learning's.", {"muir": noisy["muir"], "stl": noisy["stl"]},
                     "MUiR RMSE < STL RMSE (noisy)",
                     "0.38 vs 1.49", noisy["muir"] < noisy["stl"] if ok else None, "" if ok else why_syn))
    ok = shown(noisy["muir"], noisy["oracle"])
    ratio = noisy["muir"] / noisy["oracle"] if ok else np.nan
    med = {m: _median(results, "noisy", m) for m in ("muir", "oracle")}
    median_ratio = med["muir"] / med["oracle"] if ok else np.nan
    out.append(claim("noisy_near_oracle", "On the noisy synthetic set MUiR comes close to knowing the true "
                     "grouping.", {"muir": noisy["muir"], "oracle": noisy["oracle"], "ratio": ratio,
                                   "median_ratio": median_ratio},
                     f"MUiR RMSE <= {1 + margin:g} x oracle RMSE (noisy), for the means over seeds and for "
                     "the medians (an oracle seed stuck in a poor factorisation cannot carry it alone)",
                     "0.38 vs 0.37", (ratio <= 1 + margin and median_ratio <= 1 + margin) if ok else None,
                     "" if ok else why_syn))
    clean = {m: _cell(synth, "clean", m) for m in ("stl", "muir")}
    ok = shown(*clean.values())
    out.append(claim("clean_beats_stl", "On the clean synthetic set MUiR's test RMSE is far below "
                     "single-task learning's.", clean, "MUiR RMSE < STL RMSE (clean)", "0.00 vs 1.35",
                     clean["muir"] < clean["stl"] if ok else None, "" if ok else
                     "needs the synthetic part's clean variant with the stl and muir methods"))
    syn_muir = results[(results.part == "synthetic") & (results.method == "muir")]
    ari = _stat(syn_muir.ari)[0] if len(syn_muir) else np.nan
    ok = shown(ari)
    out.append(claim("groups_recovered", "The assignment the search finds recovers the 3 task groups.", ari,
                     f"mean adjusted Rand index (tasks by module vs true groups) >= {min_ari:g}",
                     "task x module heatmap shows the 3 groups", ari >= min_ari if ok else None,
                     "" if ok else "needs the synthetic part with the muir method"))
    sh = results[(results.part == "crossmodal") & (results.method == "shared")]
    frac = _stat(sh.shared_modalities_fraction)[0] if len(sh) else np.nan
    ok = shown(frac)
    out.append(claim("shared_across_modalities", "Some hypermodules end up shared across modalities.", frac,
                     "fraction of modules in use that serve more than one modality > 0",
                     "modules shared across vision, language and genomics", frac > 0 if ok else None,
                     "" if ok else "needs the cross-modal part with the shared method"))
    have = cross is not None and len(cross) and cross.change.notna().all()
    changes = {r.task: float(r.change) for r in cross.itertuples()} if have else {}
    worst = max(changes.values()) if changes else np.nan
    why_cm = "needs the cross-modal part with both the alone and shared methods"
    out.append(claim("no_task_much_worse", "Sharing one pool across the three modalities makes no task much "
                     "worse than training it alone.", changes,
                     f"every task's metric (error, perplexity, MSE) at most {100 * tol:g}% above alone",
                     "every task improves slightly (21.46 -> 20.51, 135.03 -> 130.70, 0.1543 -> 0.1464)",
                     worst <= tol if have else None, "" if have else why_cm))
    out.append(claim("every_task_improves", "Sharing across modalities improves every task.", changes,
                     "every task's metric below its alone value",
                     "all three improve (by 4%, 3% and 5%)", all(v < 0 for v in changes.values()) if have
                     else None, "" if have else why_cm))
    return out


def headline_metrics(synth, cross, results) -> dict:
    m = {}
    if synth is not None:
        for r in synth.itertuples():
            m[f"synthetic_{r.noise}_{r.method}_rmse"] = r.rmse_mean
        syn_muir = results[(results.part == "synthetic") & (results.method == "muir")]
        m["synthetic_muir_ari"] = _stat(syn_muir.ari)[0]
    if cross is not None:
        for r in cross.itertuples():
            m[f"crossmodal_{r.task}_{r.metric}_alone"] = r.alone_mean
            m[f"crossmodal_{r.task}_{r.metric}_alone_hyper"] = r.alone_hyper_mean
            m[f"crossmodal_{r.task}_{r.metric}_shared"] = r.shared_mean
            m[f"crossmodal_{r.task}_change"] = r.change
            m[f"crossmodal_{r.task}_change_vs_hyper"] = r.change_vs_hyper
        sh = results[(results.part == "crossmodal") & (results.method == "shared")]
        m["crossmodal_shared_modalities_fraction"] = _stat(sh.shared_modalities_fraction)[0]
        m["crossmodal_shared_tasks_fraction"] = _stat(sh.shared_tasks_fraction)[0]
    return {k: (None if v != v else float(v)) for k, v in m.items()}


def tidy_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Learning curves: the synthetic set's mean test/train RMSE and each cross-modal task's test metric,
    per child and evaluation."""
    if curves is None or not len(curves):
        return pd.DataFrame()
    keep = [c for c in ("part", "noise", "method", "task", "seed", "epoch", "step") if c in curves]
    cols = [c for c in ("train_rmse", "val_rmse", "test_rmse") if c in curves]
    df = curves[keep + cols].copy()
    for t, metric in (("vision", "error"), ("language", "perplexity"), ("genomics", "rmse")):
        src = f"test_{t}.{metric}"
        if src in curves:
            df[f"{t}_{'mse' if metric == 'rmse' else metric}"] = curves[src] ** 2 if metric == "rmse" \
                else curves[src]
    return df

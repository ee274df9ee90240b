"""Tables and claims of the MUiR experiment, from the children's run directories.

Per child (results.csv): the synthetic test RMSE (mean over the 30 tasks of each task's RMSE) and the
adjusted Rand index of the found grouping; the cross-modal per-task metric (vision: test error; language:
test perplexity; genomics: test MSE of standardised targets) and the fractions of modules in use shared by
more than one task / modality. Tables average over seeds (mean, std)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
            "modules_in_use", "shared_tasks_fraction", "shared_modalities_fraction",
            "shared_modalities_chance", "vision_error", "language_perplexity", "genomics_mse", "params",
            "epochs", "wall_s", "train_s", "run_id", "error"]
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
            rows.append({"part": "crossmodal", "setting": "random placement", "method": "shared",
                         "metric": "x-modal %", "ours": _fmt(*_stat(
                             sh.shared_modalities_chance)[:2], pct=True), "paper": "-"})
    return pd.DataFrame(rows, columns=["part", "setting", "method", "metric", "ours", "paper"])


# --- claims: a pure function of the per-child results table and the rules ---------------------------------

TASK_METRIC = {"vision": "vision_error", "language": "language_perplexity", "genomics": "genomics_mse"}


def _by_seed(results: pd.DataFrame, part: str, method: str, col: str, noise=None, task=None) -> pd.Series:
    """``col`` of the children of (part, method[, noise][, task]), indexed by seed (NaNs dropped; a seed that
    appears twice is averaged)."""
    c = results[(results.part == part) & (results.method == method)]
    if noise is not None:
        c = c[c.noise == noise]
    if task is not None:
        c = c[c.task == task]
    if not len(c) or col not in c:
        return pd.Series(dtype=float)
    v = pd.DataFrame({"seed": c.seed, "v": pd.to_numeric(c[col], errors="coerce")}).dropna()
    return v.groupby("seed").v.mean()


def _pair(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The seeds both sides have, in order: two aligned arrays."""
    seeds = sorted(set(a.index) & set(b.index))
    return a.loc[seeds].to_numpy(float), b.loc[seeds].to_numpy(float)


def _all_tasks(tests: dict) -> tuple[str | None, dict | None]:
    """A claim about every task, decided task by task: it fails when any task's interval fails, holds when
    every task's holds, and is otherwise inconclusive. Returns (the deciding task, its test): the failing
    task (the largest estimate among those that fail), else an inconclusive one (the highest upper end),
    else the weakest hold (the highest upper end)."""
    if not tests:
        return None, None

    def upper(t):
        return t[1]["ci"][1] if t[1]["ci"] is not None else np.inf

    for verdict, key in (("fails", lambda t: t[1]["estimate"]), ("inconclusive", upper), ("holds", upper)):
        some = [t for t in tests.items() if t[1]["verdict"] == verdict]
        if some:
            return max(some, key=key)
    return None, None


def claims(results: pd.DataFrame, rules, control: bool = False) -> list[dict]:
    """The paper's claims from the per-child results (``tidy``'s table: part, noise, method, task, seed,
    test_rmse, ari, shared_modalities_fraction, shared_modalities_chance and the cross-modal task metrics),
    every comparison decided by ``compare`` on per-seed values, paired by seed where both sides share it
    (a seed draws one synthetic benchmark, and one initialisation of a cross-modal task). ``rules``: the
    thresholds (conf/muir.yaml ``muir.rules``). ``control``: this is the negative control's run (the synthetic
    tasks share nothing, the cross-modal part does not run)."""
    from dlx.claims import claim, compare, rule_text

    r = {k: float(rules[k]) for k in ("stl_margin", "oracle_ratio", "min_ari", "min_cross_share",
                                      "worse_tolerance")}
    out = []
    syn = "synthetic"
    why_syn = "needs the synthetic part's {} variant with the {} methods"

    # 1-2. MUiR beats single-task ridge on the synthetic benchmark, noisy and clean: paired by seed
    for cid, noise, paper in (("noisy_beats_stl", "noisy", "0.38 vs 1.49"),
                              ("clean_beats_stl", "clean", "0.00 vs 1.35")):
        muir, stl = _pair(_by_seed(results, syn, "muir", "test_rmse", noise),
                          _by_seed(results, syn, "stl", "test_rmse", noise))
        text = (f"On the {noise} synthetic set MUiR's test RMSE is below single-task learning's "
                "(sharing helps).")
        if not len(muir):
            out.append(claim(cid, text, None, "MUiR - STL test RMSE < 0", paper, None,
                             why_syn.format(noise, "stl and muir")))
            continue
        t = compare(muir, stl, direction="less", margin=0.0 - r["stl_margin"], paired=True)
        out.append(claim(cid, text, {"muir": float(muir.mean()), "stl": float(stl.mean())},
                         rule_text(t, what="MUiR - STL test RMSE per seed"), paper, test=t))

    # 3. MUiR loses little to knowing the true grouping (noisy): per-seed RMSE ratio
    muir, oracle = _pair(_by_seed(results, syn, "muir", "test_rmse", "noisy"),
                         _by_seed(results, syn, "oracle", "test_rmse", "noisy"))
    text = "On the noisy synthetic set MUiR comes close to knowing the true grouping."
    if len(muir):
        ratio = muir / oracle
        t = compare(ratio, direction="less", margin=r["oracle_ratio"])
        out.append(claim("noisy_near_oracle", text,
                         {"muir": float(muir.mean()), "oracle": float(oracle.mean())},
                         rule_text(t, what="MUiR / oracle test RMSE per seed (noisy)"), "0.38 vs 0.37",
                         test=t))
    else:
        out.append(claim("noisy_near_oracle", text, None, f"MUiR / oracle RMSE < {r['oracle_ratio']:g}",
                         "0.38 vs 0.37", None, why_syn.format("noisy", "muir and oracle")))

    # 4. The search recovers the 3 groups: the adjusted Rand index (0 = chance) per seed, over the variants
    ari = _by_seed(results, syn, "muir", "ari")
    chance = _by_seed(results, syn, "random", "ari")
    text = "The assignment the search finds recovers the 3 task groups."
    paper = "task x module heatmap shows the 3 groups"
    if len(ari):
        t = compare(ari.to_numpy(float), direction="greater", margin=r["min_ari"])
        out.append(claim("groups_recovered", text,
                         {"ari": float(ari.mean()),
                          "random assignment": float(chance.mean()) if len(chance) else None},
                         rule_text(t, what="adjusted Rand index (chance 0) of the found grouping per seed, "
                                           "mean over the variants,"), paper, test=t))
    else:
        out.append(claim("groups_recovered", text, None, f"adjusted Rand index > {r['min_ari']:g}", paper,
                         None, "needs the synthetic part with the muir method"))

    # 5-7. Cross-modal: modules shared across modalities; per task, shared vs alone, paired by seed
    why_cm = ("the negative control changes only the synthetic benchmark (the cross-modal tasks have no "
              "generated premise to remove), so its run leaves the cross-modal part out" if control else
              "needs the cross-modal part with the {} methods")
    frac = _by_seed(results, "crossmodal", "shared", "shared_modalities_fraction")
    rand = _by_seed(results, "crossmodal", "shared", "shared_modalities_chance")
    text = "Hypermodules end up shared across modalities."
    paper = "modules shared across vision, language and genomics"
    if len(frac):
        t = compare(frac.to_numpy(float), direction="greater", margin=r["min_cross_share"])
        out.append(claim("shared_across_modalities", text,
                         {"shared %": 100 * float(frac.mean()),
                          "random placement %": 100 * float(rand.mean()) if len(rand) else None},
                         rule_text(t, what="fraction of the modules in use that serve more than one "
                                           "modality, per seed (no sharing: 0),", scale=100, unit="%"),
                         paper, test=t, scale=100))
    else:
        out.append(claim("shared_across_modalities", text, None,
                         f"fraction of modules serving > 1 modality > {100 * r['min_cross_share']:g}%", paper,
                         None, why_cm.format("shared")))
    tests = {"worse": {}, "better": {}}
    for task, col in TASK_METRIC.items():
        shared, alone = _pair(_by_seed(results, "crossmodal", "shared", col),
                              _by_seed(results, "crossmodal", "alone", col, task=task))
        if not len(shared):
            continue
        change = shared / alone - 1
        tests["worse"][task] = compare(change, direction="less", margin=r["worse_tolerance"])
        tests["better"][task] = compare(change, direction="less", margin=0.0)
    for cid, key, text, line, paper in (
            ("no_task_much_worse", "worse", "Sharing one pool across the three modalities makes no task much "
             "worse than training it alone.", r["worse_tolerance"],
             "every task improves slightly (21.46 -> 20.51, 135.03 -> 130.70, 0.1543 -> 0.1464)"),
            ("every_task_improves", "better", "Sharing across modalities improves every task.", 0.0,
             "all three improve (by 4%, 3% and 5%)")):
        task, t = _all_tasks(tests[key])
        what = "relative change of the task's metric (error, perplexity, MSE), shared / alone - 1, per seed,"
        if t is None:
            out.append(claim(cid, text, None, f"every task: {what} < {100 * line:g}%", paper, None,
                             why_cm.format("alone and shared")))
            continue
        measured = {f"{k} %": round(100 * tt["estimate"], 3) for k, tt in tests[key].items()}
        missing = [k for k in TASK_METRIC if k not in tests[key]]
        why = f"decided by {task}; per task: " + "; ".join(
            f"{k} {tt['verdict']}" + ("" if tt["ci"] is None else
                                       f" [{100 * tt['ci'][0]:.3g}, {100 * tt['ci'][1]:.3g}]%")
            for k, tt in tests[key].items()) + (f"; {', '.join(missing)} not run" if missing else "")
        verdict_note = "" if t["verdict"] != "inconclusive" else f"{task}'s interval straddles the line; "
        out.append(claim(cid, text, measured,
                         "every task: " + rule_text(t, what=what, scale=100, unit="%") +
                         " (holds when every task's holds, fails when any task's fails; the interval shown "
                         "is the deciding task's)", paper, test=t, scale=100, why=verdict_note + why))
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
        m["crossmodal_shared_modalities_chance"] = _stat(sh.shared_modalities_chance)[0]
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

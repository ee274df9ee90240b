"""The higgs figures, drawn from the sweep's tables alone: AUC and Z per model and feature set beside the
paper's (table.csv), ROC curves per feature set (roc.csv), AUC against training events (learning.csv) and
significance against the score threshold for the best models (significance.csv)."""

from __future__ import annotations

from pathlib import Path

from dlx.papers.higgs.analysis import FEATURE_LABELS, FEATURES, LABELS, MODELS
from dlx.plots import band, figure, read_table, save, style

COLORS = {"shallow": "#1f77b4", "deep": "#d62728", "gbt": "#2ca02c"}


def plot_table(run_dir: Path, table, names: dict) -> Path:
    """Grouped bars: seed-mean AUC and Z (error bars: std over seeds) per feature set and model, with the
    paper's values as black diamonds where it has them (Nat. Commun. 2014 Table 1, data=higgs_uci)."""
    import numpy as np

    fig, axes = figure(2, size=(5.2, 3.8))
    models = [m for m in MODELS if m in set(table.model)]
    feats = [f for f in FEATURES if f in set(table.features)]
    width = 0.8 / max(len(models), 1)
    for ax, col, paper, label in ((axes[0], "auc", "paper_auc", "test AUC"),
                                  (axes[1], "z", "paper_z", "discovery significance Z (sigma)")):
        for i, m in enumerate(models):
            rows = [table[(table.model == m) & (table.features == f)] for f in feats]
            val = [float(r[col].iloc[0]) if len(r) and r[col].notna().iloc[0] else np.nan for r in rows]
            err = [float(r[f"{col}_std"].iloc[0]) if len(r) and r[f"{col}_std"].notna().iloc[0] else 0.0
                   for r in rows]
            x = np.arange(len(feats)) + (i - (len(models) - 1) / 2) * width
            ax.bar(x, val, width * 0.9, yerr=err, color=COLORS[m], label=LABELS[m], capsize=2)
            ref = [float(r[paper].iloc[0]) if len(r) and r[paper].notna().iloc[0] else np.nan for r in rows]
            if np.isfinite(ref).any():
                ax.plot(x, ref, "D", color="black", ms=4, label="paper (Table 1)" if i == 0 else None)
        ax.set_xticks(np.arange(len(feats)), [names[f] for f in feats])
        lo = np.nanmin(np.r_[table[col].to_numpy(float), table[paper].to_numpy(float)]) if len(table) else 0
        if col == "auc" and np.isfinite(lo):
            ax.set_ylim(max(0.5, lo - 0.05), 1.0)
        style(ax, ylabel=label, legend=col == "auc")
    return save(fig, run_dir / "table.png",
                title="higgs: our runs (bars, mean ± std over seeds)"
                + (" vs the paper" if table.paper_auc.notna().any() else ""))


def plot_roc(run_dir: Path, roc, names: dict) -> Path:
    """One panel per feature set: each model's ROC curve (its first seed), background rejection view."""
    feats = [f for f in FEATURES if f in set(roc.features)]
    fig, axes = figure(len(feats), size=(4.2, 4.0))
    for ax, f in zip(axes, feats, strict=True):
        for m in MODELS:
            g = roc[(roc.features == f) & (roc.model == m)]
            if not len(g):
                continue
            g = g[g.seed == g.seed.min()]
            ax.plot(g.tpr, 1 - g.fpr, lw=1.5, color=COLORS[m], label=LABELS[m])
        ax.plot([0, 1], [1, 0], ":", color="#999", lw=0.8)
        style(ax, title=names[f], xlabel="signal efficiency (true positive rate)",
              ylabel="background rejection (1 - false positive rate)", xlim=(0, 1), ylim=(0, 1.01))
    return save(fig, run_dir / "roc.png", title="higgs: ROC curves on the test set (first seed)")


def plot_learning(run_dir: Path, curve) -> Path:
    """Test AUC against the number of training events, a line per model (and feature set)."""
    fig, (ax,) = figure(1, size=(6.5, 4.2))
    styles = {"low": "-o", "high": ":^", "all": "--s"}
    for (m, f), g in curve.groupby(["model", "features"], sort=False):
        g = g.sort_values("n_train")
        sd = g.auc_std.fillna(0)
        band(ax, g.n_train, g.auc, g.auc - sd, g.auc + sd, label=f"{LABELS[m]}, {f}", color=COLORS[m],
             style=styles[f])
    style(ax, title="higgs: test AUC vs training events (mean ± std over seeds)", xlabel="training events",
          ylabel="test AUC", logx=True)
    return save(fig, run_dir / "learning.png")


def plot_significance(run_dir: Path, sig, table, names: dict, setting: str) -> Path:
    """Z on the validation events against the threshold on the predicted signal probability (where each
    child's threshold is chosen), for the best model (seed-mean test Z) of each feature set, first seed."""
    import numpy as np

    fig, (ax,) = figure(1, size=(6.5, 4.2))
    for f in FEATURES:
        t = table[(table.features == f) & table.z.notna()]
        if not len(t):
            continue
        m = t.loc[t.z.idxmax(), "model"]
        g = sig[(sig.features == f) & (sig.model == m)]
        if not len(g):
            continue
        g = g[g.seed == g.seed.min()].sort_values("threshold")
        prob = 1 / (1 + np.exp(-g.threshold.clip(-50, 50)))
        ax.plot(prob, g.z, lw=1.5, label=f"{LABELS[m]} on {names[f]} (best {g.z.max():.2f})",
                ls={"low": "-", "high": ":", "all": "--"}[f], color=COLORS[m])
    style(ax, title=f"higgs: validation significance vs score threshold ({setting})",
          xlabel="threshold on the predicted signal probability", ylabel="Z (sigma)", xlim=(0, 1))
    return save(fig, run_dir / "significance.png")


def setting_text(sig: dict) -> str:
    """The significance setting of summary.json in words, e.g. '870 signal, 472000 background (20 fb^-1)'."""
    lumi = sig.get("luminosity")
    k = 1.0 if lumi is None else float(lumi)
    text = f"{sig.get('signal', 100) * k:.0f} signal, {sig.get('background', 1000) * k:.0f}"
    text += f" ± {sig['sigma_b'] * k:.0f} background" if sig.get("sigma_b") else " background"
    return text + (f", {lumi:g} fb$^{{-1}}$" if lumi is not None else "")


def plot_all(run_dir: Path) -> list[Path]:
    from dlx.runs import read_summary

    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    data = summary.get("data") if summary.get("data") in FEATURE_LABELS else "higgs_uci"
    names = FEATURE_LABELS[data]
    out = []
    table = read_table(run_dir / "table.csv")
    if table is not None:
        out.append(plot_table(run_dir, table, names))
    roc = read_table(run_dir / "roc.csv")
    if roc is not None:
        out.append(plot_roc(run_dir, roc, names))
    curve = read_table(run_dir / "learning.csv")
    if curve is not None:
        out.append(plot_learning(run_dir, curve))
    sig = read_table(run_dir / "significance.csv")
    if sig is not None and table is not None:
        setting = setting_text(summary.get("significance") or {})
        out.append(plot_significance(run_dir, sig, table, names, setting))
    return out

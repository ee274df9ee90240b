"""Adversarial-detection figures from scores.csv and ablation.csv: ROC curves per attack, I-defender
log-likelihood histograms (clean vs adversarial), and the components / layer ablation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.plots import figure, read_table, roc, save, style


def plot_roc(scores, results, path: Path) -> Path:
    """A panel per (setting, attack): each detector's ROC, clean test points (label 0) against the attack's
    adversarials (label 1), its AUROC in the legend."""
    adv = scores[scores.label == 1]
    cells = [(s, a) for s in dict.fromkeys(adv.setting) for a in dict.fromkeys(adv.attack)]
    drawn = set(zip(adv.setting, adv.attack, strict=True))
    fig, axes = figure(max(1, len(cells)), cols=max(1, adv.attack.nunique()), size=(3.1, 3.0))
    sup = dict(zip(results.detector, results.supervision, strict=False))
    for ax, (setting, attack) in zip(axes, cells, strict=False):
        if (setting, attack) not in drawn:
            ax.set_visible(False)
            continue
        here = adv[(adv.setting == setting) & (adv.attack == attack)]
        rows = results[(results.setting == setting) & (results.attack == attack)]
        for det in dict.fromkeys(scores.detector):
            clean = scores[(scores.label == 0) & (scores.detector == det)].score.to_numpy()
            a = here[here.detector == det].score.to_numpy()
            if len(clean) and len(a):
                r = rows[rows.detector == det]
                label = f"{det}{' (sup.)' if str(sup.get(det, '')).startswith('supervised') else ''}"
                roc(ax, np.r_[np.zeros(len(clean)), np.ones(len(a))], np.r_[clean, a],
                    label=f"{label} {r.auroc.iloc[0]:.3f}" if len(r) else label)
        style(ax, title=f"{setting}: {attack}", legend=False)
        ax.legend(fontsize=6, loc="lower right", title="AUROC", title_fontsize=6)
    return save(fig, path)


def plot_loglik(scores, path: Path) -> Path | None:
    s = scores[scores.detector == "idefender"]
    if s.empty:
        return None
    clean = -s[s.label == 0].score.to_numpy()
    finite = clean[np.isfinite(clean)]
    adv = s[s.label == 1]
    panels = adv[["setting", "attack"]].drop_duplicates().values.tolist()
    fig, axes = figure(max(1, len(panels)), cols=5, size=(3.0, 2.6))
    for ax, (setting, attack) in zip(axes, panels, strict=False):
        a = -adv[(adv.setting == setting) & (adv.attack == attack)].score.to_numpy()
        a = a[np.isfinite(a)]
        both = np.r_[finite, a]
        lo, hi = np.percentile(both, [0.5, 100]) if len(both) else (0, 1)
        bins = np.linspace(lo, hi, 40)
        ax.hist(np.clip(finite, lo, hi), bins=bins, density=True, alpha=0.6, label="clean", color="#3b7dd8")
        if len(a):
            ax.hist(np.clip(a, lo, hi), bins=bins, density=True, alpha=0.6, label="adversarial",
                    color="#d8553b")
        style(ax, title=f"{setting}: {attack} (n={len(a)})", xlabel="log-likelihood (predicted class)",
              legend_size=6)
    title = "I-defender: hidden-layer log-likelihood, clean test vs successful adversarials"
    return save(fig, path, title=title, title_size=9)


def plot_ablation(abl, path: Path) -> Path:
    fig, axes = figure(2, size=(4.5, 3.2))
    for ax, kind in zip(axes, ("components", "layer"), strict=True):
        part = abl[abl.ablation == kind]
        values = list(dict.fromkeys(part.value.astype(str)))
        for attack in dict.fromkeys(part.attack):
            p = part[part.attack == attack]
            ax.plot(range(len(values)), [p[p.value.astype(str) == v].auroc.mean() for v in values], "o-",
                    label=attack)
        ax.set_xticks(range(len(values)), values)
        style(ax, title=f"I-defender vs {kind}", ylabel="AUROC (gray-box)", legend=kind == "components",
              xlabel="mixture components per class" if kind == "components" else "modelled layer(s)")
    return save(fig, path)


def plot_adversarial_run(run_dir: Path) -> list[Path]:
    import pandas as pd

    run_dir = Path(run_dir)
    results = pd.read_csv(run_dir / "results.csv")
    scores = pd.read_csv(run_dir / "scores.csv", keep_default_na=False, na_values=[""],
                         dtype={"setting": str, "attack": str, "detector": str})
    scores["setting"] = scores["setting"].fillna("")  # clean rows have no setting
    out = [plot_roc(scores, results, run_dir / "roc.png")]
    hist = plot_loglik(scores, run_dir / "loglik_hist.png")
    if hist is not None:
        out.append(hist)
    abl = read_table(run_dir / "ablation.csv")
    if abl is not None:
        out.append(plot_ablation(abl, run_dir / "ablation.png"))
    return out

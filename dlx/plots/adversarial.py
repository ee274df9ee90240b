"""Adversarial-detection figures from scores.csv and ablation.csv: ROC curves per attack, I-defender
log-likelihood histograms (clean vs adversarial), and the components / layer ablation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.plots import pyplot, save


def _roc(clean: np.ndarray, adv: np.ndarray):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.r_[np.zeros(len(clean)), np.ones(len(adv))], np.r_[clean, adv])
    return fpr, tpr


def plot_roc(scores, results, path: Path) -> Path:
    plt = pyplot()
    adv = scores[scores.label == 1]
    panels = adv[["setting", "attack"]].drop_duplicates().values.tolist()
    cols = max(1, len(adv.attack.unique()))
    rows = max(1, len(adv.setting.unique()))
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.0 * rows), squeeze=False)
    settings = list(dict.fromkeys(adv.setting))
    attacks = list(dict.fromkeys(adv.attack))
    sup = dict(zip(results.detector, results.supervision, strict=False))
    for ax in axes.ravel():
        ax.set_visible(False)
    for setting, attack in panels:
        ax = axes[settings.index(setting), attacks.index(attack)]
        ax.set_visible(True)
        for det in dict.fromkeys(scores.detector):
            c = scores[(scores.label == 0) & (scores.detector == det)].score.to_numpy()
            cell = (adv.setting == setting) & (adv.attack == attack)
            a = adv[cell & (adv.detector == det)].score.to_numpy()
            if len(c) and len(a):
                fpr, tpr = _roc(c, a)
                r = results[(results.setting == setting) & (results.attack == attack)
                            & (results.detector == det)]
                label = f"{det}{' (sup.)' if str(sup.get(det, '')).startswith('supervised') else ''}"
                ax.plot(fpr, tpr, lw=1.4, label=f"{label} {r.auroc.iloc[0]:.3f}" if len(r) else label)
        ax.plot([0, 1], [0, 1], ":", color="#999", lw=0.8)
        ax.set(title=f"{setting}: {attack}", xlabel="false positive rate", ylabel="true positive rate")
        ax.legend(fontsize=6, loc="lower right", title="AUROC", title_fontsize=6)
    fig.tight_layout()
    save(fig, path)
    return path


def plot_loglik(scores, path: Path) -> Path | None:
    s = scores[scores.detector == "idefender"]
    if s.empty:
        return None
    plt = pyplot()
    clean = -s[s.label == 0].score.to_numpy()
    adv = s[s.label == 1]
    panels = adv[["setting", "attack"]].drop_duplicates().values.tolist()
    cols = min(5, max(1, len(panels)))
    rows = int(np.ceil(len(panels) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    finite = clean[np.isfinite(clean)]
    for ax, (setting, attack) in zip(axes.ravel(), panels, strict=False):
        ax.set_visible(True)
        a = -adv[(adv.setting == setting) & (adv.attack == attack)].score.to_numpy()
        a = a[np.isfinite(a)]
        both = np.r_[finite, a]
        lo, hi = np.percentile(both, [0.5, 100]) if len(both) else (0, 1)
        bins = np.linspace(lo, hi, 40)
        ax.hist(np.clip(finite, lo, hi), bins=bins, density=True, alpha=0.6, label="clean", color="#3b7dd8")
        if len(a):
            ax.hist(np.clip(a, lo, hi), bins=bins, density=True, alpha=0.6, label="adversarial",
                    color="#d8553b")
        ax.set(title=f"{setting}: {attack} (n={len(a)})", xlabel="log-likelihood (predicted class)")
        ax.legend(fontsize=6)
    fig.suptitle("I-defender: hidden-layer log-likelihood, clean test vs successful adversarials", fontsize=9)
    fig.tight_layout()
    save(fig, path)
    return path


def plot_ablation(abl, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, kind in zip(axes, ("components", "layer"), strict=True):
        part = abl[abl.ablation == kind]
        values = list(dict.fromkeys(part.value.astype(str)))
        for attack in dict.fromkeys(part.attack):
            p = part[part.attack == attack]
            ax.plot(range(len(values)), [p[p.value.astype(str) == v].auroc.mean() for v in values], "o-",
                    label=attack)
        ax.set_xticks(range(len(values)), values)
        ax.set(xlabel="mixture components per class" if kind == "components" else "modelled layer(s)",
               ylabel="AUROC (gray-box)", title=f"I-defender vs {kind}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)
    return path


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
    if (run_dir / "ablation.csv").is_file():
        abl = pd.read_csv(run_dir / "ablation.csv")
        if not abl.empty:
            out.append(plot_ablation(abl, run_dir / "ablation.png"))
    return out

"""The deepmatch figures, drawn from the sweep's tables alone: P@1 per model and ablation variant
(table.csv), P@1 against training pairs (learning.csv) and the most used learned patches (patches.csv)."""

from __future__ import annotations

from pathlib import Path

from dlx.papers.deepmatch.analysis import LABELS, VARIANT_LABELS
from dlx.plots import band, figure, need_table, plain_log_ticks, read_table, save, style

COLORS = {"random": "#7f7f7f", "inner_product": "#bcbd22", "pls": "#2ca02c", "bilinear": "#1f77b4",
          "dual_encoder": "#9467bd", "deepmatch": "#d62728"}


def _label(model: str, variant: str) -> str:
    extra = VARIANT_LABELS.get(variant, variant)
    return LABELS.get(model, model) + (f"\n({extra})" if extra else "")


def plot_table(run_dir: Path, table, candidates: int | None) -> Path:
    """Bars: seed-mean P@1 per model and DeepMatch ablation variant (error bars: std over seeds), with the
    chance level 1/(1 + N)."""
    import numpy as np

    fig, axes = figure(1, size=(max(6.0, 1.1 * len(table)), 4.0))
    ax = axes[0]
    x = np.arange(len(table))
    for xi, r in zip(x, table.itertuples(), strict=True):
        sd = 0.0 if r.p_at_1_std != r.p_at_1_std else 100 * r.p_at_1_std  # NaN (one run): no error bar
        ax.bar(xi, 100 * r.p_at_1, 0.7, yerr=sd, capsize=3, color=COLORS.get(r.model, "#333"),
               alpha=1.0 if r.variant == "full" else 0.5, hatch=None if r.variant == "full" else "//")
    for xi, v in zip(x, table.p_at_1, strict=True):
        ax.text(xi, 100 * v + 1, f"{100 * v:.1f}", ha="center", va="bottom", fontsize=8)
    if candidates:
        ax.axhline(100 / candidates, ls=":", color="black", lw=1, label=f"chance (1/{candidates})")
    ax.set_xticks(x, [_label(m, v) for m, v in zip(table.model, table.variant, strict=True)], fontsize=8)
    style(ax, ylabel="test P@1 (%)", ylim=(0, min(100, 100 * float(table.p_at_1.max()) + 12)))
    return save(fig, run_dir / "table.png",
                title=f"deepmatch: P@1 of the true response among {candidates or '?'} candidates "
                      "(mean ± std over seeds)")


def plot_learning(run_dir: Path, curve) -> Path:
    """P@1 against training pairs (log x), mean ± std over seeds, one line per model."""
    fig, axes = figure(1, size=(6.0, 4.0))
    ax = axes[0]
    for model in [m for m in COLORS if m in set(curve.model)]:
        g = curve[curve.model == model].sort_values("n_train")
        sd = g.p_at_1_std.fillna(0)
        band(ax, g.n_train, 100 * g.p_at_1, 100 * (g.p_at_1 - sd), 100 * (g.p_at_1 + sd),
             label=LABELS.get(model, model), color=COLORS[model])
    style(ax, xlabel="training pairs", ylabel="test P@1 (%)", logx=True)
    plain_log_ticks(ax, "x")
    return save(fig, run_dir / "learning.png",
                title="deepmatch: P@1 against training pairs (mean ± std over seeds)")


def plot_patches(run_dir: Path, patches, shown: int = 8) -> Path:
    """The most used patches of the finest resolution as text: query-side words | response-side words
    (and, on the synthetic corpus, the true cores those words come from)."""
    import warnings

    import pandas as pd

    fine = patches[patches.level == patches.level.min()]
    fine = fine.sort_values("usage", ascending=False, na_position="last").head(shown)
    fig, axes = figure(1, size=(10.0, 0.75 * len(fine) + 0.8))
    ax = axes[0]
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, len(fine) + 0.5)
    ax.text(0.0, len(fine) + 0.2, "patch (use)", fontsize=8, weight="bold")
    ax.text(0.12, len(fine) + 0.2, "query-side words", fontsize=8, weight="bold")
    ax.text(0.56, len(fine) + 0.2, "response-side words", fontsize=8, weight="bold")
    for i, r in enumerate(fine.itertuples()):
        y = len(fine) - 1 - i + 0.5
        use = "" if pd.isna(r.usage) else f" ({r.usage:.2f})"
        ax.text(0.0, y, f"#{r.patch}{use}", fontsize=8, family="monospace", va="center")
        for x0, words, cores in ((0.12, r.query_words, getattr(r, "query_cores", None)),
                                 (0.56, r.response_words, getattr(r, "response_cores", None))):
            ax.text(x0, y + 0.12, str(words), fontsize=7.5, family="monospace", va="center")
            if isinstance(cores, str) and cores:
                ax.text(x0, y - 0.2, f"true cores: {cores}", fontsize=7, color="#555", va="center")
    res = int(fine.resolution.iloc[0]) if len(fine) else 0
    with warnings.catch_warnings():  # CJK words need a CJK font (Noto Sans CJK); patches.csv has them all
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        return save(fig, run_dir / "patches.png",
                    title=f"deepmatch: the {len(fine)} most used patches of the {res}-topic resolution "
                          "(top words of each side; the local layer matches words within a patch)")


def plot_all(run_dir: Path) -> list[Path]:
    from dlx.runs import read_json

    run_dir = Path(run_dir)
    table = need_table(run_dir / "table.csv")
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
    out = [plot_table(run_dir, table, summary.get("candidates"))]
    curve = read_table(run_dir / "learning.csv")
    if curve is not None:
        out.append(plot_learning(run_dir, curve))
    patches = read_table(run_dir / "patches.csv")
    if patches is not None:
        out.append(plot_patches(run_dir, patches))
    return out

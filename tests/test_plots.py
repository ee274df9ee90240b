"""Every figure module redraws from small tables in the shapes the runs write (no training): the PNGs
appear, and the labels, titles and ticks say what the figures show, for old and new run directories."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlx.kinds.grid import plots as grid_plots
from dlx.papers.batchnorm import plots as bn_plots
from dlx.papers.bench import plots as bench_plots
from dlx.papers.double_descent import plots as dd_plots
from dlx.papers.fp8 import plots as fp8_plots
from dlx.papers.idefender import plots as adv_plots
from dlx.plots import curves


@pytest.fixture
def drawn(monkeypatch):
    """Patch a module's ``save`` to record what each figure says before it is written: drawn(module) ->
    {png name: {suptitle, axes: [{title, xlabel, ylabel, yscale, xticks, legend, texts, lines}]}}."""
    seen = {}

    def watch(module):
        real = module.save

        def save(fig, path, title=None, **kw):
            axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
            seen[path.name] = {"suptitle": title, "axes": [
                {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                 "yscale": ax.get_yscale(), "xticks": [t.get_text() for t in ax.get_xticklabels()],
                 "legend": ax.get_legend_handles_labels()[1], "texts": [t.get_text() for t in ax.texts],
                 "lines": [line.get_ydata() for line in ax.get_lines()]} for ax in axes]}
            return real(fig, path, title=title, **kw)

        monkeypatch.setattr(module, "save", save)
        return seen

    return watch


def write(run_dir, summary=None, config=None, overrides=None, **tables):
    run_dir.mkdir(parents=True, exist_ok=True)
    if summary is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary))
    if config is not None:
        import yaml

        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    if overrides is not None:
        (run_dir / "overrides.yaml").write_text("".join(f'- "{o}"\n' for o in overrides))
    for name, df in tables.items():
        pd.DataFrame(df).to_csv(run_dir / f"{name}.csv", index=False)
    return run_dir


def made(paths, *names):
    got = {p.name for p in paths}
    assert set(names) <= got, got
    for p in paths:
        assert p.is_file() and p.stat().st_size > 1000, p


# -- learning curves ---------------------------------------------------------------------------------

def metrics(metric: str, epochs: int = 4) -> dict:
    e = np.arange(1, epochs + 1)
    out = {"epoch": e, "step": 10 * e}
    for split in ("train", "val", "test"):
        out[f"{split}_loss"] = 1.0 / e
        out[f"{split}_{metric}"] = 0.5 / e
    return out


@pytest.mark.parametrize("task, primary, loss_label, metric_label, scale", [
    ("classify", "error", "cross-entropy loss", "error (%)", 100),
    ("binary", "auc", "binary cross-entropy loss", "auc", 1),
    ("regress", "rmse", "mean squared error (standardized targets)", "rmse", 1),
])
def test_learning_curves_label_the_task(tmp_path, drawn, task, primary, loss_label, metric_label, scale):
    cfg = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "precision": {"name": "bf16"},
           "task": {"name": task}}
    from dlx.tasks import TASKS

    assert TASKS[task].primary == primary
    run = write(tmp_path / "t", summary={"kind": "train", **TASKS[task].describe()},
                config=cfg, metrics=metrics(primary))
    seen = drawn(curves)
    made(curves.plot_train_run(run), "learning_curves.png")
    fig = seen["learning_curves.png"]
    assert fig["suptitle"] == "mlp on digits, bf16 — t"
    loss, metric = fig["axes"]
    assert loss["ylabel"] == loss_label and metric["ylabel"] == metric_label
    assert metric["legend"] == ["train", "val", "test"]
    assert np.allclose(metric["lines"][0], scale * 0.5 / np.arange(1, 5))  # % only for error
    assert all(t.isdigit() for t in metric["xticks"] if t), metric["xticks"]  # whole epochs


def test_learning_curves_of_an_old_run_default_to_classification_error(tmp_path, drawn):
    run = write(tmp_path / "old", summary={"kind": "train", "model": "mlp"}, metrics=metrics("error"))
    seen = drawn(curves)
    made(curves.plot_train_run(run), "learning_curves.png")
    loss, metric = seen["learning_curves.png"]["axes"]
    assert loss["ylabel"] == "cross-entropy loss" and metric["ylabel"] == "error (%)"
    assert seen["learning_curves.png"]["suptitle"] == "old"  # no config.yaml: the run name alone


# -- grid sweep ---------------------------------------------------------------------------------------

AXES = "['model.width=8,16,32','optimizer.lr=0.01,0.1']"


def grid_results(metric: str = "test_error") -> pd.DataFrame:
    rows = [{"width": w, "lr": lr, "run_id": f"w{w}_lr{lr}", "status": "completed", "train_error": 0.1,
             metric: 0.2 + w / 100 + lr, "model.width": w, "optimizer.lr": lr, "data.name": "mnist1d"}
            for w in (8, 16, 32) for lr in (0.01, 0.1)]
    rows[-1] = {**rows[-1], "status": "failed", metric: np.nan}
    return pd.DataFrame(rows)


def test_grid_new_summary_full_keys_primary_and_fixed_overrides(tmp_path, drawn):
    summary = {"kind": "grid", "axes": ["model.width", "optimizer.lr"], "task": "binary", "primary": "auc",
               "metrics": {"primary": "test_auc"}}
    run = write(tmp_path / "g", summary=summary, results=grid_results("test_auc"),
                overrides=["data=mnist1d", "trainer.epochs=5", f"sweep.axes={AXES}"])
    seen = drawn(grid_plots)
    made(grid_plots.plot_grid(run), "grid.png")
    (ax,) = seen["grid.png"]["axes"]
    title = ax["title"].replace("\n", " ")
    assert "test auc" in title and "fixed: data=mnist1d trainer.epochs=5" in title
    assert "sweep." not in ax["title"]
    assert ax["xlabel"] == "model.width" and ax["ylabel"] == "test auc"
    assert ax["legend"] == ["optimizer.lr=0.01", "optimizer.lr=0.1"]
    assert ax["xticks"] == ["8", "16", "32"]
    assert np.allclose(ax["lines"][0], [0.29, 0.37, 0.53])  # auc raw, not in %


def test_grid_old_summary_short_axes_no_primary(tmp_path, drawn):
    results = grid_results()
    run = write(tmp_path / "g", summary={"kind": "grid", "axes": ["width", "lr"]},
                overrides=["trainer=quick", f"sweep.axes={AXES}"],
                results=results)
    seen = drawn(grid_plots)
    made(grid_plots.plot_grid(run), "grid.png")
    (ax,) = seen["grid.png"]["axes"]
    assert ax["xlabel"] == "model.width" and ax["ylabel"] == "test error (%)"  # full name from the columns
    assert ax["legend"] == ["optimizer.lr=0.01", "optimizer.lr=0.1"] and "fixed: trainer=quick" in ax["title"]
    # short grid columns only (no flattened config): short names, still drawn
    write(run, results=results[["width", "lr", "run_id", "status", "test_error"]])
    made(grid_plots.plot_grid(run), "grid.png")
    assert seen["grid.png"]["axes"][0]["xlabel"] == "width"


# -- double descent -----------------------------------------------------------------------------------

def test_double_descent_width_ticks_and_band_note(tmp_path, drawn):
    widths = list(range(1, 65))
    rows = [{"width": w, "label_noise": 0.15, "n_train": 4000, "seed": s, "run_id": f"w{w}s{s}",
             "status": "completed", "test_error": 0.3 + 0.01 * s + 0.1 * np.exp(-((w - 12) / 5) ** 2),
             "train_error": max(0.0, 0.3 - w / 40)} for w in widths for s in range(3)]
    curves_rows = [{"epoch": e, "test_error": 0.5 / e, "train_error": 0.4 / e, "width": w,
                    "label_noise": 0.15, "n_train": 4000, "seed": 0}
                   for w in (1, 8, 64) for e in (1, 2, 4, 8)]
    run = write(tmp_path / "dd", summary={"kind": "double_descent", "model": "mlp", "data": "mnist1d",
                                          "analysis": {"main": {"peak_width": 8}}},
                results=rows, curves=curves_rows)
    seen = drawn(dd_plots)
    made(dd_plots.plot_sweep(run), "error_vs_width.png", "heatmap_width_epoch.png", "epochwise.png")
    (ax,) = seen["error_vs_width.png"]["axes"]
    assert "band: ±1 std over 3 seeds" in ax["title"]
    ticks = [t for t in ax["xticks"] if t]
    assert ticks[0] == "1" and all(t.isdigit() for t in ticks) and 5 <= len(ticks) <= 11, ticks


def test_double_descent_few_widths_all_ticked(tmp_path, drawn):
    widths = [2, 4, 8, 16, 32, 64, 128, 256]
    rows = [{"width": w, "label_noise": 0.0, "n_train": n, "seed": 0, "status": "completed",
             "test_error": 0.2, "train_error": 0.1} for w in widths for n in (500, 4000)]
    run = write(tmp_path / "dd", summary={"model": "mlp", "data": "mnist1d"}, results=rows)
    seen = drawn(dd_plots)
    made(dd_plots.plot_sweep(run), "error_vs_width.png", "samplewise.png")
    for png in ("error_vs_width.png", "samplewise.png"):
        assert [t for t in seen[png]["axes"][0]["xticks"] if t] == [str(w) for w in widths]
    assert "over 1 seed)" in seen["error_vs_width.png"]["axes"][0]["title"]


# -- fp8 ----------------------------------------------------------------------------------------------

def test_fp8_log_curves_and_final_error_bars(tmp_path, drawn):
    precs = ["fp32", "fp8_wang", "fp8_wang_nearest", "fp8_native"]
    results = [{"model": m, "precision": p, "status": "skipped" if p == "fp8_native" else "completed",
                "test_error": None if p == "fp8_native" else 0.02 + 0.005 * i, "diff_to_fp32": None}
               for m in ("cnn", "resnet") for i, p in enumerate(precs)]
    results[5] = {**results[5], "status": "failed", "test_error": None}
    curves_rows = [{"model": r["model"], "precision": r["precision"], "epoch": e, "test_error": 0.4 / e,
                    "test_loss": 1.0 / e} for r in results if r["status"] == "completed" for e in range(1, 6)]
    run = write(tmp_path / "f", results=results, curves=curves_rows)
    seen = drawn(fp8_plots)
    made(fp8_plots.plot_fp8_run(run), "curves.png", "final_error.png")
    assert all(ax["yscale"] == "log" for ax in seen["curves.png"]["axes"])
    cnn, resnet = seen["final_error.png"]["axes"]
    assert cnn["xticks"] == precs
    assert cnn["texts"] == ["2.00%", "+0.50 pp", "+1.00 pp", "skipped"]
    assert "failed" in resnet["texts"] and "skipped" in resnet["texts"]
    assert cnn["legend"] == ["fp32: 2.00%"]


# -- batchnorm, bench, adversarial: the kit draws the same figures -----------------------------------

def test_batchnorm_figures(tmp_path):
    results = [{"bn": bn, "lr": lr, "seed": 0, "test_acc": 0.9, "diverged": (not bn) and lr > 0.5}
               for bn in (True, False) for lr in (0.01, 1.0)]
    curves_rows = [{"epoch": e, "train_loss": 1 / e, "test_accuracy": 0.5 + e / 10, "bn": bn, "lr": 0.01}
                   for bn in (True, False) for e in (1, 2)]
    rel = [{"bn": bn, "batch": 0, "eta": eta, "ratio": 1 + eta}
           for bn in (True, False) for eta in (1e-3, 1e-1)]
    act = [{"bn": bn, "layer": layer, "abs_mean": 0.1 * (layer + 1), "std": 1.0 + layer}
           for bn in (True, False) for layer in range(4)]
    rng = np.random.default_rng(0)
    grad = [{"bn": bn, "layer": "8.conv1", "grad": g} for bn in (True, False) for g in rng.normal(size=200)]
    run = write(tmp_path / "bn", summary={"model": "resnet", "depth": 20, "data": "digits",
                                          "metrics": {"small_lr": 0.01, "large_lr": 1.0}},
                results=results, curves=curves_rows, relative_loss=rel, activations=act, gradients=grad)
    made(bn_plots.plot_all(run), "accuracy_vs_lr.png", "training_curves.png", "relative_loss.png",
         "activations.png", "gradient_histogram.png")
    assert bn_plots.curve_picks({"metrics": {"small_lr": 0.01, "bn_best_lr": 0.1}}) == [
        (True, 0.01), (False, 0.01), (True, 0.1)]


def test_bench_figures(tmp_path):
    base = {"unit": "samples/s", "paper_model": "NCF", "status": "ok", "steps": 10}
    results = [{**base, "suite": "throughput", "model": "ncf", "mode": m, "mean": v, "std": 5.0,
                "pct_of_best": 100 * v / 300} for m, v in (("eager", 200.0), ("bf16", 300.0))]
    results.append({**base, "suite": "throughput", "model": "ncf", "mode": "compile", "status": "skipped"})
    results += [{"suite": "overhead", "model": "mlp/digits", "mode": m, "median": v, "std": 0.01,
                 "ratio": v / 0.5, "steps": 100} for m, v in (("hand", 0.5), ("dlx", 0.52))]
    results.append({"suite": "overhead", "model": "mlp/digits", "mode": "lightning", "note": "not installed"})
    results += [{"suite": "multiprocessing", "model": "1 MB float32", "mode": m, "mean": v, "std": 0.1}
                for m, v in (("shared_tensor", 1.0), ("pickled_numpy", 3.0))]
    steps = [{"suite": "throughput", "model": "ncf", "mode": m, "step": s, "seconds": 0.01 / s,
              "warmup": s < 2} for m in ("eager", "bf16") for s in (1, 2, 3)]
    run = write(tmp_path / "b", results=results, step_times=steps)
    made(bench_plots.plot_bench_run(run), "throughput.png", "step_times.png", "overhead.png",
         "multiprocessing.png")


def test_adversarial_figures(tmp_path, drawn):
    rng = np.random.default_rng(0)
    scores = [{"setting": "", "attack": "clean", "detector": d, "label": 0, "score": s}
              for d in ("idefender", "lid") for s in rng.normal(0, 1, 50)]
    cells = [(st, a, d) for st in ("graybox", "whitebox") for a in ("fgsm", "pgd")
             for d in ("idefender", "lid")]
    scores += [{"setting": st, "attack": a, "detector": d, "label": 1, "score": s} for st, a, d in cells
               for s in rng.normal(2, 1, 30) if (st, a) != ("whitebox", "fgsm")]  # one panel left empty
    results = [{"setting": st, "attack": a, "detector": d, "supervision": "supervised (LID)", "auroc": 0.9}
               for st, a, d in cells]
    abl = [{"ablation": k, "value": v, "attack": "fgsm", "auroc": 0.9}
           for k, vs in (("components", (1, 2)), ("layer", ("fc1", "fc2"))) for v in vs]
    run = write(tmp_path / "adv", results=results, scores=scores, ablation=abl)
    seen = drawn(adv_plots)
    made(adv_plots.plot_adversarial_run(run), "roc.png", "loglik_hist.png", "ablation.png")
    panels = seen["roc.png"]["axes"]
    assert [ax["title"] for ax in panels] == ["graybox: fgsm", "graybox: pgd", "whitebox: pgd"]
    assert panels[0]["legend"] == ["idefender (sup.) 0.900", "lid (sup.) 0.900"]
    assert len(seen["loglik_hist.png"]["axes"]) == 3

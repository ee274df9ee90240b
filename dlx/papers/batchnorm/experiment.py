"""Understanding Batch Normalization (Bjorck et al. 2018): BN's benefit is that it allows larger learning
rates. The same network with and without BN is trained over a log-spaced lr grid (each cell an ordinary
train run through dlx.sweep, so a re-run with the same --name resumes); divergence (NaN/inf, or a loss
above trainer.divergence_factor x the first) ends a child as 'diverged' and the sweep goes on.

Steps: validate (analysis.py) -> init-time probes of fresh models (probes.py) -> the lr x bn x seed sweep
-> collect, analyse, and decide the paper's claims on per-seed intervals against batchnorm.rules
(analysis.py), figures (plots.py).
"""

from __future__ import annotations

from pathlib import Path

from dlx.runs import Run, write_csv
from dlx.threads import cpu_seconds


def child_extras(run_dir: Path, results):
    """diverged_epoch per child (1-based: the epoch in which the loss blew up)."""
    from dlx.runs import read_summary

    results = results.copy()
    results["diverged_epoch"] = [read_summary(Path(run_dir) / "runs" / rid).get("diverged_epoch")
                                 for rid in results.run_id]
    return results


def children(cfg):
    from dlx.papers.batchnorm.analysis import grid
    from dlx.sweep import expand

    return expand(grid(cfg.sweep))


def check(cfg, overrides) -> None:
    from dlx.papers.batchnorm.analysis import check_analysis, grid

    check_analysis(cfg.batchnorm)
    grid(cfg.sweep)  # bad sweep settings stop here, before the init analyses


def prepare(cfg, run: Run) -> None:
    """Init-time analyses in this process (cheap), before the lr x bn x seed sweep of child runs."""
    from dlx.papers.batchnorm.probes import init_analyses

    rel, act, grad, gstats = init_analyses(cfg, list(cfg.sweep.bn))
    write_csv(run.path("relative_loss.csv"), rel)
    write_csv(run.path("activations.csv"), act)
    write_csv(run.path("gradients.csv"), grad)
    write_csv(run.path("gradient_stats.csv"), gstats)


def finalize(cfg, run: Run, children):
    import pandas as pd

    from dlx.papers.batchnorm.analysis import analyse, check_rules, claims, tidy
    from dlx.papers.batchnorm.probes import init_summary
    from dlx.sweep import collect
    from dlx.sweep.driver import finish

    results, curves = collect(run.dir, children)
    results = tidy(child_extras(run.dir, results))
    cols = ["bn", "lr", "seed", "train_acc", "test_acc", "diverged", "diverged_epoch", "diverged_step",
            "status", "epochs", "train_loss", "test_loss", "params", "wall_s", "train_s", "run_id",
            "error"]
    results = results[cols].sort_values(["bn", "lr", "seed"], ascending=[False, True, True])
    if len(curves):
        curves = curves.rename(columns={"batchnorm": "bn"})
    analysis = analyse(results, cfg.batchnorm.small_lr, float(cfg.batchnorm.min_acc), cfg.batchnorm.large_lr)
    names = ("relative_loss", "activations", "gradients", "gradient_stats")
    init = init_summary(*(pd.read_csv(run.path(f"{n}.csv")) for n in names))
    metrics = {k: v for k, v in analysis.items() if k != "per_lr"}
    return finish(run, results, metrics, curves=curves, analysis=analysis, init=init,
                  claims=claims(analysis, init, check_rules(cfg.batchnorm.rules)),
                  model=cfg.model.name, depth=cfg.model.get("depth"), data=cfg.data.name,
                  children=len(children), children_wall_s=round(float(results.wall_s.fillna(0).sum()), 1),
                  cpu_s=round(cpu_seconds(), 1))


def plot(run_dir: Path) -> list[Path]:
    from dlx.papers.batchnorm.plots import plot_all

    return plot_all(Path(run_dir))

"""Deep State Space Models for Time Series Forecasting (Rangapuram et al., NeurIPS 2018)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
# (coverage, baselines and recovery, not single numbers, are checked by analysis.check_analysis)
RULES = {"beats_margin": (0, None), "efficiency_margin": (0, None)}

register(Experiment(
    name="deepstate", impl="dlx.papers.deepstate.experiment",
    cite="Rangapuram et al., NeurIPS 2018",
    title="Deep State Space Models for Time Series Forecasting (Rangapuram et al., NeurIPS 2018)",
    claim="an RNN-parametrised state-space model forecasts well from little data",
    table_columns=("model", "train_range", "seed", "ql50", "ql90", "mase", "coverage", "status", "wall_s"),
    sweep=Sweep(swept_by={"model": "set sweep.models=[...]",
                          "data.train_range": "set sweep.train_ranges=[...]",
                          "seed": "set sweep.seeds=N (seeds 0..N-1 of the trained models)"}),
    control=("data.generator=nonlinear",),
    control_note="the same series' scale, length, patterns and noise level, but not a linear-Gaussian state "
                 "space model: regime-switching level, a multiplicative regime-dependent season, "
                 "heteroscedastic Student-t noise",
    rules=RULES,
))

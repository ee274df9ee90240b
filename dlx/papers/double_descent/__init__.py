"""Deep Double Descent (Nakkiran et al., 2019)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"epsilon": (0, 1), "min_rise": (-1, 1), "peak_factor": (1, None), "second_descent": (-1, 1),
         "noise_rise": (-1, 1), "epoch_min_rise": (-1, 1)}

register(Experiment(
    name="double_descent", impl="dlx.papers.double_descent.experiment",
    commands=("reproduce", "sweep double-descent"),
    cite="Nakkiran et al., ICLR 2020",
    title="Deep Double Descent: Where Bigger Models and More Data Hurt (Nakkiran et al., ICLR 2020)",
    claim="test error peaks at the interpolation threshold",
    table_columns=("width", "label_noise", "n_train", "seed", "params", "train_error", "test_error", "status",
                   "train_s"),
    sweep=Sweep(swept_by={"model.width": "set sweep.widths=[...]",
                          "data.label_noise": "set sweep.label_noise=[...]",
                          "data.n_train": "set sweep.n_train=[...]",
                          "seed": "set sweep.seeds=N (seeds 0..N-1)"}),
    rules=RULES,
))

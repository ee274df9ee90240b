"""`dlx tune`: Optuna's search over a train run's settings, scored on the validation split."""

from dlx.registry import Experiment, register

register(Experiment(
    name="tune", impl="dlx.kinds.tune.experiment", paper=False, commands=("tune",), resumable=True,
    title="hyperparameter search (Optuna TPE) of one model on the validation split: trials.csv, best.yaml",
    table_columns=(),
))

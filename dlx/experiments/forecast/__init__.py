"""`dlx forecast`: one forecaster (DeepState, DeepAR or a statsmodels baseline) on a panel of series."""

from dlx.experiments.registry import Experiment, register

register(Experiment(
    name="forecast", impl="dlx.experiments.forecast.experiment", paper=False, command="forecast",
    title="one forecaster on a panel of series: quantile forecasts as CSV, fan chart, learned components",
    table_columns=("model", "status", "ql50", "ql90", "mase", "coverage", "loss", "wall_s"),
))

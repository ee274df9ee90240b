"""`dlx forecast`: one forecaster (DeepState, DeepAR or a statsmodels baseline) on a panel of series."""

from dlx.registry import Experiment, register

register(Experiment(
    name="forecast", impl="dlx.kinds.forecast.experiment", paper=False, commands=("forecast",),
    title="one forecaster on a panel of series: quantile forecasts as CSV, fan chart, learned components",
    table_columns=("model", "status", "ql50", "ql90", "mase", "coverage", "loss", "wall_s"),
))

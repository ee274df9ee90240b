"""PyTorch: An Imperative Style, High-Performance Deep Learning Library (Paszke et al., NeurIPS 2019)."""

from dlx.registry import Experiment, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"overhead_max": (0, None), "eager_min": (0, 1), "shared_min": (0, None), "async_max": (0, None)}

register(Experiment(
    name="bench", impl="dlx.papers.bench.experiment", commands=("reproduce", "bench"),
    cite="Paszke et al., NeurIPS 2019",
    title="PyTorch: An Imperative Style, High-Performance Deep Learning Library "
          "(Paszke et al., NeurIPS 2019)",
    claim="eager PyTorch is fast; runner overhead is small",
    table_columns=("model", "mode", "mean", "std", "unit", "pct_of_best", "ratio", "compile_s", "status"),
    rules=RULES,
))

"""The one training loop, its callbacks and the evaluator."""

from dlx.train.evaluate import evaluate
from dlx.train.loop import History, TrainState, fit

__all__ = ["History", "TrainState", "evaluate", "fit"]

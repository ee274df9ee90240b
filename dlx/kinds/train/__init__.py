"""`dlx train`: one model trained on one dataset (the kind every sweep child is)."""

from dlx.registry import Experiment, register

register(Experiment(
    name="train", impl="dlx.kinds.train.experiment", paper=False, commands=("train",),
    title="one training run: metrics.csv, checkpoint, learning curves",
))

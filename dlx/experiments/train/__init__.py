"""`dlx train`: one model trained on one dataset (the kind every sweep child is)."""

from dlx.experiments.registry import Experiment, register

register(Experiment(
    name="train", impl="dlx.experiments.train.experiment", paper=False, command="train",
    title="one training run: metrics.csv, checkpoint, learning curves",
))

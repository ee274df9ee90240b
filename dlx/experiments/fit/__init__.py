"""`dlx fit`: a non-torch baseline (scikit-learn) fit on the same data and task as a train run."""

from dlx.experiments.registry import Experiment, register

register(Experiment(
    name="fit", impl="dlx.experiments.fit.experiment", paper=False, command="fit",
    title="one baseline fit (scikit-learn) with the train run's contract",
))

"""`dlx fit`: a non-torch baseline (scikit-learn) fit on the same data and task as a train run."""

from dlx.registry import Experiment, register

register(Experiment(
    name="fit", impl="dlx.kinds.fit.experiment", paper=False, commands=("fit",),
    title="one baseline fit (scikit-learn) with the train run's contract",
))

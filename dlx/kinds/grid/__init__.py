"""`dlx sweep grid`: any overrides crossed (or zipped) into child runs."""

from dlx.registry import Experiment, Sweep, register

register(Experiment(
    name="grid", impl="dlx.kinds.grid.experiment", paper=False, commands=("sweep grid",),
    title="a generic sweep of train (or baseline fit) runs over any overrides",
    sweep=Sweep(),
))

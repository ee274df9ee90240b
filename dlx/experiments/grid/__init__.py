"""`dlx sweep grid`: any overrides crossed (or zipped) into child runs."""

from dlx.experiments.registry import Experiment, Sweep, register

register(Experiment(
    name="grid", impl="dlx.experiments.grid.experiment", paper=False, command="sweep grid",
    title="a generic sweep of train (or baseline fit) runs over any overrides",
    sweep=Sweep(),
))

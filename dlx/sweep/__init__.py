"""Sweeps: a grid expands to child runs with deterministic ids, executors run them (inline, a local
process pool), collect() turns the children's run directories into one table."""

from dlx.sweep.collect import collect
from dlx.sweep.execute import execute
from dlx.sweep.grid import Child, expand, run_id

__all__ = ["Child", "collect", "execute", "expand", "run_id"]

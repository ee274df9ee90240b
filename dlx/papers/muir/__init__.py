"""Modular Universal Reparameterization (Meyerson & Miikkulainen, NeurIPS 2019)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"stl_margin": (0, None), "oracle_ratio": (0, None), "min_ari": (-1, 1), "min_cross_share": (0, 1),
         "worse_tolerance": (0, None)}

register(Experiment(
    name="muir", impl="dlx.papers.muir.experiment", cost_impl="dlx.papers.muir.cost",
    cite="Meyerson & Miikkulainen, NeurIPS 2019",
    title="Modular Universal Reparameterization: Deep Multi-Task Learning Across Diverse Domains "
          "(Meyerson & Miikkulainen, NeurIPS 2019)",
    claim="hypermodules shared across diverse tasks and modalities help each task",
    table_columns=("part", "setting", "method", "metric", "ours", "paper"),
    sweep=Sweep(swept_by={"seed": "set synthetic.seeds / crossmodal.seeds",
                          "child.part": "set parts=[synthetic] or [crossmodal]",
                          "child.method": "set synthetic.methods / crossmodal.methods",
                          "child.noise": "set synthetic.noise", "child.task": "set crossmodal.data.select"}),
    # the synthetic tasks share nothing (dlx/data/multitask.py kang_tasks, shared=false); the cross-modal part
    # has no generated premise to remove, so the control leaves it out and its claims read "not shown" there
    control=("synthetic.data.shared=false", "parts=[synthetic]"),
    control_note="synthetic: 30 tasks with independent weight directions (same scales, inputs, noise; groups "
                 "in name only); cross-modal part not run",
    rules=RULES,
))

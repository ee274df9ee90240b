"""Training Deep Neural Networks with 8-bit Floating Point Numbers (Wang et al., NeurIPS 2018)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"match": (-1, 1), "chunk": (1, None, "int"), "swamp_factor": (1, None), "rounding": (-1, 1),
         "chunking": (-1, 1)}

register(Experiment(
    name="fp8", impl="dlx.papers.fp8.experiment",
    cite="Wang et al., NeurIPS 2018",
    title="Training Deep Neural Networks with 8-bit Floating Point Numbers (Wang et al., NeurIPS 2018)",
    claim="8-bit floats train to FP32 accuracy",
    table_columns=("model", "precision", "seed", "status", "test_error", "diff_to_fp32", "wall_s"),
    sweep=Sweep(swept_by={"model": "set fp8.models / fp8.model_overrides",
                          "precision": "set fp8.precisions=[...]",
                          "seed": "set fp8.seeds=N (seeds 0..N-1 of fp8.seeded)"}),
    rules=RULES,
))

"""Deep Symmetry Networks (Gens & Domingos, NIPS 2014)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"small": (1, None, "int"), "gap": (0, 1), "shrink": (-1, 1), "beat": (-1, 1),
         "spread_ratio": (0, None), "search_gain": (-1, 1)}

register(Experiment(
    name="symnets", impl="dlx.papers.symnets.experiment",
    cite="Gens & Domingos, NIPS 2014",
    title="Deep Symmetry Networks (Gens & Domingos, NIPS 2014)",
    claim="feature maps over a symmetry group, kernel-interpolated and pooled over G, cut sample complexity "
          "vs convnets",
    table_columns=("model", "n_train", "test error %", "seeds", "params", "steps", "s/epoch"),
    sweep=Sweep(swept_by={"data.n_train": "set sweep.n_train=[...] (ablation.n_train, invariance.n_train)",
                          "seed": "set sweep.seeds=N (seeds 0..N-1)",
                          "model": "set sweep.models=[...] (names from variants)",
                          "model.K": "set ablation.K=[...] (or the symnet variant's overrides)",
                          "model.refine_radius": "set ablation.refine=[...] (or the symnet variant's "
                                                 "overrides)",
                          "data.rotate": "the invariance study trains upright (data.rotate=false) itself"}),
    control=("data.label=digit_plus_angle",),
    control_note="the class is the digit shifted by its 36-degree angle bin: the same turned images, but a "
                 "turn changes the class, so pooling over rotations loses what the label needs",
    rules=RULES,
))

"""Searching for Exotic Particles in High-Energy Physics with Deep Learning (Baldi, Sadowski & Whiteson,
Nature Communications 2014; NeurIPS 2014)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"deep_gain": (-1, 1), "match": (0, 1), "needs_high": (-1, 1), "beats_high": (-1, 1),
         "z_gain": (None, None)}

register(Experiment(
    name="higgs", impl="dlx.papers.higgs.experiment",
    cite="Baldi, Sadowski & Whiteson, Nat. Commun. 2014 / NeurIPS 2014",
    title="Searching for Exotic Particles in High-Energy Physics with Deep Learning (Baldi, Sadowski & "
          "Whiteson, Nature Communications 2014; NeurIPS 2014)",
    claim="deep networks on low-level collision features match shallow models given engineered features",
    table_columns=("model", "features", "AUC", "paper AUC", "Z", "paper Z", "runs"),
    control=("data.particles=shuffled",),
    control_note="each event's lepton, missing energy and four jets are drawn from different events of its "
                 "class (high-level masses recomputed from them): per-object class distributions kept, the "
                 "multi-object structure the masses and the deep net exploit removed",
    sweep=Sweep(swept_by={
        "model": "the models are higgs.models=[shallow,deep,gbt] (architectures: higgs.shallow, higgs.deep)",
        "model.depth": "set higgs.shallow.depth or higgs.deep.depth",
        "model.width": "set higgs.shallow.width or higgs.deep.width",
        "data.features": "set higgs.features=[low,high,all] (or a subset)",
        "seed": "set higgs.seeds=[...] (networks) or higgs.gbt_seeds=[...] (trees)",
        "data.n_train": "set data.n (generated training events) or higgs.curve.n_train=[...]",
    }),
    rules=RULES,
))

"""Searching for Higgs Boson Decay Modes with Deep Learning (Sadowski, Whiteson & Baldi, NIPS 2014): H -> tau
tau against Z -> tau tau (data=htautau); the exotic-Higgs benchmark of Nature Communications 2014 as an
extra (data=higgs_uci)."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"deep_gain": (-1, 1), "match": (0, 1), "needs_high": (-1, 1), "beats_high": (-1, 1),
         "z_gain": (None, None), "beats_all": (-1, 1), "data_gain": (-1, None)}

register(Experiment(
    name="higgs", impl="dlx.papers.higgs.experiment",
    cite="Sadowski, Whiteson & Baldi, NIPS 2014 (H -> tau tau; PRL 114, 111801)",
    title="Searching for Higgs Boson Decay Modes with Deep Learning (Sadowski, Whiteson & Baldi, NIPS 2014; "
          "companion: Baldi, Sadowski & Whiteson, PRL 114, 111801, 2015); data=higgs_uci: the exotic-Higgs "
          "benchmark of Baldi, Sadowski & Whiteson, Nature Communications 2014",
    claim="a deep network on the low-level features of H -> tau tau events beats shallow networks and "
          "boosted trees given engineered features, and raises the discovery significance",
    table_columns=("model", "features", "AUC", "paper AUC", "Z", "paper Z", "runs"),
    report_table="table.csv",  # one row per model and feature set (results.csv: one per child)
    control=("data.particles=shuffled",),
    control_note="each event's objects (the leptons, the missing momentum, the jets) are drawn from "
                 "different events of its class (high-level features recomputed from them): per-object class "
                 "distributions kept, the multi-object structure the masses and the deep net exploit removed",
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

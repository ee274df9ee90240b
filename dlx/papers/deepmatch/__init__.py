"""A Deep Architecture for Matching Short Texts (Lu & Li, NIPS 2013; "DeepMatch")."""

from dlx.registry import Experiment, Sweep, register

# the claims' numeric lines (<paper>.rules) and their bounds, checked before anything runs
RULES = {"margin": (0, 1), "chance_band": (0, 1), "order_margin": (0, 1)}

register(Experiment(
    name="deepmatch", impl="dlx.papers.deepmatch.experiment",
    cite="Lu & Li, NIPS 2013",
    title="A Deep Architecture for Matching Short Texts (Lu & Li, NIPS 2013)",
    claim="a deep model with local (patch) bilinear matches and a topic hierarchy matches texts from two "
          "vocabularies better than inner product, PLS and bilinear latent-space models",
    # the terminal's table (P@1, MRR: mean ± std over seeds) and results.csv's columns (dlx report)
    table_columns=("model", "variant", "seed", "n_train", "test_p_at_1", "test_mrr", "P@1", "MRR", "runs",
                   "fit_s"),
    # the negative control: the same texts with the responses dealt to other queries (dlx/data/textpairs.py)
    control=("data.pairing=shuffled",),
    control_note="responses dealt to other queries: the same texts and word statistics, but no query-topic "
                 "to response-topic structure (no local cross-vocabulary blocks) for patches or any scorer",
    sweep=Sweep(swept_by={
        "model": "the models are deepmatch.models=[random,inner_product,pls,bilinear,dual_encoder,deepmatch]",
        "seed": "set deepmatch.seeds=[...] (every model, the fixed scorers too: their tie-break follows the "
                "seed; deepmatch.fixed_models=[...] runs those on the first seed only)",
        "data.n_train": "set deepmatch.curve.n_train=[...] (training pairs of the learning curve)",
    }),
    rules=RULES,
))

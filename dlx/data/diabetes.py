"""``diabetes``: scikit-learn's bundled diabetes regression table (442 patients, 10 baseline features,
target: disease progression one year later; Efron et al. 2004). No download."""

from __future__ import annotations

from dlx.data.bundle import DataBundle, Meta
from dlx.data.registry import register_data
from dlx.data.tabular import table_bundle


@register_data("diabetes")
def build(cfg) -> DataBundle:
    """A seeded ``test_fraction`` test split; features and target standardized on the training rows."""
    from sklearn.datasets import load_diabetes  # lazily: importing scikit-learn costs ~1 s every process

    d = load_diabetes(scaled=False)
    meta = Meta("diabetes", "regress", (d.data.shape[1],), feature_names=list(d.feature_names), num_outputs=1)
    return table_bundle(cfg, d.data, d.target, meta)

"""Local intrinsic dimensionality baseline (Ma et al., 2018). SUPERVISED: a logistic regression on
per-layer LID estimates learns from clean inputs and adversarials of one known attack.

LID is the maximum-likelihood estimate from the k nearest neighbours in a reference batch of clean
training points: LID(x) = -(1/k sum_i log(r_i / r_k))^-1.
"""

from __future__ import annotations

import numpy as np

from dlx.papers.idefender.detectors.registry import Detector, register_detector


def lid_mle(x: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    """LID of each row of ``x`` against the points ``ref`` (neighbours at distance 0 are skipped)."""
    d = np.sqrt(np.maximum(((x[:, None, :] - ref[None]) ** 2).sum(-1), 0.0))
    d = np.sort(np.where(d <= 1e-12, np.inf, d), axis=1)[:, :k]
    rk = d[:, -1:]
    ratio = np.log(np.maximum(d, 1e-12) / np.maximum(rk, 1e-12))
    return -1.0 / np.minimum(ratio.mean(1), -1e-12)


@register_detector("lid")
class LID(Detector):
    name = "lid"
    supervised = True

    @classmethod
    def from_config(cls, c, seed: int = 0):
        return cls(layers=list(c.layers), k=int(c.k), ref_size=int(c.ref_size), seed=seed)

    def __init__(self, layers=("fc1", "fc2", "logits"), k: int = 20, ref_size: int = 100, seed: int = 0):
        self.layers, self.k, self.ref_size, self.seed = list(layers), int(k), int(ref_size), int(seed)

    def fit(self, train, y):
        rng = np.random.default_rng(self.seed)
        idx = rng.choice(len(train), size=min(self.ref_size, len(train)), replace=False)
        self.ref = {layer: train.feats[layer][idx].astype(np.float64) for layer in self.layers}
        self.k = min(self.k, len(idx) - 1)
        return self

    def features(self, obs) -> np.ndarray:
        return np.stack([lid_mle(obs.feats[layer].astype(np.float64), self.ref[layer], self.k)
                         for layer in self.layers], axis=1)

    def fit_supervised(self, clean, adv) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        xs = np.r_[self.features(clean), self.features(adv)]
        ys = np.r_[np.zeros(len(clean)), np.ones(len(adv))]
        self.clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(xs, ys)

    def score(self, obs) -> np.ndarray:
        return self.clf.decision_function(self.features(obs))

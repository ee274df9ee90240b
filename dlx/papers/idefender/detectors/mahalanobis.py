"""Mahalanobis baseline (Lee et al., 2018), unsupervised form: class-conditional Gaussians with one
tied covariance on the same hidden features; score = distance to the closest class mean (summed over
layers; Lee et al.'s input preprocessing and supervised layer weighting are left out)."""

from __future__ import annotations

import numpy as np

from dlx.papers.idefender.detectors.registry import Detector, register_detector


@register_detector("mahalanobis")
class Mahalanobis(Detector):
    name = "mahalanobis"

    @classmethod
    def from_config(cls, c, seed: int = 0):
        return cls(layers=list(c.layers))

    def __init__(self, layers=("fc2",), ridge: float = 1e-6):
        self.layers, self.ridge = list(layers), float(ridge)

    def fit(self, train, y):
        y = np.asarray(y)
        self.classes = np.unique(y)
        self.means, self.prec = {}, {}
        for layer in self.layers:
            f = train.feats[layer].astype(np.float64)
            mu = np.stack([f[y == c].mean(0) for c in self.classes])
            centered = f - mu[np.searchsorted(self.classes, y)]
            cov = centered.T @ centered / len(f)
            # a small ridge relative to the mean variance keeps dead ReLU units invertible
            cov += self.ridge * max(np.trace(cov) / len(cov), 1e-12) * np.eye(len(cov))
            self.means[layer], self.prec[layer] = mu, np.linalg.pinv(cov)
        return self

    def score(self, obs) -> np.ndarray:
        total = np.zeros(len(obs))
        for layer in self.layers:
            f = obs.feats[layer].astype(np.float64)
            d = f[:, None, :] - self.means[layer][None]
            dist = np.einsum("ncd,de,nce->nc", d, self.prec[layer], d)
            total += dist.min(1)
        return total

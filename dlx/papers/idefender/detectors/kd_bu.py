"""Kernel density + Bayesian uncertainty baseline (Feinman et al., 2017).

KD: Gaussian kernel density of the last hidden layer under the predicted class's training points;
BU: variance of Monte-Carlo-dropout softmax outputs. Feinman et al. combine the two with a logistic
regression trained on adversarials (supervised); here they are combined without any adversarial
example, as the sum of their z-scores on clean validation data (low density and high uncertainty are
suspicious), so the baseline stays unsupervised like I-defender. Without dropout, BU is left out.
"""

from __future__ import annotations

import numpy as np

from dlx.papers.idefender.detectors.registry import Detector, register_detector


def mc_uncertainty(mc_probs: np.ndarray) -> np.ndarray:
    """Feinman's U = mean_t ||p_t||^2 - ||mean_t p_t||^2 (the predictive variance summed over classes)."""
    return (mc_probs**2).sum(2).mean(0) - (mc_probs.mean(0) ** 2).sum(1)


@register_detector("kd_bu")
class KernelDensityUncertainty(Detector):
    name = "kd_bu"
    scales_with_train = True  # a kernel density over the predicted class's training points

    @classmethod
    def from_config(cls, c, seed: int = 0):
        return cls(layer=str(c.layer), bandwidth=float(c.bandwidth))

    def __init__(self, layer: str = "fc2", bandwidth: float = 1.0):
        self.layer, self.bandwidth = layer, float(bandwidth)

    def fit(self, train, y):
        from sklearn.neighbors import KernelDensity
        from sklearn.preprocessing import StandardScaler

        y = np.asarray(y)
        f = train.feats[self.layer].astype(np.float64)
        self.scaler = StandardScaler().fit(f)  # bandwidth in units of each feature's spread
        z = self.scaler.transform(f)
        self.kdes = {int(c): KernelDensity(bandwidth=self.bandwidth).fit(z[y == c]) for c in np.unique(y)}
        return self

    def parts(self, obs) -> tuple[np.ndarray, np.ndarray | None]:
        z = self.scaler.transform(obs.feats[self.layer].astype(np.float64))
        pred = obs.pred
        logkd = np.full(len(obs), -np.inf)
        for c in np.unique(pred):
            if int(c) in self.kdes:
                logkd[pred == c] = self.kdes[int(c)].score_samples(z[pred == c])
        bu = mc_uncertainty(obs.mc_probs) if obs.mc_probs is not None else None
        return logkd, bu

    def calibrate(self, val) -> None:
        logkd, bu = self.parts(val)
        self.kd_stats = (np.mean(logkd), np.std(logkd) + 1e-12)
        self.bu_stats = None if bu is None else (np.mean(bu), np.std(bu) + 1e-12)

    def score(self, obs) -> np.ndarray:
        logkd, bu = self.parts(obs)
        s = -(logkd - self.kd_stats[0]) / self.kd_stats[1]
        if bu is not None and self.bu_stats is not None:
            s = s + (bu - self.bu_stats[0]) / self.bu_stats[1]
        return s

"""I-defender (Zheng & Hong, NeurIPS 2018): the intrinsic hidden-state distribution of each class.

Per class, a Gaussian mixture (EM, scikit-learn) over hidden fully connected outputs of clean training
data; an input is scored by its log-likelihood under the mixture of the class the classifier predicts
for it. Unsupervised: it never sees an adversarial example.

When several hidden layers are modelled (``detector.idefender.layers``), each gets its own per-class
mixtures and the input's score is the SUM of its per-layer log-likelihoods: dlx's choice, not the paper's
(it treats the layers as independent given the predicted class, and needs no per-layer weights, which
would have to be tuned on adversarials). The ablation (ablation.csv) scores each layer alone as well.
"""

from __future__ import annotations

import numpy as np

from dlx.errors import DlxError
from dlx.papers.idefender.detectors.registry import Detector, register_detector

COVARIANCES = ("full", "tied", "diag", "spherical")
UNSEEN = -1e12  # log-likelihood under a class with no mixture: below any real one, finite for ROC


@register_detector("idefender")
class IDefender(Detector):
    name = "idefender"

    @classmethod
    def from_config(cls, c, seed: int = 0):
        return cls(layers=list(c.layers), n_components=int(c.components), covariance=str(c.covariance),
                   pca=c.pca, reg_covar=float(c.reg_covar), seed=seed)

    def __init__(self, layers=("fc2",), n_components: int = 5, covariance: str = "full", pca=None,
                 reg_covar: float = 1e-3, seed: int = 0, max_iter: int = 200):
        if covariance not in COVARIANCES:
            raise DlxError(f"detector.idefender.covariance '{covariance}' is not one of: "
                           f"{', '.join(COVARIANCES)}")
        if int(n_components) < 1:
            raise DlxError(f"detector.idefender.components must be >= 1, got {n_components}")
        if pca is not None and int(pca) < 1:
            raise DlxError(f"detector.idefender.pca must be null or >= 1, got {pca}")
        self.layers, self.k, self.covariance = list(layers), int(n_components), covariance
        self.pca, self.reg_covar, self.seed, self.max_iter = pca, float(reg_covar), int(seed), int(max_iter)

    def _transform(self, layer: str, f: np.ndarray) -> np.ndarray:
        scaler, pca = self.prep[layer]
        z = scaler.transform(f.astype(np.float64))
        return pca.transform(z) if pca is not None else z

    def fit(self, train, y):
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture
        from sklearn.preprocessing import StandardScaler

        y = np.asarray(y)
        self.classes = np.unique(y)
        self.prep, self.gmms = {}, {}
        for layer in self.layers:
            f = train.feats[layer].astype(np.float64)
            # standardizing makes reg_covar a fraction of each unit's variance, whatever the layer's scale
            scaler = StandardScaler().fit(f)
            pca = None
            if self.pca is not None:
                dim = min(int(self.pca), f.shape[1], len(f))
                pca = PCA(dim, random_state=self.seed).fit(scaler.transform(f))
            self.prep[layer] = (scaler, pca)
            z = self._transform(layer, f)
            for c in self.classes:
                zc = z[y == c]
                if len(zc) < 2:  # EM needs two points; such a class is treated as absent (see loglik)
                    continue
                gmm = GaussianMixture(min(self.k, len(zc)), covariance_type=self.covariance,
                                      reg_covar=self.reg_covar, max_iter=self.max_iter, n_init=1,
                                      random_state=self.seed)
                self.gmms[layer, int(c)] = gmm.fit(zc)
        return self

    def adopt(self, fitted) -> bool:
        """Take ``fitted``'s mixtures instead of fitting, where they are the ones this detector would fit:
        same mixture settings and seed, and every layer of ours among its layers (each layer's mixtures are
        fitted on their own, so they are identical). The caller vouches that ``fitted`` saw the same training
        data. False (nothing taken) otherwise."""
        same = (isinstance(fitted, IDefender) and hasattr(fitted, "gmms")
                and (fitted.k, fitted.covariance, fitted.pca, fitted.reg_covar, fitted.seed, fitted.max_iter)
                == (self.k, self.covariance, self.pca, self.reg_covar, self.seed, self.max_iter)
                and set(self.layers) <= set(fitted.layers))
        if same:
            self.classes = fitted.classes
            self.prep = {layer: fitted.prep[layer] for layer in self.layers}
            self.gmms = {key: g for key, g in fitted.gmms.items() if key[0] in self.layers}
        return same

    def loglik(self, obs) -> np.ndarray:
        """Sum over layers of log p(hidden output | mixture of the predicted class) (the sum is dlx's choice,
        see the module docstring)."""
        pred = obs.pred
        total = np.zeros(len(obs))
        for layer in self.layers:
            z = self._transform(layer, obs.feats[layer])
            for c in np.unique(pred):
                m = pred == c
                if (layer, int(c)) not in self.gmms:  # class (nearly) absent from training: nothing typical
                    total[m] += UNSEEN
                    continue
                total[m] += self.gmms[layer, int(c)].score_samples(z[m])
        return total

    def score(self, obs) -> np.ndarray:
        return -self.loglik(obs)

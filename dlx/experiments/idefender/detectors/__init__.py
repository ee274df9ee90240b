"""Detectors of adversarial inputs. Every detector is fit on clean training data and scores inputs:
higher = more likely adversarial. Thresholds come from clean validation scores at a target FPR.

``supervised`` detectors (LID) additionally learn from adversarials of one known attack; every table
marks them as such.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from dlx.errors import DlxError


class Detector(ABC):
    name = "detector"
    supervised = False

    def fit(self, train, y: np.ndarray):
        """Learn from clean training inputs (an Observed) and their labels."""
        return self

    def calibrate(self, val) -> None:
        """See clean validation inputs once before thresholds are set (default: nothing to learn)."""
        return None

    def fit_supervised(self, clean, adv) -> None:
        """Learn from adversarials of a known attack; only supervised detectors (LID) take this."""
        raise TypeError(f"{self.name} is unsupervised: it never sees adversarial examples")

    @abstractmethod
    def score(self, obs) -> np.ndarray:
        """Higher = more likely adversarial."""


DETECTORS = ("idefender", "max_softmax", "mahalanobis", "kd_bu", "lid")


def check_detectors(names, key: str = "detectors") -> list[str]:
    from dlx.config import name_list

    return name_list(names, list(DETECTORS), key, "detector")


def build_detector(name: str, cfg, seed: int = 0) -> Detector:
    """The detector ``name`` with its settings from ``cfg`` (the ``detector`` config block)."""
    check_detectors([name])
    c = cfg.get(name, {}) or {}
    if name == "idefender":
        from dlx.experiments.idefender.detectors.idefender import IDefender

        return IDefender(layers=list(c.layers), n_components=int(c.components), covariance=str(c.covariance),
                         pca=c.pca, reg_covar=float(c.reg_covar), seed=seed)
    if name == "max_softmax":
        from dlx.experiments.idefender.detectors.softmax import MaxSoftmax

        return MaxSoftmax()
    if name == "mahalanobis":
        from dlx.experiments.idefender.detectors.mahalanobis import Mahalanobis

        return Mahalanobis(layers=list(c.layers))
    if name == "kd_bu":
        from dlx.experiments.idefender.detectors.kd_bu import KernelDensityUncertainty

        return KernelDensityUncertainty(layer=str(c.layer), bandwidth=float(c.bandwidth))
    from dlx.experiments.idefender.detectors.lid import LID

    return LID(layers=list(c.layers), k=int(c.k), ref_size=int(c.ref_size), seed=seed)


def threshold(clean_val_scores: np.ndarray, fpr: float) -> float:
    """The score above which an input is flagged, so that a fraction ``fpr`` of clean validation is."""
    if not 0.0 < fpr < 1.0:
        raise DlxError(f"detector.fpr must be in (0, 1), got {fpr}")
    return float(np.quantile(np.asarray(clean_val_scores, dtype=np.float64), 1.0 - fpr))


def separation(clean: np.ndarray, adv: np.ndarray, thr: float) -> dict:
    """AUROC (adversarial = positive), TPR at ``thr`` and the realized FPR on ``clean``."""
    from dlx.metrics import auc

    clean, adv = np.asarray(clean, np.float64), np.asarray(adv, np.float64)
    auroc = float("nan")
    if len(clean) and len(adv):
        auroc = auc(np.r_[np.zeros(len(clean)), np.ones(len(adv))], np.r_[clean, adv])
    return {"auroc": auroc, "tpr": float((adv > thr).mean()) if len(adv) else float("nan"),
            "fpr_test": float((clean > thr).mean()) if len(clean) else float("nan")}

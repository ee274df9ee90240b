"""Detectors of adversarial inputs. Every detector is fit on clean training data and scores inputs:
higher = more likely adversarial. Thresholds come from clean validation scores at a target FPR.

Thresholds are global by default (one score cut for every input) or per predicted class
(``detector.per_class``): a global cut flags each class at its own rate, since classes differ in how
typical their clean inputs look to a detector.

``supervised`` detectors (LID) additionally learn from adversarials of one known attack; every table
marks them as such.

The registry (the ``Detector`` protocol, ``@register_detector``, ``build_detector``) is registry.py;
importing this package registers every detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlx.errors import DlxError

# Explicit imports (no discovery): each module registers its detector on import.
from dlx.papers.idefender.detectors import idefender, kd_bu, lid, mahalanobis, softmax  # noqa: F401
from dlx.papers.idefender.detectors.registry import (
    DETECTORS,
    Detector,
    build_detector,
    check_detectors,
    register_detector,
)

__all__ = ["DETECTORS", "Detector", "Thresholds", "build_detector", "check_detectors", "class_fpr",
           "register_detector", "separation", "threshold", "thresholds"]


def threshold(clean_val_scores: np.ndarray, fpr: float) -> float:
    """The score above which an input is flagged, so that a fraction ``fpr`` of clean validation is: the
    (k+1)-th highest of the n scores with k = round(fpr * n), so exactly k are flagged (ties aside), the
    rate nearest ``fpr`` that n inputs allow (a class with 10 validation inputs can be flagged at 0% or
    10%, not 5%)."""
    if not 0.0 < fpr < 1.0:
        raise DlxError(f"detector.fpr must be in (0, 1), got {fpr}")
    s = np.sort(np.asarray(clean_val_scores, dtype=np.float64))
    if len(s) == 0:
        raise DlxError("no clean validation score to set a threshold on")
    k = min(int(np.floor(fpr * len(s) + 0.5)), len(s) - 1)
    return float(s[len(s) - 1 - k])


@dataclass
class Thresholds:
    """A detector's thresholds: one global, and optionally one per predicted class.

    ``per_class`` maps a class to the ``1 - fpr`` quantile of the scores of the clean validation inputs
    the classifier predicts as that class, so each class is flagged at the target rate on the calibration
    data; a class no validation input is predicted as keeps the global threshold."""

    value: float
    per_class: dict[int, float] | None = None

    def at(self, pred) -> np.ndarray:
        """The threshold that applies to each input, by its predicted class."""
        pred = np.asarray(pred)
        out = np.full(len(pred), self.value, dtype=np.float64)
        if self.per_class:
            for c, t in self.per_class.items():
                out[pred == c] = t
        return out

    @property
    def mode(self) -> str:
        return "per_class" if self.per_class is not None else "global"


def thresholds(val_scores: np.ndarray, val_pred: np.ndarray, fpr: float, per_class: bool) -> Thresholds:
    """Thresholds at ``fpr`` on clean validation scores: global, or per predicted class as well."""
    val_scores, val_pred = np.asarray(val_scores, np.float64), np.asarray(val_pred)
    glob = threshold(val_scores, fpr)
    if not per_class:
        return Thresholds(glob)
    return Thresholds(glob, {int(c): threshold(val_scores[val_pred == c], fpr) for c in np.unique(val_pred)})


def class_fpr(scores: np.ndarray, pred: np.ndarray, thr: Thresholds, classes: int) -> list[dict]:
    """Per class: how many clean inputs are predicted as it and the fraction of them flagged."""
    scores, pred = np.asarray(scores, np.float64), np.asarray(pred)
    flagged = scores > thr.at(pred)
    return [{"class": c, "n": int((pred == c).sum()),
             "fpr": float(flagged[pred == c].mean()) if (pred == c).any() else float("nan"),
             "threshold": float(thr.per_class.get(c, thr.value)) if thr.per_class else thr.value}
            for c in range(classes)]


def separation(clean: np.ndarray, adv: np.ndarray, thr, adv_thr=None) -> dict:
    """AUROC (adversarial = positive), TPR at ``thr`` and the realized FPR on ``clean``. ``thr`` is a number
    or one threshold per clean input (per-class thresholds); ``adv_thr`` the same for the adversarials
    (default: ``thr``, which must then be a number)."""
    from dlx.metrics import auc

    clean, adv = np.asarray(clean, np.float64), np.asarray(adv, np.float64)
    adv_thr = thr if adv_thr is None else adv_thr
    auroc = float("nan")
    if len(clean) and len(adv):
        auroc = auc(np.r_[np.zeros(len(clean)), np.ones(len(adv))], np.r_[clean, adv])
    return {"auroc": auroc, "tpr": float((adv > adv_thr).mean()) if len(adv) else float("nan"),
            "fpr_test": float((clean > thr).mean()) if len(clean) else float("nan")}

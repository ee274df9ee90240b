"""Max-softmax baseline (Hendrycks & Gimpel, 2017): low confidence = suspicious."""

from __future__ import annotations

import numpy as np

from dlx.papers.idefender.detectors.registry import Detector, register_detector


@register_detector("max_softmax")
class MaxSoftmax(Detector):
    name = "max_softmax"

    def score(self, obs) -> np.ndarray:
        z = obs.logits.astype(np.float64)
        z = z - z.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        return -p.max(1)

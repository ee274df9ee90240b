"""Classification: cross-entropy; error, accuracy and mean loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Classify:
    name = "classify"

    def __init__(self, cfg=None):
        from dlx.errors import DlxError

        self.label_smoothing = float(cfg.get("label_smoothing", 0.0)) if cfg is not None else 0.0
        if not 0.0 <= self.label_smoothing < 1.0:
            raise DlxError(f"task.label_smoothing must be in [0, 1), got {self.label_smoothing}")

    def loss(self, model, batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, label_smoothing=self.label_smoothing)

    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        """Sums over the batch (kept on the device; the evaluator reduces them once at the end)."""
        x, y = batch
        logits = model(x).float()
        return {"loss": F.cross_entropy(logits, y, reduction="sum"),
                "errors": (logits.argmax(1) != y).sum(), "n": torch.tensor(y.shape[0])}

    @staticmethod
    def reduce(sums: dict[str, float]) -> dict[str, float]:
        n = max(sums["n"], 1)
        return {"loss": sums["loss"] / n, "error": sums["errors"] / n, "accuracy": 1 - sums["errors"] / n}

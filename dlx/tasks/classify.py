"""Classification: cross-entropy; error, accuracy and mean loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlx.errors import DlxError
from dlx.tasks.base import Task
from dlx.tasks.registry import register_task


@register_task("classify")
class Classify(Task):
    name = "classify"
    primary = "error"
    higher_is_better = False
    accepts = ("classify",)
    loss_name = "cross-entropy loss"

    def __init__(self, cfg=None, meta=None):
        super().__init__(cfg, meta)
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

    def reduce(self, acc: dict) -> dict[str, float]:
        n = max(acc["n"], 1)
        return {"loss": acc["loss"] / n, "error": acc["errors"] / n, "accuracy": 1 - acc["errors"] / n}

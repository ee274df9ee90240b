"""Binary detection (signal vs background): one logit per example, binary cross-entropy; AUC (the
headline), error at logit 0 and mean loss. Scores and labels are concatenated over a split, so the AUC
is over the whole split, not averaged over batches."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlx.tasks.base import Task
from dlx.tasks.registry import register_task


def logit(model, x) -> torch.Tensor:
    """The model's score as one logit per example: outputs of shape (N,) or (N, 1)."""
    out = model(x).float()
    return out.reshape(out.shape[0], -1)[:, 0] if out.dim() > 1 else out


@register_task("binary")
class Binary(Task):
    name = "binary"
    primary = "auc"
    higher_is_better = True
    accepts = ("binary",)
    loss_name = "binary cross-entropy loss"

    def loss(self, model, batch) -> torch.Tensor:
        x, y = batch
        return F.binary_cross_entropy_with_logits(logit(model, x), y.float())

    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        x, y = batch
        s = logit(model, x)
        return {"loss": F.binary_cross_entropy_with_logits(s, y.float(), reduction="sum"),
                "errors": ((s > 0).long() != y.long()).sum(), "n": torch.tensor(y.shape[0]),
                "score": s, "label": y.long()}

    def reduce(self, acc: dict) -> dict[str, float]:
        from dlx.metrics import auc

        n = max(acc["n"], 1)
        labels = acc.get("label")
        both = labels is not None and 0 < labels.sum() < len(labels)
        return {"loss": acc["loss"] / n, "error": acc["errors"] / n, "accuracy": 1 - acc["errors"] / n,
                "auc": auc(labels, acc["score"]) if both else float("nan")}

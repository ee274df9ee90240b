"""Next-character (or next-token) language modelling: a batch is ``(x, y)`` of (B, T) token ids with ``y``
the next token of each position; the model returns (B, T, V) logits. The loss is the mean cross-entropy per
token (nats); the headline metric is perplexity (``dlx.metrics.perplexity``), also bits per token and the
next-token error rate."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlx.metrics import perplexity
from dlx.tasks.base import Task
from dlx.tasks.registry import register_task


def logits_of(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x).float()
    if out.dim() != 3 or out.shape[:2] != y.shape:
        raise RuntimeError(f"a language model must return (batch, time, vocabulary) logits for "
                           f"{tuple(y.shape)} targets, got {tuple(out.shape)}")
    return out


@register_task("lm")
class LanguageModel(Task):
    name = "lm"
    primary = "perplexity"
    higher_is_better = False
    accepts = ("lm",)
    loss_name = "cross-entropy per token (nats)"

    def loss(self, model, batch) -> torch.Tensor:
        x, y = batch
        out = logits_of(model, x, y)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        x, y = batch
        out = logits_of(model, x, y)
        flat = out.reshape(-1, out.shape[-1])
        return {"nll": F.cross_entropy(flat, y.reshape(-1), reduction="sum"),
                "errors": (flat.argmax(-1) != y.reshape(-1)).sum(), "n": torch.tensor(y.numel())}

    def reduce(self, acc: dict) -> dict[str, float]:
        n = max(acc["n"], 1)
        nll = acc["nll"] / n
        return {"loss": nll, "perplexity": perplexity(acc["nll"], n), "bits_per_token": nll / math.log(2),
                "error": acc["errors"] / n}

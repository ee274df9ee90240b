"""Regression: mean squared error on standardized targets; RMSE (the headline) and MAE in the target's
own units. Datasets standardize targets with training-split statistics and record the scale in
``meta.extra['target_std']``, which turns the errors back into the original units."""

from __future__ import annotations

import torch

from dlx.tasks.base import Task
from dlx.tasks.registry import register_task


def prediction(model, x, like: torch.Tensor) -> torch.Tensor:
    """Model output shaped like the targets: (N, 1) outputs for (N,) targets are squeezed."""
    out = model(x).float()
    return out.reshape(like.shape)


@register_task("regress")
class Regress(Task):
    name = "regress"
    primary = "rmse"
    higher_is_better = False
    accepts = ("regress",)
    loss_name = "mean squared error (standardized targets)"

    def __init__(self, cfg=None, meta=None):
        super().__init__(cfg, meta)
        self.scale = float((meta.extra if meta is not None else {}).get("target_std", 1.0))

    def loss(self, model, batch) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(prediction(model, x, y), y.float())

    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        x, y = batch
        diff = prediction(model, x, y) - y.float()
        return {"sq": (diff ** 2).sum(), "abs": diff.abs().sum(), "n": torch.tensor(y.numel())}

    def reduce(self, acc: dict) -> dict[str, float]:
        n = max(acc["n"], 1)
        mse = acc["sq"] / n
        return {"loss": mse, "rmse": self.scale * mse ** 0.5, "mae": self.scale * acc["abs"] / n}

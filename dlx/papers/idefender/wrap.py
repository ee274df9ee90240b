"""Attacks work in [0, 1] pixel units; the data pipeline normalizes. PixelModel puts normalization inside."""

from __future__ import annotations

import torch
import torch.nn as nn


def norm_stats(meta, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) for a batch of ``shape`` inputs; identity when not normalized."""
    mean = meta.extra.get("norm_mean")
    std = meta.extra.get("norm_std")
    view = (1, -1) + (1,) * (len(shape) - 1)
    if mean is None or std is None:
        return torch.zeros(1).view(*(1,) * (len(shape) + 1)), torch.ones(1).view(*(1,) * (len(shape) + 1))
    mean_t = torch.tensor(mean, dtype=torch.float32)
    std_t = torch.tensor(std, dtype=torch.float32)
    if len(shape) == 1:  # flat inputs: every feature is its own channel
        return mean_t.view(1, -1), std_t.view(1, -1)
    return mean_t.view(view), std_t.view(view)


class PixelModel(nn.Module):
    """``model((x - mean) / std)``: the classifier as a function of [0, 1] pixels."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def to_pixels(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return x * std.to(x.device) + mean.to(x.device)


def from_pixels(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean.to(x.device)) / std.to(x.device)

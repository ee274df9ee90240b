"""Helpers shared by the model families: pick 1-D or 2-D layers from the input shape."""

from __future__ import annotations

import torch
import torch.nn as nn

from dlx.errors import DlxError


def channels_and_spatial(shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(C,H,W) -> (C,(H,W)); (C,L) -> (C,(L,)); (L,) -> (1,(L,)): flat vectors become 1-channel sequences."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        return shape[0], shape[1:]
    if len(shape) == 2:
        return shape[0], shape[1:]
    if len(shape) == 1:
        return 1, shape
    raise DlxError(f"input shape {shape} is not (C,H,W), (C,L) or (L,)")


class Reshape(nn.Module):
    """Give each example a fixed shape, e.g. add the channel axis to (L,) inputs."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return str(self.shape)


def conv(dims: int):
    return {1: nn.Conv1d, 2: nn.Conv2d}[dims]


def maxpool(dims: int):
    return {1: nn.MaxPool1d, 2: nn.MaxPool2d}[dims]


def global_max(dims: int) -> nn.Module:
    return {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d}[dims](1)


def global_avg(dims: int) -> nn.Module:
    return {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}[dims](1)


def norm(dims: int, channels: int, batchnorm: bool) -> nn.Module:
    """BatchNorm of the right dimensionality, or Identity when batchnorm is off."""
    if not batchnorm:
        return nn.Identity()
    return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims](channels)


def activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh}
    if name not in acts:
        raise DlxError(f"unknown activation '{name}' (choose one of: {', '.join(acts)})")
    return acts[name]()


def positive_int(cfg, key: str, default: int, model: str, minimum: int = 1) -> int:
    """Read an integer config key and reject nonsense with a one-line DlxError."""
    v = cfg.get(key, default)
    if v is None:
        v = default
    try:
        iv = int(v)
    except (TypeError, ValueError):
        iv = None
    if iv is None or iv != v or iv < minimum:
        raise DlxError(f"model.{key} for '{model}' must be an integer >= {minimum}, got {v!r}")
    return iv


def dropout_p(cfg, model: str) -> float:
    p = cfg.get("dropout", 0.0) or 0.0
    if not 0.0 <= float(p) < 1.0:
        raise DlxError(f"model.dropout for '{model}' must be in [0, 1), got {p!r}")
    return float(p)

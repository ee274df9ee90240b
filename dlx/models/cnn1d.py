"""Small 1-D CNN for sequences such as MNIST-1D (Greydanus, 2020)."""

from __future__ import annotations

import torch.nn as nn

from dlx.models.layers import Reshape, channels_and_spatial, norm, positive_int
from dlx.models.registry import register_model


@register_model("cnn1d", stackable=True)
def build_cnn1d(cfg, meta) -> nn.Module:
    """3 x [Conv1d(width, kernel, padding kernel//2) -> BN? -> ReLU], strides 1,2,2, flatten -> Linear.

    A simplification of MNIST-1D's ConvBase (which strides every layer): the first layer keeps full
    resolution, the next two halve it. A stride falls back to 1 once the length is 1. Images (C,H,W)
    are read as (C, H*W) sequences, flat (L,) inputs as (1, L).
    """
    width = positive_int(cfg, "width", 32, "cnn1d")
    kernel = positive_int(cfg, "kernel", 5, "cnn1d")
    bn = bool(cfg.get("batchnorm", False))
    c_in, spatial = channels_and_spatial(meta.input_shape)
    length = 1
    for s in spatial:
        length *= s
    layers: list[nn.Module] = [Reshape(c_in, length)]
    for stride in (1, 2, 2):
        if length < 2:
            stride = 1
        pad = kernel // 2
        layers += [nn.Conv1d(c_in, width, kernel, stride=stride, padding=pad), norm(1, width, bn), nn.ReLU()]
        length = (length + 2 * pad - kernel) // stride + 1
        c_in = width
    layers += [nn.Flatten(), nn.Linear(width * length, int(meta.num_outputs))]
    return nn.Sequential(*layers)

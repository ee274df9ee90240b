"""Fully connected classifier on the flattened input."""

from __future__ import annotations

import math

import torch.nn as nn

from dlx.models.layers import activation, dropout_p, norm, positive_int
from dlx.models.registry import register_model


@register_model("mlp", stackable=True)
def build_mlp(cfg, meta) -> nn.Module:
    """flatten -> depth x [Linear(width) -> BN? -> act -> Dropout?] -> Linear(classes); depth=0 is linear."""
    width = positive_int(cfg, "width", 256, "mlp")
    depth = positive_int(cfg, "depth", 2, "mlp", minimum=0)
    bn = bool(cfg.get("batchnorm", False))
    act = str(cfg.get("activation", "relu") or "relu")
    p = dropout_p(cfg, "mlp")
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(int(s) for s in meta.input_shape)
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), norm(1, width, bn), activation(act)]
        if p > 0:
            layers.append(nn.Dropout(p))
        fan_in = width
    layers.append(nn.Linear(fan_in, int(meta.num_outputs)))
    return nn.Sequential(*layers)

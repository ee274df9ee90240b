"""The 5-layer CNN of Deep Double Descent (Nakkiran et al., 2019) with width parameter k."""

from __future__ import annotations

import torch.nn as nn

from dlx.models.layers import Reshape, channels_and_spatial, conv, global_max, maxpool, norm, positive_int
from dlx.models.registry import register_model


@register_model("cnn5", stackable=True)
def build_cnn5(cfg, meta) -> nn.Module:
    """4 x [conv3x3 -> BN -> ReLU] with [k,2k,4k,8k] channels, MaxPool(2) after the first three,
    global max pool, Linear(8k -> classes).

    The paper's final MaxPool(4) on 32x32 equals a global max pool; adaptive pooling lets 8x8 digits
    and 1-D sequences (Conv1d etc.) use the same network. A MaxPool(2) is skipped when the spatial size
    is already 1 so tiny inputs never shrink to zero.
    """
    k = positive_int(cfg, "width", 64, "cnn5")
    bn = bool(cfg.get("batchnorm", True))
    c_in, spatial = channels_and_spatial(meta.input_shape)
    dims = len(spatial)
    size = min(spatial)
    layers: list[nn.Module] = [Reshape(c_in, *spatial)]
    widths = [k, 2 * k, 4 * k, 8 * k]
    for i, c in enumerate(widths):
        # bias=True as in the paper's code (it is what the reference parameter counts include).
        layers += [conv(dims)(c_in, c, 3, padding=1, bias=True), norm(dims, c, bn), nn.ReLU()]
        if i < 3 and size >= 2:
            layers.append(maxpool(dims)(2))
            size //= 2
        c_in = c
    layers += [global_max(dims), nn.Flatten(), nn.Linear(8 * k, int(meta.num_outputs))]
    return nn.Sequential(*layers)

"""Conv layers then hidden fully connected layers: the classifier I-defender models (Zheng & Hong, 2018)."""

from __future__ import annotations

import torch.nn as nn

from dlx.errors import DlxError
from dlx.models.layers import Reshape, channels_and_spatial, conv, dropout_p, maxpool, norm, positive_int
from dlx.models.registry import register_model


def _hidden(cfg) -> list[int]:
    h = cfg.get("hidden", [128, 64])
    h = [h] if isinstance(h, int) else list(h or [])
    if not h or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in h):
        raise DlxError(f"model.hidden for 'cnnfc' must be a non-empty list of positive integers, got {h!r}")
    return h


@register_model("cnnfc", stackable=True)
def build_cnnfc(cfg, meta) -> nn.Module:
    """2 x [conv3x3 -> BN? -> ReLU -> MaxPool(2)] with [k, 2k] channels, flatten, then
    len(hidden) x [Linear -> ReLU -> Dropout?] and Linear(classes).

    The hidden fully connected outputs are what I-defender models; a MaxPool is skipped once the
    spatial size is below 4 so 8x8 digits keep a 2x2 map and 1-D inputs work the same way.
    """
    k = positive_int(cfg, "width", 32, "cnnfc")
    bn = bool(cfg.get("batchnorm", False))
    p = dropout_p(cfg, "cnnfc")
    c_in, spatial = channels_and_spatial(meta.input_shape)
    dims, sizes = len(spatial), list(spatial)
    layers: list[nn.Module] = [Reshape(c_in, *spatial)]
    for c in (k, 2 * k):
        layers += [conv(dims)(c_in, c, 3, padding=1), norm(dims, c, bn), nn.ReLU()]
        if min(sizes) >= 4:
            layers.append(maxpool(dims)(2))
            sizes = [s // 2 for s in sizes]
        c_in = c
    layers.append(nn.Flatten())
    fan_in = c_in
    for s in sizes:
        fan_in *= s
    for width in _hidden(cfg):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        if p > 0:
            layers.append(nn.Dropout(p))
        fan_in = width
    layers.append(nn.Linear(fan_in, int(meta.num_outputs)))
    return nn.Sequential(*layers)

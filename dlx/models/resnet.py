"""Pre-activation ResNet18 of width k (He et al., 2016), as used in Deep Double Descent."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlx.models.layers import Reshape, channels_and_spatial, conv, global_avg, norm, positive_int
from dlx.models.registry import register_model


class PreActBlock(nn.Module):
    """out = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut, shortcut a 1x1 conv when the shape changes."""

    def __init__(self, dims: int, c_in: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        Conv = conv(dims)
        self.bn1 = norm(dims, c_in, bn)
        self.conv1 = Conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm(dims, c_out, bn)
        self.conv2 = Conv(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = Conv(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        # The projection shortcut sees the pre-activated input, as in the reference PreActResNet code.
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + short


@register_model("resnet18k", stackable=True)
def build_resnet18k(cfg, meta) -> nn.Module:
    """Stem conv3x3 (no BN), 4 stages x 2 PreAct blocks with [k,2k,4k,8k] channels and strides [1,2,2,2],
    global average pool, Linear(8k -> classes).

    Like the common PreActResNet18 (11,171,146 params at k=64 on CIFAR-10) there is no final BN+ReLU
    before pooling. batchnorm=false swaps every BN for Identity; convs stay bias-free so only the
    BN parameters disappear. 1-D inputs use Conv1d; a stride-2 stage becomes stride 1 once the spatial
    size is 1, so tiny inputs (8x8 -> 8,4,2,1) never collapse.
    """
    k = positive_int(cfg, "width", 64, "resnet18k")
    bn = bool(cfg.get("batchnorm", True))
    c_in, spatial = channels_and_spatial(meta.input_shape)
    dims = len(spatial)
    size = min(spatial)
    layers: list[nn.Module] = [Reshape(c_in, *spatial), conv(dims)(c_in, k, 3, padding=1, bias=False)]
    c = k
    for width, stride in zip([k, 2 * k, 4 * k, 8 * k], [1, 2, 2, 2], strict=True):
        if stride == 2 and size < 2:
            stride = 1
        size = (size - 1) // stride + 1  # conv3x3, padding 1
        for s in (stride, 1):
            layers.append(PreActBlock(dims, c, width, s, bn))
            c = width
    layers += [global_avg(dims), nn.Flatten(), nn.Linear(8 * k, int(meta.num_outputs))]
    return nn.Sequential(*layers)

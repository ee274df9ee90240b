"""CIFAR-style ResNet of depth 6n+2 (He et al., 2016, section 4.2): the ResNet-20/32/56/110 family."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlx.errors import DlxError
from dlx.models.layers import Reshape, channels_and_spatial, conv, global_avg, norm, positive_int
from dlx.models.registry import register_model

INITS = ("he", "he_scaled")


class BasicBlock(nn.Module):
    """Post-activation block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    The shortcut is parameter-free (He et al.'s option A): identity, or a stride-2 subsample zero-padded
    to the new width, so no extra conv/BN differs between the BN and no-BN networks."""

    def __init__(self, dims: int, c_in: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        Conv = conv(dims)
        self.conv1 = Conv(c_in, c_out, 3, stride=stride, padding=1, bias=not bn)
        self.bn1 = norm(dims, c_out, bn)
        self.conv2 = Conv(c_out, c_out, 3, stride=1, padding=1, bias=not bn)
        self.bn2 = norm(dims, c_out, bn)
        self.stride, self.pad = stride, c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[(slice(None), slice(None), *[slice(None, None, self.stride)] * (x.dim() - 2))]
        if self.pad:
            x = F.pad(x, [0, 0] * (x.dim() - 2) + [0, self.pad])
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def init_weights(model: nn.Module, how: str, blocks: int, gen: torch.Generator) -> None:
    """He-normal (fan_in, ReLU gain) convs with zero biases, torch's default Linear; BN gamma=1, beta=0.

    Every draw comes from `gen` in module order, and BN layers and conv biases draw nothing, so with or
    without BN the two networks start from identical conv and Linear weights. 'he_scaled' also divides
    each block's second conv by sqrt(blocks) (Fixup/SkipInit-style): without BN, plain He init roughly
    doubles the activation variance in every block (2^(3n) over the net); with BN it changes nothing,
    since BN right after that conv removes its scale."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):  # torch's default Linear init, drawn from gen
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(m.in_features)
            nn.init.uniform_(m.bias, -bound, bound, generator=gen)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if how == "he_scaled":
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, BasicBlock):
                    m.conv2.weight.mul_(1.0 / math.sqrt(blocks))


@register_model("resnet", stackable=True)
def build_resnet(cfg, meta) -> nn.Module:
    """Stem conv3x3 -> BN -> ReLU, 3 stages of n blocks with [w, 2w, 4w] channels and strides [1,2,2],
    global average pool, Linear(4w -> classes); depth = 6n + 2 (20, 32, 44, 56, 110, ...).

    width=16 is He et al.'s CIFAR network (ResNet-110: 1.73M params on CIFAR-10). batchnorm=false puts
    Identity where each BN was and gives the convs a bias. A stride-2 stage becomes stride 1 once the
    spatial size is 1, so 8x8 inputs (8, 4, 2) and 1-D sequences work too.
    """
    depth = positive_int(cfg, "depth", 20, "resnet", minimum=8)
    if (depth - 2) % 6:
        raise DlxError(f"model.depth for 'resnet' must be 6n+2 (e.g. 20, 32, 56, 110), got {depth}")
    w = positive_int(cfg, "width", 16, "resnet")
    bn = bool(cfg.get("batchnorm", True))
    how = str(cfg.get("init", "he"))
    if how not in INITS:
        raise DlxError(f"unknown model.init '{how}' (choose from: {', '.join(INITS)})")
    # one draw from the global RNG seeds the init; construction's own (discarded) draws are fenced off,
    # so the global RNG advances the same with or without BN
    gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
    with torch.random.fork_rng(devices=[]):
        model = _build(cfg, meta, depth, w, bn)
    init_weights(model, how, 3 * ((depth - 2) // 6), gen)
    return model


def _build(cfg, meta, depth: int, w: int, bn: bool) -> nn.Sequential:
    n = (depth - 2) // 6
    c_in, spatial = channels_and_spatial(meta.input_shape)
    dims = len(spatial)
    size = min(spatial)
    layers: list[nn.Module] = [Reshape(c_in, *spatial), conv(dims)(c_in, w, 3, padding=1, bias=not bn),
                               norm(dims, w, bn), nn.ReLU()]
    c = w
    for width, stride in zip([w, 2 * w, 4 * w], [1, 2, 2], strict=True):
        if stride == 2 and size < 2:
            stride = 1
        size = (size - 1) // stride + 1
        for i in range(n):
            layers.append(BasicBlock(dims, c, width, stride if i == 0 else 1, bn))
            c = width
    layers += [global_avg(dims), nn.Flatten(), nn.Linear(4 * w, int(meta.num_outputs))]
    return nn.Sequential(*layers)

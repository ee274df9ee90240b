"""Small pre-norm Transformer encoder classifier on patches (a tiny ViT; 1-D patches for sequences)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlx.models.layers import channels_and_spatial, conv, dropout_p, positive_int
from dlx.models.registry import register_model


def pick_heads(width: int, heads: int) -> int:
    """Largest divisor of width that is <= heads, so any width is valid for nn.MultiheadAttention."""
    return max(h for h in range(1, max(1, min(heads, width)) + 1) if width % h == 0)


class PatchTransformer(nn.Module):
    def __init__(self, input_shape, num_classes: int, width: int, depth: int, heads: int, patch: int,
                 dropout: float):
        super().__init__()
        self.c_in, self.spatial = channels_and_spatial(input_shape)
        self.patch = patch
        dims = len(self.spatial)
        # Pad each spatial axis up to a multiple of the patch so no pixel is dropped.
        self.padded = tuple(math.ceil(s / patch) * patch for s in self.spatial)
        n_patches = math.prod(p // patch for p in self.padded)
        self.embed = conv(dims)(self.c_in, width, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, n_patches + 1, width) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model=width, nhead=heads, dim_feedforward=4 * width,
                                           dropout=dropout, batch_first=True, norm_first=True)
        # enable_nested_tensor only matters for padding masks (none here) and warns with norm_first.
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.c_in, *self.spatial)
        pads: list[int] = []
        # F.pad lists the last axis first.
        for s, p in zip(reversed(self.spatial), reversed(self.padded), strict=True):
            pads += [0, p - s]
        if any(pads):
            x = F.pad(x, pads)
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # (B, patches, width)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tokens))[:, 0])


@register_model("transformer")
def build_transformer(cfg, meta) -> nn.Module:
    """Patch embedding (conv with stride=patch), CLS token, learned positions, depth pre-norm encoder
    layers (FFN 4*width), final LayerNorm, Linear on CLS. Heads = largest divisor of width <= heads."""
    width = positive_int(cfg, "width", 64, "transformer")
    depth = positive_int(cfg, "depth", 2, "transformer")
    heads = pick_heads(width, positive_int(cfg, "heads", 4, "transformer"))
    patch = positive_int(cfg, "patch", 4, "transformer")
    return PatchTransformer(meta.input_shape, int(meta.num_outputs), width, depth, heads, patch,
                            dropout_p(cfg, "transformer"))

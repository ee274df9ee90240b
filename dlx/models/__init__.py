"""Model registry: ``build_model(cfg, meta)`` turns the ``model`` config group into an ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from dlx.errors import DlxError

Builder = Callable[..., nn.Module]
MODELS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(cfg, meta) -> nn.Module`` under ``name``."""

    def deco(fn: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model '{name}' registered twice")
        MODELS[name] = fn
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(MODELS)


def build_model(cfg, meta) -> nn.Module:
    """Build the model named ``cfg.name`` for ``meta.input_shape`` and ``meta.num_classes``."""
    name = cfg.get("name")
    if name not in MODELS:
        raise DlxError(f"unknown model '{name}' (choose one of: {', '.join(list_models())})")
    if not meta.num_classes or meta.num_classes < 1:
        raise DlxError(f"model '{name}' needs classes, but data '{meta.name}' has no num_classes")
    shape = tuple(meta.input_shape)
    if not 1 <= len(shape) <= 3 or any(int(s) < 1 for s in shape):
        raise DlxError(f"model '{name}' cannot take input shape {shape} (expected (C,H,W), (C,L) or (L,))")
    return MODELS[name](cfg, meta)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# Explicit imports (no discovery) so the registry is always complete and import errors are loud.
from dlx.models import (  # noqa: E402,F401
    cnn1d,
    cnn5,
    cnnfc,
    mlp,
    resnet,
    resnet_cifar,
    transformer,
)

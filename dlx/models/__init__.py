"""Model registry: ``build_model(cfg, meta)`` turns the ``model`` config group into an ``nn.Module`` whose
output has ``meta.num_outputs`` units (classes, one logit, regression targets). A model whose structure
comes from the data registers with ``needs_train=True`` and is given the training split too."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from dlx.errors import DlxError

Builder = Callable[..., nn.Module]
MODELS: dict[str, Builder] = {}
NEEDS_TRAIN: set[str] = set()


def register_model(name: str, needs_train: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(cfg, meta) -> nn.Module`` (``fn(cfg, meta, train)`` with ``needs_train``)."""

    def deco(fn: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model '{name}' registered twice")
        MODELS[name] = fn
        if needs_train:
            NEEDS_TRAIN.add(name)
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(MODELS)


def build_model(cfg, meta, train=None) -> nn.Module:
    """Build the model named ``cfg.name`` for ``meta.input_shape`` and ``meta.num_outputs`` outputs."""
    name = cfg.get("name")
    if name not in MODELS:
        raise DlxError(f"unknown model '{name}' (choose one of: {', '.join(list_models())})")
    if not meta.num_outputs or meta.num_outputs < 1:
        raise DlxError(f"model '{name}' needs an output size, but data '{meta.name}' gives none")
    shape = tuple(meta.input_shape)
    if not 1 <= len(shape) <= 3 or any(int(s) < 1 for s in shape):
        raise DlxError(f"model '{name}' cannot take input shape {shape} (expected (C,H,W), (C,L) or (L,))")
    if name in NEEDS_TRAIN:
        return MODELS[name](cfg, meta, train)
    return MODELS[name](cfg, meta)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# Explicit imports (no discovery) so the registry is always complete and import errors are loud.
from dlx.models import (  # noqa: E402,F401
    cnn1d,
    cnn5,
    cnnfc,
    forecasters,
    hyper,
    matching,
    mlp,
    resnet,
    resnet_cifar,
    symnet,
    transformer,
)

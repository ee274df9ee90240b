"""Models: ``build_model(cfg, meta)`` turns the ``model`` config group into an ``nn.Module`` whose output
has ``meta.num_outputs`` units (classes, one logit, regression targets). A model whose structure comes from
the data registers with ``needs_train=True`` and is given the training split too. The registry is
dlx/models/registry.py; importing this package registers every built-in model."""

from __future__ import annotations

# Explicit imports (no discovery): each module registers its models on import, so the registry is complete
# and an import error is loud.
from dlx.models import (  # noqa: F401
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
from dlx.models.registry import (
    ENTRY_POINTS,
    MODELS,
    NEEDS_TRAIN,
    STACKABLE,
    build_factory,
    build_model,
    count_params,
    list_models,
    needs_train,
    register_model,
    stackable,
)

__all__ = ["ENTRY_POINTS", "MODELS", "NEEDS_TRAIN", "STACKABLE", "build_factory", "build_model",
           "count_params", "list_models", "needs_train", "register_model", "stackable"]

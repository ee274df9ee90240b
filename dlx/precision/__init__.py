"""Precision policies: one object decides how the forward runs, how the loss is backpropagated and
how the optimizer steps. Registry keyed by the precision group's `name`."""

from __future__ import annotations

from collections.abc import Callable

from dlx.errors import DlxError
from dlx.precision.base import Autocast, Fp16, Precision

PRECISIONS: dict[str, Callable] = {
    "fp32": lambda cfg, device: Precision(device),
    "bf16": lambda cfg, device: Autocast(device, "bfloat16"),
    "fp16": lambda cfg, device: Fp16(device),
}


def build_precision(cfg, device: str) -> Precision:
    name = cfg.get("name") if hasattr(cfg, "get") else str(cfg)
    if name not in PRECISIONS:
        raise DlxError(f"unknown precision '{name}' (choose from: {', '.join(sorted(PRECISIONS))})")
    return PRECISIONS[name](cfg, device)

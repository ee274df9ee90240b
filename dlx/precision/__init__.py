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


def _fp8(cfg, device: str) -> Precision:
    from dlx.precision.fp8 import build_fp8  # torch-heavy emulation, imported only when asked for

    return build_fp8(cfg, device)


for _name in ("fp8_naive", "fp8_wang", "fp8_wang_nochunk", "fp8_wang_nearest", "fp8_hybrid", "fp8_native"):
    PRECISIONS[_name] = _fp8


def build_precision(cfg, device: str) -> Precision:
    name = cfg.get("name") if hasattr(cfg, "get") else str(cfg)
    if name not in PRECISIONS:
        raise DlxError(f"unknown precision '{name}' (choose from: {', '.join(sorted(PRECISIONS))})")
    return PRECISIONS[name](cfg, device)

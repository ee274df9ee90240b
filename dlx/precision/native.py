"""fp8_native: real FP8 GEMMs through torch._scaled_mm (E4M3 forward, E5M2 output gradients, per-tensor
scales, fp32 master weights). Needs a CUDA GPU with FP8 tensor cores (compute capability >= 8.9);
anywhere else it is a DlxError naming the reason. Linear layers only; convolutions stay fp32.
Not exercised by the CPU test-suite (no such hardware here)."""

from __future__ import annotations

import torch
import torch.nn as nn

from dlx.errors import DlxError
from dlx.precision.base import Precision


def check_native(device: str) -> None:
    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise DlxError(f"precision fp8_native needs a CUDA GPU with FP8 tensor cores (torch._scaled_mm); "
                       f"device is '{device}' - use precision=fp8_hybrid for the emulated equivalent")
    cap = torch.cuda.get_device_capability(torch.device(device))
    if cap < (8, 9) or not hasattr(torch, "_scaled_mm"):
        raise DlxError(f"precision fp8_native needs compute capability >= 8.9 (Ada/Hopper) and "
                       f"torch._scaled_mm; this GPU is {cap[0]}.{cap[1]} - use precision=fp8_hybrid")


def _to_fp8(x: torch.Tensor, dtype):
    amax = x.detach().abs().amax().float().clamp_min(1e-12)
    scale = torch.finfo(dtype).max / amax  # x * scale fills the format's range
    return (x.float() * scale).clamp(-torch.finfo(dtype).max, torch.finfo(dtype).max).to(dtype), \
        scale.reciprocal()


def _mm(a, b, a_dtype, b_dtype):
    """a [N, K] @ b [K, M] in FP8 with fp32 output; _scaled_mm wants b column-major."""
    aq, sa = _to_fp8(a, a_dtype)
    bq, sb = _to_fp8(b.t().contiguous(), b_dtype)
    return torch._scaled_mm(aq, bq.t(), scale_a=sa, scale_b=sb, out_dtype=torch.float32)


class _NativeGemm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return _mm(x, w.t(), torch.float8_e4m3fn, torch.float8_e4m3fn)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        gx = _mm(gy, w, torch.float8_e5m2, torch.float8_e4m3fn)
        gw = _mm(gy.t(), x, torch.float8_e5m2, torch.float8_e4m3fn)
        return gx, gw


class NativeLinear(nn.Linear):
    def forward(self, x):
        shape = x.shape
        k, m = shape[-1], self.weight.shape[0]
        if k % 16 or m % 16:  # _scaled_mm's shape rule; such layers stay fp32
            return super().forward(x)
        y = _NativeGemm.apply(x.reshape(-1, k), self.weight).reshape(*shape[:-1], m)
        return y if self.bias is None else y + self.bias


class NativeFp8(Precision):
    name = "fp8_native"

    def __init__(self, device: str):
        super().__init__(device)
        self.note = "torch._scaled_mm E4M3 forward / E5M2 backward for Linear layers (dims % 16 == 0)"

    def prepare(self, model):
        for mod in model.modules():
            if type(mod) is nn.Linear:
                mod.__class__ = NativeLinear
        return model


def build_native(cfg, device: str) -> Precision:
    check_native(device)
    return NativeFp8(device)

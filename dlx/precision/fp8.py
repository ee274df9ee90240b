"""Emulated 8-bit floating-point training: GEMM/conv layers whose inputs are rounded to FP8 forward and
backward, with products accumulated in fp32 or in a small format (chunked), plus the weight update.

`prepare(model)` swaps the class of every nn.Linear / nn.Conv1d / nn.Conv2d for an emulating subclass
(parameters and state_dict keys are untouched, so checkpoints stay interchangeable). Each emulated layer
runs one autograd Function whose three GEMMs (forward, input gradient, weight gradient) quantize their
inputs and accumulate as the policy says. Convolutions are lowered to GEMMs with im2col (F.unfold); the
input gradient is the convolution of the zero-dilated output gradient with the flipped kernel, so its
reduction (Cout x kh x kw) goes through the emulated accumulator too. Biases, batch norm and the loss
stay fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlx.errors import DlxError
from dlx.precision.base import Precision
from dlx.precision.chunked import chunked_matmul
from dlx.precision.formats import FP16_169, Format, quantize


@dataclass
class Gemm:
    """How one layer's GEMMs run. fmt None = leave the tensor fp32; acc None = fp32 accumulation."""

    fwd: Format | None  # weights and activations
    bwd: Format | None  # errors (output gradients)
    acc: Format | None = None
    chunk: int | None = 64
    exact: bool = False  # exact chunked path (slow) instead of the fast path
    grad_fmt: Format | None = None  # weight gradients rounded to this after the GEMM (fp8_naive)
    scaled: bool = False  # per-tensor scaling: map each tensor's amax near the format's max

    def cast(self, x: torch.Tensor, fmt: Format | None) -> torch.Tensor:
        if fmt is None:
            return x
        if not self.scaled:
            return quantize(x, fmt)
        amax = x.detach().abs().amax().float()
        if not torch.isfinite(amax) or amax == 0:
            return quantize(x, fmt)
        # a power-of-two scale keeps the scaling itself exact
        s = torch.exp2(torch.floor(torch.log2(fmt.max / amax)))
        return quantize(x * s, fmt) / s

    def mm(self, a: torch.Tensor, b: torch.Tensor, products_exact: bool) -> torch.Tensor:
        if self.acc is None:
            return a @ b
        return chunked_matmul(a, b, self.acc, self.chunk, exact=self.exact, products_exact=products_exact)

    def exact_products(self, fa: Format | None, fb: Format | None) -> bool:
        """Products of two FP8 values (<= 4+4 significant bits, exponents within range) are exact in
        1-6-9, so the accumulator need not round them."""
        small = all(f is not None and f.man_bits <= 3 and f.exp_bits <= 5 for f in (fa, fb))
        return small and self.acc is not None and self.acc.man_bits >= 7 and self.acc.exp_bits >= 6


class _EmuGemm(torch.autograd.Function):
    """y = x @ w.T with emulated rounding of all three GEMMs (x [N, K], w [M, K])."""

    @staticmethod
    def forward(ctx, x, w, g: Gemm):
        xq, wq = g.cast(x, g.fwd), g.cast(w, g.fwd)
        ctx.save_for_backward(xq, wq)
        ctx.g = g
        return g.mm(xq, wq.t(), g.exact_products(g.fwd, g.fwd))

    @staticmethod
    def backward(ctx, gy):
        xq, wq = ctx.saved_tensors
        g = ctx.g
        gq = g.cast(gy, g.bwd)
        ex = g.exact_products(g.bwd, g.fwd)
        gx = g.mm(gq, wq, ex) if ctx.needs_input_grad[0] else None
        gw = g.mm(gq.t(), xq, ex)
        if g.grad_fmt is not None:
            gw = g.cast(gw, g.grad_fmt)
        return gx, gw, None


def emu_linear(x, weight, bias, g: Gemm):
    shape = x.shape
    y = _EmuGemm.apply(x.reshape(-1, shape[-1]), weight, g)
    y = y.reshape(*shape[:-1], weight.shape[0])
    return y if bias is None else y + bias


class _EmuConv(torch.autograd.Function):
    """2-D convolution (groups=1) as im2col GEMMs with emulated rounding."""

    @staticmethod
    def forward(ctx, x, w, g: Gemm, stride, padding, dilation):
        xq, wq = g.cast(x, g.fwd), g.cast(w, g.fwd)
        ctx.save_for_backward(xq, wq)
        ctx.g, ctx.conf = g, (stride, padding, dilation)
        return _conv_gemm(xq, wq, g, stride, padding, dilation, g.exact_products(g.fwd, g.fwd))

    @staticmethod
    def backward(ctx, gy):
        xq, wq = ctx.saved_tensors
        g, (stride, padding, dilation) = ctx.g, ctx.conf
        gq = g.cast(gy, g.bwd)
        ex = g.exact_products(g.bwd, g.fwd)
        gx = _conv_input_grad(gq, wq, xq.shape, g, stride, padding, dilation, ex) \
            if ctx.needs_input_grad[0] else None
        b, cin = xq.shape[:2]
        cout, _, kh, kw = wq.shape
        cols = F.unfold(xq, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # [B, K, L]
        a = cols.transpose(1, 2).reshape(-1, cols.shape[1])  # [B*L, K]
        gmat = gq.reshape(b, cout, -1).transpose(1, 2).reshape(-1, cout)  # [B*L, Cout]
        gw = g.mm(gmat.t().contiguous(), a, ex).reshape(wq.shape)
        if g.grad_fmt is not None:
            gw = g.cast(gw, g.grad_fmt)
        return gx, gw, None, None, None, None


def _conv_gemm(x, w, g: Gemm, stride, padding, dilation, products_exact):
    b, _, h, wd = x.shape
    cout, _, kh, kw = w.shape
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # [B, K, L]
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    a = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    y = g.mm(a, w.reshape(cout, -1).t(), products_exact)  # [B*L, Cout]
    return y.reshape(b, ho * wo, cout).transpose(1, 2).reshape(b, cout, ho, wo)


def _conv_input_grad(gy, w, x_shape, g: Gemm, stride, padding, dilation, products_exact):
    """dL/dx = conv(zero-dilated gy, flipped and transposed w), stride 1, cropped to x's size."""
    b, cout, ho, wo = gy.shape
    h, wd = x_shape[2:]
    kh, kw = w.shape[2:]
    if stride != (1, 1):
        d = gy.new_zeros(b, cout, (ho - 1) * stride[0] + 1, (wo - 1) * stride[1] + 1)
        d[:, :, :: stride[0], :: stride[1]] = gy
        gy = d
    eh, ew = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    top, left = eh - padding[0], ew - padding[1]
    bottom, right = h + eh - top - gy.shape[2], wd + ew - left - gy.shape[3]
    gy = F.pad(gy, (left, right, top, bottom))  # a negative pad crops
    wt = w.flip(2, 3).transpose(0, 1).contiguous()  # [Cin, Cout, kh, kw]
    return _conv_gemm(gy, wt, g, (1, 1), (0, 0), dilation, products_exact)


class EmuLinear(nn.Linear):
    def forward(self, x):
        return emu_linear(x, self.weight, self.bias, self.gemm)


class EmuConv2d(nn.Conv2d):
    def forward(self, x):
        y = _EmuConv.apply(x, self.weight, self.gemm, self.stride, self.padding, self.dilation)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class EmuConv1d(nn.Conv1d):
    def forward(self, x):
        y = _EmuConv.apply(x.unsqueeze(2), self.weight.unsqueeze(2), self.gemm, (1, *self.stride),
                           (0, *self.padding), (1, *self.dilation)).squeeze(2)
        return y if self.bias is None else y + self.bias.view(1, -1, 1)


_SWAP = {nn.Linear: EmuLinear, nn.Conv2d: EmuConv2d, nn.Conv1d: EmuConv1d}


def gemm_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) in _SWAP or type(m) in _SWAP.values()]


def emulate(model: nn.Module, inner: Gemm, ends: Gemm | None = None) -> nn.Module:
    """Swap every Linear/Conv (groups=1, zeros padding) for its emulating subclass, in place; the first
    and last GEMM layers get `ends` when given (the paper keeps them in higher precision)."""
    layers = gemm_layers(model)
    for i, mod in enumerate(layers):
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)) and (mod.groups != 1 or mod.padding_mode != "zeros"):
            raise DlxError(f"fp8 emulation supports convolutions with groups=1 and zero padding, got {mod}")
        if isinstance(getattr(mod, "padding", None), str):
            raise DlxError(f"fp8 emulation needs numeric conv padding, got padding='{mod.padding}'")
        mod.__class__ = _SWAP.get(type(mod), type(mod))
        mod.gemm = ends if ends is not None and i in (0, len(layers) - 1) else inner
    return model


class Fp8Precision(Precision):
    """Emulated FP8 GEMMs plus an optional fixed loss scale and a rounded (nearest / stochastic) update.

    Update (`update_fmt`): optimizer.step() runs in fp32 on weights that already lie on the update
    format's grid, then every parameter is rounded to that format - so the stored weight is the
    rounded AXPY result w - lr*u, as in the paper's FP16 update. Rounding is stochastic or nearest.
    Floating-point optimizer state (momentum) is rounded to the same format to nearest.
    """

    def __init__(self, device: str, name: str, inner: Gemm, ends: Gemm | None = None,
                 loss_scale: float = 1.0, update_fmt: Format | None = None,
                 update_rounding: str = "stochastic", seed: int = 0, note: str = ""):
        super().__init__(device)
        self.name, self.inner, self.ends, self.note = name, inner, ends, note
        self.loss_scale = float(loss_scale)
        self.update_fmt, self.update_rounding = update_fmt, update_rounding
        self.generator = torch.Generator().manual_seed(int(seed))
        self._unscaled = False

    def prepare(self, model):
        model = emulate(model, self.inner, self.ends)
        if self.update_fmt is not None:
            with torch.no_grad():  # start on the update format's grid
                for p in model.parameters():
                    p.copy_(quantize(p, self.update_fmt))
        return model

    def backward(self, loss):
        (loss * self.loss_scale if self.loss_scale != 1.0 else loss).backward()
        self._unscaled = False

    def unscale(self, optimizer):
        if self._unscaled or self.loss_scale == 1.0:
            return
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.div_(self.loss_scale)
        self._unscaled = True

    def step(self, optimizer):
        self.unscale(optimizer)
        optimizer.step()
        self._unscaled = False
        if self.update_fmt is None:
            return
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.copy_(quantize(p, self.update_fmt, rounding=self.update_rounding,
                                     generator=self.generator))
                    for v in optimizer.state.get(p, {}).values():
                        if torch.is_tensor(v) and v.is_floating_point() and v.shape == p.shape:
                            v.copy_(quantize(v, self.update_fmt))

    def state_dict(self):
        return {"generator": self.generator.get_state(), "loss_scale": self.loss_scale}

    def load_state_dict(self, state):
        if "generator" in state:
            self.generator.set_state(state["generator"])


def _fmt(cfg, exp_key: str, man_key: str, finite_key: str | None = None) -> Format:
    from dlx.precision.formats import make_format

    finite = bool(cfg.get(finite_key, False)) if finite_key else False
    return make_format(cfg.get(exp_key), cfg.get(man_key), finite, what=f"precision.{exp_key}/{man_key}")


def build_fp8(cfg, device: str) -> Precision:
    """A precision policy from a conf/precision/fp8_*.yaml group."""
    from dlx.precision.chunked import check_chunk

    name = str(cfg.get("name"))
    mode = str(cfg.get("mode", "wang"))
    if mode == "native":
        from dlx.precision.native import build_native

        return build_native(cfg, device)
    fp8 = _fmt(cfg, "exp_bits", "man_bits", "finite")
    seed = int(cfg.get("seed", 0) or 0)
    if mode == "naive":
        g = Gemm(fp8, fp8, None, grad_fmt=fp8)
        return Fp8Precision(device, name, g, note=f"{fp8.label} casts of weights, activations, errors and "
                            "weight gradients; fp32 accumulation and update; no loss scaling")
    if mode == "hybrid":
        bwd = _fmt(cfg, "bwd_exp_bits", "bwd_man_bits")
        g = Gemm(fp8, bwd, None, scaled=True)
        return Fp8Precision(device, name, g, note=f"{fp8.label} forward / {bwd.label} backward with "
                            "per-tensor power-of-two scaling; fp32 accumulation and update")
    if mode != "wang":
        raise DlxError(f"unknown fp8 precision mode '{mode}' (choose from: naive, wang, hybrid, native)")
    acc = _fmt(cfg, "acc_exp_bits", "acc_man_bits")
    chunk = check_chunk(cfg.get("chunk", 64))
    exact = bool(cfg.get("exact", False))
    rounding = str(cfg.get("update_rounding", "stochastic"))
    if rounding not in ("nearest", "stochastic"):
        raise DlxError(f"precision.update_rounding must be nearest or stochastic, got '{rounding}'")
    inner = Gemm(fp8, fp8, acc, chunk, exact)
    ends = Gemm(acc, acc, acc, chunk, exact) if cfg.get("ends_high", True) else None
    path = "sequential" if chunk is None else f"chunk {chunk} ({'exact' if exact else 'fast'} path)"
    return Fp8Precision(device, name, inner, ends, float(cfg.get("loss_scale", 1.0)), acc, rounding, seed,
                        note=f"{fp8.label} GEMM inputs, {acc.label} accumulation ({path}), {acc.label} "
                        f"update rounded {rounding}, loss scale {cfg.get('loss_scale', 1.0)}, "
                        f"first/last layer {'in ' + acc.label if ends else 'fp8'}")


__all__ = ["FP16_169", "Fp8Precision", "Gemm", "build_fp8", "emulate"]

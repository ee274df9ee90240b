"""Small floating-point formats and `quantize`: round fp32 values onto a 1-e-m grid.

A format 1-e-m has one sign bit, e exponent bits (bias 2^(e-1)-1) and m stored mantissa bits.
Two families of special values:

- IEEE-like (``finite=False``; FP8 E5M2 1-5-2, the paper's FP16 1-6-9, IEEE half 1-5-10, bf16 1-8-7):
  the top exponent code is inf/NaN, so max = (2 - 2^-m) * 2^(2^e - 2 - bias).
- finite-only "fn" (``finite=True``; FP8 E4M3 as in torch.float8_e4m3fn / OCP): no infinities; only the
  all-ones code is NaN, so the top exponent holds normal values and max = (2 - 2^(1-m)) * 2^(2^e - 1 - bias)
  = 448 for 1-4-3.

Overflow (a value whose rounded magnitude exceeds max, judged after rounding with an unbounded exponent,
as IEEE 754 does):
- ``saturate=True``: becomes +-max. An infinite *input* stays +-inf in IEEE-like formats (inf is exact
  there) and becomes +-max in fn formats (nothing else is representable) - the same as torch's CPU cast
  to float8_e4m3fn, which saturates.
- ``saturate=False``: becomes +-inf in IEEE-like formats (torch's float16/bfloat16/float8_e5m2 casts)
  and NaN in fn formats (the OCP non-saturating mode). NaN always stays NaN.

``subnormals=False`` flushes results below the smallest normal to (signed) zero.
Values are computed in float32 or float64, whichever keeps every step exact, and returned in the
input's float dtype; every format here is exactly representable in float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dlx.errors import DlxError

ROUNDINGS = ("nearest", "stochastic")


@dataclass(frozen=True)
class Format:
    exp_bits: int
    man_bits: int
    finite: bool = False  # fn-style: no infinities, max uses the top exponent code
    name: str = field(default="", compare=False)  # a label; equality is by the bits

    @property
    def bias(self) -> int:
        return 2 ** (self.exp_bits - 1) - 1

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def emax(self) -> int:
        return 2**self.exp_bits - (1 if self.finite else 2) - self.bias

    @property
    def max(self) -> float:
        top = 2.0 - 2.0 ** (1 - self.man_bits) if self.finite else 2.0 - 2.0**-self.man_bits
        return top * 2.0**self.emax

    @property
    def min_normal(self) -> float:
        return 2.0**self.emin

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (self.emin - self.man_bits)

    @property
    def label(self) -> str:
        return self.name or f"1-{self.exp_bits}-{self.man_bits}{'fn' if self.finite else ''}"


FORMATS: dict[str, Format] = {
    "e5m2": Format(5, 2, name="fp8 1-5-2 (E5M2)"),
    "e4m3": Format(4, 3, finite=True, name="fp8 1-4-3 (E4M3fn, max 448)"),
    "fp16_169": Format(6, 9, name="fp16 1-6-9 (Wang et al.)"),
    "half": Format(5, 10, name="IEEE half 1-5-10"),
    "bf16": Format(8, 7, name="bfloat16 1-8-7"),
}
E5M2, E4M3, FP16_169 = FORMATS["e5m2"], FORMATS["e4m3"], FORMATS["fp16_169"]


def make_format(exp_bits, man_bits, finite: bool = False, what: str = "format") -> Format:
    """Validated Format; bad bit counts are one-line DlxErrors naming the valid ranges."""
    e, m = exp_bits, man_bits
    if isinstance(e, bool) or not isinstance(e, int) or not 2 <= e <= 8:
        raise DlxError(f"{what}: exp_bits must be an integer in 2..8 (fp32 range), got {e!r}")
    low = 1 if finite else 0
    if isinstance(m, bool) or not isinstance(m, int) or not low <= m <= 23:
        raise DlxError(f"{what}: man_bits must be an integer in {low}..23 (fp32 precision), got {m!r}")
    if finite and e < 2:
        raise DlxError(f"{what}: a finite-only (fn) format needs exp_bits >= 2, got {e}")
    return Format(e, m, finite)


def format_by_name(name: str) -> Format:
    if name not in FORMATS:
        raise DlxError(f"unknown number format '{name}' (choose from: {', '.join(FORMATS)})")
    return FORMATS[name]


def quantize(x: torch.Tensor, exp_bits: int | Format, man_bits: int | None = None,
             rounding: str = "nearest", subnormals: bool = True, saturate: bool = True,
             generator: torch.Generator | None = None, finite: bool = False) -> torch.Tensor:
    """Round every element of `x` to the nearest value of format 1-exp_bits-man_bits.

    rounding="nearest": round half to even. rounding="stochastic": round up with probability equal to
    the distance from the lower neighbour in units of the local spacing (unbiased: E[q(x)] = x below
    overflow), random numbers drawn from `generator`. `exp_bits` may also be a Format.
    """
    fmt = exp_bits if isinstance(exp_bits, Format) else make_format(exp_bits, man_bits, finite)
    if rounding not in ROUNDINGS:
        raise DlxError(f"unknown rounding '{rounding}' (choose from: {', '.join(ROUNDINGS)})")
    if not torch.is_floating_point(x):
        raise DlxError(f"quantize expects a floating-point tensor, got {x.dtype}")
    out_dtype = x.dtype
    # float32 arithmetic is exact here while every power-of-two scale fits float32's normal range
    # (all formats but bf16 and other 8-exponent-bit ones); the rest, and float64 inputs, use float64.
    f32 = out_dtype != torch.float64 and fmt.exp_bits <= 7 and fmt.man_bits - fmt.emin <= 126
    work, ibits, frac_bits, ebias = (torch.float32, torch.int32, 23, 127) if f32 else \
        (torch.float64, torch.int64, 52, 1023)
    xd = x.detach().to(work)
    a = xd.abs()
    # floor(log2 a) straight from the exponent field (cheaper than frexp); non-normal inputs of the
    # working type (zero, its subnormals) fall below the format's emin and are clamped to it.
    e = ((a.view(ibits) >> frac_bits) & (2 * ebias + 1)) - ebias
    e = torch.clamp(e, min=fmt.emin, max=ebias - 1 + fmt.man_bits)  # subnormals share emin's spacing
    shift = fmt.man_bits - e  # in [-(ebias-1), ebias-1]: both 2^shift and 2^-shift are normal

    def pow2(k):
        return ((k + ebias) << frac_bits).view(work)

    y = a * pow2(shift)  # exact: a power-of-two scaling into [0, 2^(m+1))
    if rounding == "nearest":
        r = torch.round(y)  # half to even
    else:
        lo = torch.floor(y)
        # u is a multiple of 2^-24 (float32) or 2^-53: P(u < frac) = frac exactly when frac is too.
        u = torch.rand(y.shape, generator=generator, dtype=work, device="cpu").to(y.device)
        r = lo + (u < (y - lo)).to(work)
    q = r * pow2(-shift)
    if not subnormals:
        q = torch.where(q < fmt.min_normal, torch.zeros_like(q), q)
    over = q > fmt.max
    if saturate:
        q = torch.where(over, torch.full_like(q, fmt.max), q)
        if not fmt.finite:
            q = torch.where(torch.isinf(a), a, q)
    else:
        q = torch.where(over, torch.full_like(q, float("nan") if fmt.finite else float("inf")), q)
    q = torch.copysign(q, xd)
    q = torch.where(torch.isnan(xd), xd, q)
    return q.to(out_dtype)


def representable(fmt: Format) -> list[float]:
    """Every finite non-negative value of `fmt`, by enumerating the bit patterns (slow, pure Python):
    the independent reference the tests check `quantize` against."""
    vals = []
    for ecode in range(2**fmt.exp_bits):
        for mcode in range(2**fmt.man_bits):
            if not fmt.finite and ecode == 2**fmt.exp_bits - 1:
                continue  # inf / NaN codes
            if fmt.finite and ecode == 2**fmt.exp_bits - 1 and mcode == 2**fmt.man_bits - 1:
                continue  # the single NaN code
            if ecode == 0:
                vals.append(mcode * 2.0 ** (fmt.emin - fmt.man_bits))
            else:
                vals.append((1 + mcode * 2.0**-fmt.man_bits) * 2.0 ** (ecode - fmt.bias))
    return sorted(set(vals))

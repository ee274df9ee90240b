"""quantize(): bit-exact against torch's own casts and a pure-Python enumeration of each format's values;
stochastic rounding unbiased; invalid formats are one-line errors."""

from __future__ import annotations

import bisect
import math

import pytest
import torch

from dlx.errors import DlxError
from dlx.precision.formats import FORMATS, Format, quantize, representable


def _edge_values(fmt: Format) -> torch.Tensor:
    """Every representable value, the midpoints between neighbours (ties), points just beside them,
    overflow thresholds, subnormal-range values and specials, with both signs."""
    v = torch.tensor(representable(fmt), dtype=torch.float64)
    mids = (v[1:] + v[:-1]) / 2
    vals = torch.cat([v, mids, mids * (1 + 2**-20), mids * (1 - 2**-20), v * 1.5,
                      torch.tensor([fmt.max * 1.01, fmt.max * 2, fmt.min_subnormal / 2, fmt.min_subnormal / 3,
                                    fmt.min_subnormal * 0.75, 1e30, math.inf, math.nan])])
    vals = vals.float()
    return torch.cat([vals, -vals])


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal (so -0 != +0) with NaN == NaN."""
    both_nan = a.isnan() & b.isnan()
    return bool(((a.view(torch.int32) == b.view(torch.int32)) | both_nan).all())


@pytest.mark.parametrize("name,dtype,saturate", [("e5m2", torch.float8_e5m2, False),
                                                 ("e4m3", torch.float8_e4m3fn, True),
                                                 ("half", torch.float16, False),
                                                 ("bf16", torch.bfloat16, False)])
def test_bit_exact_against_torch_casts(name, dtype, saturate):
    fmt = FORMATS[name]
    x = _edge_values(fmt)
    g = torch.Generator().manual_seed(0)
    x = torch.cat([x, torch.randn(20000, generator=g) * torch.exp(torch.randn(20000, generator=g) * 6)])
    assert _same(quantize(x, fmt, saturate=saturate), x.to(dtype).float())
    assert _same(quantize(x.double(), fmt, saturate=saturate).float(), x.to(dtype).float())


def _nearest_even_reference(x: float, vals: list[float], fmt: Format, saturate: bool) -> float:
    """Slow scalar reference: nearest representable value, ties to the even mantissa code (the even
    index in the sorted list of non-negative values, which starts at code 0)."""
    if math.isnan(x):
        return math.nan
    a = abs(x)
    over = fmt.max if saturate else (math.nan if fmt.finite else math.inf)
    if math.isinf(a):
        return math.copysign(a if not fmt.finite else over, x)
    grid = vals + [fmt.max + 2.0 ** (fmt.emax - fmt.man_bits)]  # the next value past max = overflow
    i = bisect.bisect_left(grid, a)
    if i >= len(grid):
        r = grid[-1]
    elif grid[i] == a or i == 0:
        r = grid[i]
    else:
        lo, hi = grid[i - 1], grid[i]
        d_lo, d_hi = a - lo, hi - a
        r = lo if d_lo < d_hi or (d_lo == d_hi and (i - 1) % 2 == 0) else hi
    if r > fmt.max:
        r = over
    return math.copysign(r, x)


@pytest.mark.parametrize("fmt", [FORMATS["fp16_169"], Format(4, 3), Format(3, 2, finite=True), Format(2, 1)])
@pytest.mark.parametrize("saturate", [True, False])
def test_matches_exhaustive_enumeration(fmt, saturate):
    vals = representable(fmt)
    x = _edge_values(fmt)
    if len(x) > 6000:  # 1-6-9: keep the exhaustive part around the extremes and every binade's ties
        x = torch.cat([x[:3000], x[len(x) // 2 : len(x) // 2 + 3000]])
    got = quantize(x, fmt, saturate=saturate)
    want = torch.tensor([_nearest_even_reference(float(v), vals, fmt, saturate) for v in x])
    assert _same(got, want)


def test_subnormals_flush_and_signed_zero():
    fmt = FORMATS["e5m2"]
    x = torch.tensor([fmt.min_subnormal * 3, -fmt.min_subnormal * 3, fmt.min_normal, -1e-30])
    q = quantize(x, fmt, subnormals=False)
    assert q[0] == 0 and q[1] == 0 and torch.signbit(q[1]) and q[2] == fmt.min_normal
    assert torch.signbit(quantize(torch.tensor([-1e-30]), fmt))


def test_formats_constants():
    assert FORMATS["e4m3"].max == 448 and FORMATS["e5m2"].max == 57344
    assert FORMATS["half"].max == 65504 and FORMATS["fp16_169"].min_subnormal == 2.0**-39


@pytest.mark.parametrize("fmt", [FORMATS["e5m2"], FORMATS["fp16_169"], FORMATS["bf16"]])
def test_stochastic_rounding_unbiased(fmt):
    g = torch.Generator().manual_seed(1)
    x = torch.tensor([1.1, -3.3, 0.01, 1e-6, 100.7], dtype=torch.float32)
    n = 40000
    reps = x.repeat(n, 1)
    q = quantize(reps, fmt, rounding="stochastic", generator=g).double()
    lo = quantize(x, fmt).double()
    # every draw is one of the two neighbours
    spacing = (q.max(0).values - q.min(0).values)
    assert bool((spacing >= 0).all())
    mean, sd = q.mean(0), q.std(0)
    z = (mean - x.double()) / (sd / math.sqrt(n)).clamp_min(1e-300)
    assert bool((z.abs() < 4.5).all()), z
    assert not torch.equal(lo, mean)  # nearest rounding is biased where SR is not


def test_stochastic_rounding_is_seeded():
    x = torch.rand(1000)
    a = quantize(x, FORMATS["e5m2"], rounding="stochastic", generator=torch.Generator().manual_seed(3))
    b = quantize(x, FORMATS["e5m2"], rounding="stochastic", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("e,m", [(0, 2), (1, 2), (9, 2), (5, 24), (5, -1), (2.5, 2)])
def test_invalid_formats_raise(e, m):
    with pytest.raises(DlxError, match="exp_bits|man_bits"):
        quantize(torch.ones(2), e, m)


def test_invalid_rounding():
    with pytest.raises(DlxError, match="rounding"):
        quantize(torch.ones(2), 5, 2, rounding="up")

"""Dot products whose sums are kept in a small float format: chunk-based accumulation (Wang et al. 2018).

A length-K reduction is cut into chunks of `chunk` (CL) terms. Exact path: inside a chunk the products
are added one by one with a rounding to `fmt` after every add; then the chunk sums are added one by one,
rounded likewise. `chunk=None` is plain sequential accumulation over all K terms (the swamping
baseline). Fast path (`exact=False`): each chunk is summed by an fp32 matmul and rounded to `fmt` once,
then the chunk sums are accumulated sequentially with rounding - a few rounding steps fewer per chunk;
docs/parts/fp8.md measures the difference.

Everything is vectorized over the outputs (and, on the exact path, over the chunks); the Python loops
run over positions inside a chunk and over chunks, never over outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlx.errors import DlxError
from dlx.precision.formats import FP16_169, Format, quantize


def check_chunk(chunk) -> int | None:
    if chunk is None or (isinstance(chunk, str) and chunk.lower() in ("none", "null")):
        return None
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise DlxError(f"chunk length must be a positive integer or none (sequential), got {chunk!r}")
    return chunk


def _q(x: torch.Tensor, fmt: Format) -> torch.Tensor:
    return quantize(x, fmt)  # round to nearest even, saturating


def sequential_sum(terms: torch.Tensor, fmt: Format, round_terms: bool = True) -> torch.Tensor:
    """Add terms[0], terms[1], ... (dim 0) one by one, rounding to `fmt` after every add."""
    acc = _q(terms[0], fmt) if round_terms else terms[0].clone()
    for t in terms[1:]:
        acc = _q(acc + (_q(t, fmt) if round_terms else t), fmt)
    return acc


def chunked_matmul(a: torch.Tensor, b: torch.Tensor, fmt: Format = FP16_169, chunk: int | None = 64,
                   exact: bool = True, products_exact: bool = False) -> torch.Tensor:
    """a [N, K] @ b [K, M] with the K-reduction accumulated in `fmt` (see the module docstring).

    Products are rounded to `fmt` unless `products_exact` says they are exact there already (FP8 x FP8
    products are exact in 1-6-9), which saves work.
    """
    chunk = check_chunk(chunk)
    a, b = a.float(), b.float()
    n, k = a.shape
    m = b.shape[1]
    if k == 0:
        return a.new_zeros(n, m)
    if chunk is None:  # sequential: one product column at a time, vectorized over the N x M outputs
        acc = a.new_zeros(n, m)
        for i in range(k):
            p = a[:, i : i + 1] * b[i : i + 1, :]
            acc = _q(acc + (p if products_exact else _q(p, fmt)), fmt)
        return acc
    c = math.ceil(k / chunk)
    pad = c * chunk - k
    if pad:  # zero terms leave every partial sum unchanged
        a, b = F.pad(a, (0, pad)), F.pad(b, (0, 0, 0, pad))
    A = a.reshape(n, c, chunk).permute(1, 0, 2)  # [C, N, CL]
    B = b.reshape(c, chunk, m)  # [C, CL, M]
    if exact:
        sums = a.new_zeros(c, n, m)
        for j in range(chunk):
            p = A[:, :, j : j + 1] * B[:, j : j + 1, :]
            sums = _q(sums + (p if products_exact else _q(p, fmt)), fmt)
    else:
        sums = _q(torch.bmm(A, B), fmt)
    return sequential_sum(sums, fmt, round_terms=False)


def dot_error(n: int, chunk: int | None, fmt: Format = FP16_169, trials: int = 8, seed: int = 0,
              exact: bool = True, dist: str = "uniform") -> float:
    """Relative error of length-n dot products of FP8-valued random vectors accumulated in `fmt`
    against a float64 reference; the mean over `trials` independent pairs (vectorized as outputs).

    dist="uniform": entries U(0, 1) (positive, so the running sum grows and small terms get swamped,
    the setting of the paper's Fig. 1); "normal": N(0, 1).
    """
    from dlx.precision.formats import E5M2

    g = torch.Generator().manual_seed(seed)
    draw = torch.rand if dist == "uniform" else torch.randn
    x = quantize(draw(trials, n, generator=g), E5M2)
    y = quantize(draw(n, trials, generator=g), E5M2)
    ref = (x.double() * y.double().T).sum(1)
    out = chunked_matmul(x, y, fmt, chunk, exact=exact, products_exact=True).diagonal().double()
    return float(((out - ref).abs() / ref.abs().clamp_min(1e-300)).mean())

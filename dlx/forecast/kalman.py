"""The Kalman filter of a linear-Gaussian innovation state-space model (ISSM), exact and batched over series,
in float64, differentiable with torch autograd:

    l_t = F_t l_{t-1} + g_t ε_t          ε_t  ~ N(0, 1)      (latent state, dimension d)
    z_t = a_tᵀ l_{t-1} + b_t + σ_t ε'_t   ε'_t ~ N(0, 1)      (observation), l_0 ~ N(μ_0, P_0)

for t = 1..T. A missing target (NaN) is skipped in the update (the state is only propagated) and adds
nothing to the log-likelihood.

Shapes. ``z`` is ``(batch, T)``. Each parameter has a per-step shape — ``F``: (d, d), ``a`` and ``g``: (d,),
``b`` and ``sigma``: () — and may carry a batch axis in front, ``(batch, *per_step)``, and a time axis after
the batch axis, ``(batch, T, *per_step)``, when it varies over time. ``mu0`` is (d,) or (batch, d), ``P0``
(d, d) or (batch, d, d). Leading axes are recognised by the number of dimensions, so a constant parameter
needs neither.

- :func:`log_likelihood` -- the total log-likelihood per series, shape ``(batch,)``.
- :func:`kalman_filter` -- the same plus the final filtered state l_T | z_1..T (mean, covariance) and, on
  request, the state means of every step.
- :func:`predict` -- the exact Gaussian predictive marginals of future steps from a filtered state.
- :func:`sample` -- joint sample paths of future steps from a filtered state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dlx.errors import DlxError

LOG_2PI = math.log(2.0 * math.pi)
PER_STEP = {"F": 2, "a": 1, "g": 1, "b": 0, "sigma": 0}


@dataclass
class FilterResult:
    log_lik: torch.Tensor  # (batch,) total log-likelihood of the observed targets
    mean: torch.Tensor  # (batch, d) E[l_T | z_1..T]
    cov: torch.Tensor  # (batch, d, d) Cov[l_T | z_1..T]
    n_obs: torch.Tensor  # (batch,) number of observed (non-NaN) targets
    # with return_means=True, for t = 1..T, both (batch, T, d): the state z_t reads, l_{t-1}, given the
    # targets up to z_t (filtered) and up to z_{t-1} (one step ahead)
    means: torch.Tensor | None = None  # E[l_{t-1} | z_1..t]
    pred_means: torch.Tensor | None = None  # E[l_{t-1} | z_1..t-1]


def _param(x, name: str, batch: int, steps: int, d: int) -> torch.Tensor:
    """``x`` as a float64 tensor of shape (batch, steps, *per_step), broadcast (views, no copies)."""
    k = PER_STEP[name]
    t = _tensor(x)
    if t.dim() == k:
        t = t.reshape(1, 1, *t.shape)
    elif t.dim() == k + 1:
        t = t.unsqueeze(1)
    elif t.dim() != k + 2:
        raise DlxError(f"kalman: {name} must have {k}, {k + 1} or {k + 2} dimensions, got shape "
                       f"{tuple(t.shape)}")
    want = (batch, steps, *([d] * k))
    try:
        return t.expand(*want)
    except RuntimeError:
        raise DlxError(f"kalman: {name} of shape {tuple(t.shape)} does not fit (batch, T, ...) = "
                       f"{want}") from None


def _tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray) and not x.flags.writeable:  # e.g. np.broadcast_to views
        x = np.array(x)
    return torch.as_tensor(x, dtype=torch.float64)


def _prior(mu0, P0, batch: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    m, P = _tensor(mu0), _tensor(P0)
    if m.dim() == 1:
        m = m.unsqueeze(0)
    if P.dim() == 2:
        P = P.unsqueeze(0)
    if m.shape[-1] != d or P.shape[-2:] != (d, d):
        raise DlxError(f"kalman: mu0 {tuple(m.shape)} and P0 {tuple(P.shape)} do not match the state "
                       f"dimension {d}")
    return m.expand(batch, d), P.expand(batch, d, d)


def _is_identity(F: torch.Tensor) -> bool:
    """A constant identity transition (no time or batch variation, no gradient) lets the filter skip F."""
    if F.requires_grad or F.stride(0) != 0 or F.stride(1) != 0:
        return False
    f = F[0, 0]
    return bool(torch.equal(f, torch.eye(f.shape[0], dtype=f.dtype, device=f.device)))


def _setup(z, F, a, b, g, sigma):
    z = torch.as_tensor(z, dtype=torch.float64)
    if z.dim() == 1:
        z = z.unsqueeze(0)
    if z.dim() != 2:
        raise DlxError(f"kalman: z must be (batch, T), got shape {tuple(z.shape)}")
    batch, steps = z.shape
    d = np.shape(a)[-1]
    out = {name: _param(v, name, batch, steps, d) for name, v in
           (("F", F), ("a", a), ("b", b), ("g", g), ("sigma", sigma))}
    if out["F"].shape[-1] != d:
        raise DlxError(f"kalman: F is {tuple(out['F'].shape[-2:])} but a has dimension {d}")
    return z, out, batch, steps, d


def kalman_filter(z, F, a, b, g, sigma, mu0, P0, return_means: bool = False) -> FilterResult:
    """Filter ``z`` (NaN = missing) through the ISSM; see the module docstring for the model and shapes."""
    z, p, batch, steps, d = _setup(z, F, a, b, g, sigma)
    m, P = _prior(mu0, P0, batch, d)
    identity = _is_identity(p["F"])
    observed = torch.isfinite(z)
    z0 = torch.where(observed, z, torch.zeros_like(z))
    obs = observed.to(torch.float64)
    gaps = not bool(observed.all())
    var_obs = p["sigma"] ** 2
    Ss, vs, means, preds = [], [], [], []
    for t in range(steps):
        a_t, g_t = p["a"][:, t], p["g"][:, t]
        if return_means:
            preds.append(m)
        Pa = torch.bmm(P, a_t.unsqueeze(-1)).squeeze(-1)  # (B, d)
        S = (a_t * Pa).sum(-1) + var_obs[:, t]  # innovation variance
        v = z0[:, t] - (a_t * m).sum(-1) - p["b"][:, t]  # innovation
        Ss.append(S)
        vs.append(v)
        K = Pa / S.unsqueeze(-1)  # gain
        if gaps:  # a missing target: no update
            K = K * obs[:, t].unsqueeze(-1)
        m = m + v.unsqueeze(-1) * K
        if return_means:
            means.append(m)
        if identity:  # P <- P - K Paᵀ + g gᵀ in one batched product
            U = torch.stack([-K, g_t], -1)
            V = torch.stack([Pa, g_t], -2)
            P = torch.baddbmm(P, U, V)
        else:
            F_t = p["F"][:, t]
            P = torch.baddbmm(P, -K.unsqueeze(-1), Pa.unsqueeze(-2))
            m = torch.bmm(F_t, m.unsqueeze(-1)).squeeze(-1)
            P = torch.baddbmm(torch.bmm(torch.bmm(F_t, P), F_t.transpose(-1, -2)), g_t.unsqueeze(-1),
                              g_t.unsqueeze(-2))
    S, v = torch.stack(Ss, 1), torch.stack(vs, 1)
    ll = -0.5 * (obs * (LOG_2PI + torch.log(S) + v * v / S)).sum(1)
    return FilterResult(ll, m, P, obs.sum(1), torch.stack(means, 1) if return_means else None,
                        torch.stack(preds, 1) if return_means else None)


def log_likelihood(z, F, a, b, g, sigma, mu0, P0) -> torch.Tensor:
    """Total log-likelihood log p(z_1..T) per series, shape ``(batch,)`` (NaN targets skipped)."""
    return kalman_filter(z, F, a, b, g, sigma, mu0, P0).log_lik


def _future(mean, cov, F, a, b, g, sigma, steps: int):
    """The state at T in float64 and the future steps' parameters, shaped, for predict and sample."""
    m = torch.as_tensor(mean, dtype=torch.float64)
    P = torch.as_tensor(cov, dtype=torch.float64)
    batch, d = m.shape
    p = {name: _param(v, name, batch, steps, d) for name, v in
         (("F", F), ("a", a), ("b", b), ("g", g), ("sigma", sigma))}
    return m, P, p, _is_identity(p["F"])


def predict(mean, cov, F, a, b, g, sigma, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact predictive marginals of z_{T+1..T+steps} from l_T ~ N(mean, cov): (mean, sd), each
    ``(batch, steps)``; the parameters are those of the future steps (shapes as in :func:`kalman_filter`)."""
    m, P, p, identity = _future(mean, cov, F, a, b, g, sigma, steps)
    mus, sds = [], []
    for t in range(steps):
        a_t = p["a"][:, t]
        mus.append((a_t * m).sum(-1) + p["b"][:, t])
        var = (a_t * (P @ a_t.unsqueeze(-1)).squeeze(-1)).sum(-1) + p["sigma"][:, t] ** 2
        sds.append(var.clamp_min(0).sqrt())
        if not identity:
            F_t = p["F"][:, t]
            m = (F_t @ m.unsqueeze(-1)).squeeze(-1)
            P = F_t @ P @ F_t.transpose(-1, -2)
        g_t = p["g"][:, t]
        P = P + g_t.unsqueeze(-1) * g_t.unsqueeze(-2)
    return torch.stack(mus, 1), torch.stack(sds, 1)


def sample(mean, cov, F, a, b, g, sigma, steps: int, num_samples: int,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Joint sample paths of z_{T+1..T+steps} from l_T ~ N(mean, cov): ``(batch, num_samples, steps)``."""
    m, P, p, identity = _future(mean, cov, F, a, b, g, sigma, steps)
    batch, d = m.shape
    jitter = 1e-10 * torch.eye(d, dtype=torch.float64, device=m.device)
    L = torch.linalg.cholesky(0.5 * (P + P.transpose(-1, -2)) + jitter)  # (B, d, d)
    gen = {"generator": generator, "dtype": torch.float64, "device": m.device}
    eps0 = torch.randn(batch, num_samples, d, **gen)
    state = m.unsqueeze(1) + (L.unsqueeze(1) @ eps0.unsqueeze(-1)).squeeze(-1)  # (B, S, d)
    out = []
    for t in range(steps):
        a_t, g_t = p["a"][:, t].unsqueeze(1), p["g"][:, t].unsqueeze(1)
        noise = torch.randn(batch, num_samples, **gen)
        out.append((a_t * state).sum(-1) + p["b"][:, t, None] + p["sigma"][:, t, None] * noise)
        if not identity:
            state = (p["F"][:, t].unsqueeze(1) @ state.unsqueeze(-1)).squeeze(-1)
        state = state + g_t * torch.randn(batch, num_samples, 1, **gen)
    return torch.stack(out, -1)

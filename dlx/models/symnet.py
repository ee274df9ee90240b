"""Deep symmetry networks (Gens & Domingos, NIPS 2014) and the baselines they are compared with.

A symnet computes each filter's response at K control points of a transformation group G (at every image
position: translations stay a convolution). Here G is the linear part of the affine group, parametrized by
``u = (theta, log scale, log aspect, shear)`` with matrices ``A(u) = R(theta) diag(s a, s / a) [[1, h],
[0, 1]]`` (every orientation-preserving 2x2 matrix has one such form): ``rotation`` uses theta only,
``rotscale`` (the default) theta and scale, ``affine`` all four. The control points are a lattice (K
rotations x the listed scales, aspects, shears); an axis with a single value is fixed, not searched.

* **Responses at the control points**, two ways (``warp``), the same in the continuum since a filter
  warped by g on x equals the filter on x warped by g^-1:
  ``inputs`` (default): the input is resampled at every control point (``affine_grid``/``grid_sample``,
  x_g(p) = x(A_g p)) and both layers run on every copy; rotating the input by a control angle permutes the
  copies, so the responses are equivariant up to the resampling of a smooth image.
  ``filters``: each layer's k x k filter is warped to every control point (W_g(p) = W(A_g^-1 p) / |det A_g|)
  and the first layer lifts the image to maps over (G, space); the second layer at g applies its filter
  warped by g to the first layer's maps at g (a grouped convolution). The maps share the image's frame, so
  they can be pooled over neighbourhoods in G, but a 3x3 or 5x5 filter turned by 45 degrees is a poor copy of
  itself: equivariance is exact at quarter turns and rough in between (tested).
* **Kernel interpolation**: the responses at the control points extend to all of G by interpolation with
  a product kernel (von Mises on the angle, Gaussian on the other axes, widths ``kernel_width`` x the control
  spacing), around the mean of the control values: f(u) = m + sum_j a_j k(u, u_j) with a = K^-1 (f - m).
  It is exact at the control points and reproduces constants.
* **Local maxima**: within ``refine_radius`` control spacings of each control point, the interpolant is
  evaluated on a ``search_grid`` per axis (one matrix product) and ``refine_steps`` damped Newton steps
  (per axis: gradient over |second derivative|, from the kernel's analytic derivatives) climb from the best
  grid point. The search is on the interpolant (the paper aligns with Gauss-Newton on the warped image
  itself; this keeps it to O(K^2) per map entry) and is not differentiated (at a maximum the position's
  gradient vanishes); the value found is, so training is end to end.
* **Pooling over G**: at the top, after the maximum over space, the interpolant's maximum over all of G
  gives an invariant feature per filter; with ``warp=filters`` each first-layer control point also keeps
  the largest response in its own neighbourhood (local invariance to small transformations).

``convnet`` is the same network with G = {identity} (same filters, same parameter count: the paper's
comparison), ``p4cnn`` the group-convolution network of Cohen & Welling (2016) on the four rotations by
90 degrees (filters turned with ``torch.rot90``, pooled over the group at the top).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlx.errors import DlxError
from dlx.models.layers import channels_and_spatial, positive_int
from dlx.models.registry import register_model

GROUPS = ("rotation", "rotscale", "affine")
AXES = ("theta", "log_scale", "log_aspect", "shear")
# spacing used for the kernel width and the search radius of an axis that has a single control value
LONE_SPACING = {"log_scale": 0.25, "log_aspect": 0.25, "shear": 0.25}


def _floats(value, key: str, positive: bool = False) -> list[float]:
    """A non-empty list of distinct finite numbers (a bare number counts as a list of one), sorted."""
    items = [value] if isinstance(value, (int, float, str)) else value
    try:
        out = [float(v) for v in items if not isinstance(v, bool)]
        ok = len(out) == len(items) > 0
    except (TypeError, ValueError):
        out, ok = [], False
    if not ok or any(not math.isfinite(v) or (positive and v <= 0) for v in out):
        kind = "positive numbers" if positive else "numbers"
        raise DlxError(f"{key} must be a non-empty list of {kind}, got {value!r}")
    if len(set(out)) != len(out):
        raise DlxError(f"{key} has repeated values: {value!r}")
    return sorted(out)


class Lattice:
    """Control points of G: coordinates of the searched axes, their matrices, spacings and kernel widths."""

    def __init__(self, group: str = "rotation", K: int = 8, scales=(1.0,), aspects=(1.0,), shears=(0.0,),
                 kernel_width: float = 0.8):
        if group not in GROUPS:
            raise DlxError(f"unknown symmetry group '{group}' (choose one of: {', '.join(GROUPS)})")
        if isinstance(K, bool) or not isinstance(K, int) or K < 1:
            raise DlxError(f"model.K (control points on the rotation axis) must be an integer >= 1, "
                           f"got {K!r}")
        if isinstance(kernel_width, bool) or not isinstance(kernel_width, (int, float)) or \
                not math.isfinite(kernel_width) or kernel_width <= 0:
            raise DlxError(f"model.kernel_width must be a positive number, got {kernel_width!r}")
        scales = [math.log(s) for s in _floats(scales, "model.scales", positive=True)]
        aspects = [math.log(a) for a in _floats(aspects, "model.aspects", positive=True)]
        shears = _floats(shears, "model.shears")
        values = {"theta": [2 * math.pi * k / K for k in range(K)],
                  "log_scale": scales if group != "rotation" else [0.0],
                  "log_aspect": aspects if group == "affine" else [0.0],
                  "shear": shears if group == "affine" else [0.0]}
        self.group, self.K = group, K
        self.values = values
        self.shape = tuple(len(values[a]) for a in AXES)  # theta outermost: a rotation step is a roll
        self.active = [a for a in AXES if len(values[a]) > 1]  # the searched axes
        spacing = {"theta": 2 * math.pi / K}
        for a in AXES[1:]:
            v = values[a]
            gaps = [b - c for b, c in zip(v[1:], v[:-1], strict=False)]
            spacing[a] = min(gaps) if gaps else LONE_SPACING[a]
        self.spacing = torch.tensor([spacing[a] for a in self.active], dtype=torch.float64)
        self.sigma = kernel_width * self.spacing
        self.periodic = torch.tensor([a == "theta" for a in self.active])
        grids = torch.meshgrid(*[torch.tensor(values[a], dtype=torch.float64) for a in AXES], indexing="ij")
        full = torch.stack([g.reshape(-1) for g in grids], dim=1)  # (G, 4)
        self.full = full
        self.coords = full[:, [AXES.index(a) for a in self.active]]  # (G, D)
        self.size = full.shape[0]

    def matrices(self) -> torch.Tensor:
        """(G, 2, 2) float64: A = R(theta) diag(s a, s / a) [[1, h], [0, 1]]."""
        th, ls, la, h = self.full.unbind(1)
        c, s = torch.cos(th), torch.sin(th)
        rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        sx, sy = torch.exp(ls + la), torch.exp(ls - la)
        diag = torch.diag_embed(torch.stack([sx, sy], -1))
        shear = torch.eye(2, dtype=torch.float64).repeat(len(th), 1, 1)
        shear[:, 0, 1] = h
        return rot @ diag @ shear

    def rotation_step(self) -> int:
        """How far along the G axis one rotation step (2 pi / K) moves a control point."""
        return self.size // self.K


def kernel_terms(u: torch.Tensor, ctrl: torch.Tensor, sigma: torch.Tensor, periodic: tuple[bool, ...],
                 derivatives: bool = True):
    """For points u (..., D) against control points (G, D): the kernel k (..., G) and, per axis, the first
    and second derivatives of log k with respect to u, as lists of (..., G) tensors."""
    logk, d1, d2 = 0.0, [], []
    for d, per in enumerate(periodic):
        diff = u[..., d].unsqueeze(-1) - ctrl[:, d]  # (..., G)
        s2 = sigma[d] ** 2
        if per:  # von Mises: (cos - 1) / s^2
            cos = torch.cos(diff)
            logk = logk + (cos - 1) / s2
            if derivatives:
                d1.append(torch.sin(diff) / -s2)
                d2.append(cos / -s2)
        else:
            logk = logk + diff * diff / (-2 * s2)
            if derivatives:
                d1.append(diff / -s2)
                d2.append(torch.full_like(diff, -1 / s2))
    return torch.exp(logk), d1, d2


class Interpolator(nn.Module):
    """Kernel interpolation over G from values at the lattice's control points, and the search for the
    interpolant's local maxima near each control point.

    Search, within ``radius`` control spacings of a control point (its neighbourhood):
    1. a grid of ``grid`` points per searched axis, the control point at its centre, evaluated with one
       matrix product (the interpolant is linear in the values); the best grid point is kept;
    2. Newton refinement from it. For the local pooling of whole maps, one step from the gradient and
       (diagonal) curvature of the interpolant at the grid point, also precomputed matrix products, the
       value there from the interpolant's second-order expansion, the step kept within half a grid cell
       (where the expansion holds); at the top, where the maps are already pooled over space, ``steps``
       damped Newton iterations on the interpolant itself, with exact values, kept in the neighbourhood.
    A refined value replaces the grid's best only where it is higher, so the search never loses the control
    point's own value."""

    def __init__(self, lattice: Lattice, steps: int = 2, radius: float = 0.5, grid: int = 5):
        super().__init__()
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise DlxError(f"model.refine_steps must be an integer >= 0, got {steps!r}")
        if not (isinstance(radius, (int, float)) and not isinstance(radius, bool) and math.isfinite(radius)
                and 0 <= radius <= 1):
            raise DlxError(f"model.refine_radius must be a number in [0, 1] (control spacings), "
                           f"got {radius!r}")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1 or grid % 2 == 0:
            raise DlxError(f"model.search_grid must be an odd integer >= 1 (grid points per axis), "
                           f"got {grid!r}")
        self.steps, self.radius, self.D, self.G = int(steps), float(radius), len(lattice.active), lattice.size
        ctrl = lattice.coords  # (G, D) float64
        self.register_buffer("ctrl", ctrl.float(), persistent=False)
        self.sigma = tuple(float(v) for v in lattice.sigma)
        self.periodic = tuple(bool(p) for p in lattice.periodic)
        reach = radius * lattice.spacing
        self.register_buffer("reach", reach.float(), persistent=False)
        if self.D:
            gram, _, _ = kernel_terms(ctrl, ctrl, lattice.sigma, self.periodic, derivatives=False)
            cond = torch.linalg.cond(gram).item()
            if not math.isfinite(cond) or cond > 1e7:
                width = float(lattice.sigma[0] / lattice.spacing[0])
                raise DlxError(f"model.kernel_width={width:g} is too wide for {lattice.size} control points "
                               f"(the kernel matrix is singular, condition {cond:.2g}); use a smaller width")
            inv = torch.linalg.inv(gram)
            kinv = (inv + inv.T) / 2
        else:
            kinv = torch.ones(1, 1, dtype=torch.float64)
        self.register_buffer("kinv", kinv.float(), persistent=False)
        # the search grid: offsets (Q, D) around every control point, the centre (offset 0) first, and the
        # maps from control values to the interpolant, its gradient and curvature at every grid point
        self.Q = grid ** self.D if self.searching else 1
        if self.searching:
            ticks = [torch.linspace(-1, 1, grid, dtype=torch.float64) * r for r in reach]
            offsets = torch.stack([t.reshape(-1) for t in torch.meshgrid(*ticks, indexing="ij")], -1)
            offsets = offsets[torch.argsort(offsets.abs().sum(-1), stable=True)]
            points = (ctrl.unsqueeze(1) + offsets).reshape(-1, self.D)  # (G Q, D)
            k, d1, d2 = kernel_terms(points, ctrl, lattice.sigma, self.periodic)
            maps = [k] + [k * d for d in d1] + [k * (a * a + b) for a, b in zip(d1, d2, strict=True)]
            self.register_buffer("offsets", offsets.float(), persistent=False)
            self.register_buffer("cell", (2 * reach / max(grid - 1, 1)).float(), persistent=False)
            at_grid = torch.cat([kinv @ m.T for m in maps], 1).float()  # (G_in, (1 + 2 D) G Q)
            self.register_buffer("at_grid", at_grid, persistent=False)

    @property
    def searching(self) -> bool:
        return self.D > 0 and self.radius > 0

    def coefficients(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f (R, G) -> (mean (R, 1), a (R, G)) with f(u_j) = mean + sum_i a_i k(u_j, u_i) exactly."""
        m = f.mean(-1, keepdim=True)
        return m, (f - m) @ self.kinv

    def value(self, f: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The interpolant of f (R, G) at points u (R, M, D) -> (R, M)."""
        m, a = self.coefficients(f)
        return self._value(m, a, u)

    def _value(self, m, a, u):
        k, _, _ = kernel_terms(u, self.ctrl, self.sigma, self.periodic, derivatives=False)
        return m + (k @ a.unsqueeze(-1)).squeeze(-1)

    def on_grid(self, f: torch.Tensor) -> torch.Tensor:
        """The interpolant on every control point's search grid: (R, G, Q); grid point 0 is the control
        point itself."""
        m = f.mean(-1, keepdim=True)
        return (m + (f - m) @ self.at_grid[:, : self.G * self.Q]).view(f.shape[0], self.G, self.Q)

    @torch.no_grad()
    def newton(self, a: torch.Tensor, u: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """``steps`` damped Newton steps up the interpolant (coefficients a (R, G)) from u (R, M, D), each
        point kept within the search radius of its control point ``centre``."""
        floor = [1e-6 / v**2 for v in self.sigma]
        for _ in range(self.steps):
            k, d1, d2 = kernel_terms(u, self.ctrl, self.sigma, self.periodic)
            w = k * a.unsqueeze(1)  # (R, M, G)
            step = torch.stack([(w * d1[d]).sum(-1) / ((w * (d1[d] * d1[d] + d2[d])).sum(-1).abs() + floor[d])
                                for d in range(self.D)], -1)
            u = centre + (u + step - centre).clamp(-self.reach, self.reach)
        return u

    def local_max(self, f: torch.Tensor) -> torch.Tensor:
        """f (R, G) -> (R, G): the interpolant's maximum over each control point's neighbourhood (its own
        value where there is nothing to search). The search itself is not differentiated; the value found
        (the interpolant at the best grid point plus the Newton step's gain) is, as a linear function of f."""
        if not self.searching:
            return f
        n = 1 + 2 * self.D if self.steps else 1
        m = f.mean(-1, keepdim=True)
        maps = ((f - m) @ self.at_grid[:, : n * self.G * self.Q]).view(-1, n, self.G, self.Q)
        with torch.no_grad():
            idx = maps[:, 0].argmax(-1)  # (R, G): the best grid point of each neighbourhood
        at = maps.gather(-1, idx[:, None, :, None].expand(-1, n, -1, 1)).squeeze(-1)  # (R, n, G)
        best = at[:, 0] + m
        if self.steps:
            g, h = at[:, 1:1 + self.D].movedim(1, -1), at[:, 1 + self.D:].movedim(1, -1)  # (R, G, D)
            with torch.no_grad():  # the step
                start = self.offsets[idx]
                lo = (-self.reach - start).clamp(min=-self.cell / 2)
                hi = (self.reach - start).clamp(max=self.cell / 2)
                step = torch.maximum(torch.minimum(g / (h.abs() + 1e-6), hi), lo)
            best = best + (g * step + 0.5 * h * step * step).sum(-1).clamp(min=0)
        return torch.maximum(best, f)

    def global_max(self, f: torch.Tensor) -> torch.Tensor:
        """f (R, G) -> (R,): the interpolant's maximum over all of G (the best grid point, then Newton)."""
        if not self.searching:
            return f.amax(-1)
        vals = self.on_grid(f).flatten(1)
        best, flat = vals.max(-1)
        if self.steps:
            m, a = self.coefficients(f)
            centre = self.ctrl[flat // self.Q].unsqueeze(1)
            start = centre + self.offsets[flat % self.Q].unsqueeze(1)
            u = self.newton(a.detach(), start, centre)
            best = torch.maximum(best, self._value(m, a, u).squeeze(1))
        return torch.maximum(best, f.amax(-1))


class GroupPool(nn.Module):
    """Local pooling over G of maps (B, G, C, H, W): at each control point, the maximum of the interpolated
    response over its neighbourhood (``refine_radius`` control spacings either way)."""

    def __init__(self, interp: Interpolator):
        super().__init__()
        self.interp = interp

    CHUNK = 1 << 14  # rows (map entries) searched at once: the search grid's values are rows x G Q (x 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, g, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 4, 1).reshape(-1, g)
        # in chunks: the temporary of one call grows with every map entry (GBs for an evaluation batch)
        pooled = torch.cat([self.interp.local_max(r) for r in rows.split(self.CHUNK)]) if len(rows) else rows
        return pooled.reshape(b, c, h, w, g).permute(0, 4, 1, 2, 3)


class WarpedConv(nn.Module):
    """A k x k filter bank warped by every control point's matrix and applied at every position: ``lift``
    maps an image (B, C, H, W) to (B, G, O, H, W); otherwise maps (B, G, C, H, W) to (B, G, O, H, W) with
    the filter warped by g applied to the input's maps at g."""

    def __init__(self, c_in: int, c_out: int, k: int, lattice: Lattice, lift: bool):
        super().__init__()
        self.c_in, self.c_out, self.k, self.lift, self.G = c_in, c_out, k, lift, lattice.size
        self.weight = nn.Parameter(torch.empty(c_out, c_in, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        mats = lattice.matrices()
        corners = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64).T
        reach = (mats @ corners).abs().amax().item() * (k - 1) / 2
        self.canvas = 2 * math.ceil(reach - 1e-6) + 1
        inv = torch.linalg.inv(mats) * (self.canvas / k)
        theta = torch.cat([inv, torch.zeros(len(mats), 2, 1, dtype=torch.float64)], dim=2)
        grid = F.affine_grid(theta.float(), [len(mats), 1, self.canvas, self.canvas], align_corners=False)
        self.register_buffer("grid", grid, persistent=False)
        self.register_buffer("gain", (1 / torch.linalg.det(mats).abs()).float().view(-1, 1, 1, 1),
                             persistent=False)

    def filters(self) -> torch.Tensor:
        """(G, O, I, c, c): the filter bank warped by each control point."""
        w = self.weight.reshape(1, -1, self.k, self.k).expand(self.G, -1, -1, -1)
        out = F.grid_sample(w, self.grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return (out * self.gain).reshape(self.G, self.c_out, self.c_in, self.canvas, self.canvas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.filters().reshape(self.G * self.c_out, self.c_in, self.canvas, self.canvas)
        if self.lift:
            y = F.conv2d(x, w, padding=self.canvas // 2)
        else:
            b, g, c, h, wd = x.shape
            y = F.conv2d(x.reshape(b, g * c, h, wd), w, padding=self.canvas // 2, groups=self.G)
        return y.reshape(y.shape[0], self.G, self.c_out, *y.shape[-2:])


def _pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """size x size spatial max pooling of (..., C, H, W) maps (a smaller window once a side is shorter)."""
    size = max(1, min(size, *x.shape[-2:]))
    if size == 1:
        return x
    y = F.max_pool2d(x.reshape(-1, *x.shape[-3:]), size)
    return y.reshape(*x.shape[:-3], *y.shape[-3:])


def _stem(x: torch.Tensor, size: int) -> torch.Tensor:
    """size x size average pooling of the input image (anti-aliased downsampling; 1 = none)."""
    size = max(1, min(size, *x.shape[-2:]))
    return F.avg_pool2d(x, size) if size > 1 else x


class InputWarp(nn.Module):
    """The input seen from every control point: x_g(p) = x(A_g p) (bilinear, edges extended), so that a
    filter applied to x_g is the filter warped by g applied to x. (B, C, H, W) -> (B G, C, H, W)."""

    def __init__(self, lattice: Lattice):
        super().__init__()
        mats = lattice.matrices()
        theta = torch.cat([mats, torch.zeros(len(mats), 2, 1, dtype=torch.float64)], 2)
        self.register_buffer("theta", theta.float(), persistent=False)
        self.grids: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.theta.shape[0]
        key = (h, w, x.device, x.dtype)
        if key not in self.grids:
            self.grids[key] = F.affine_grid(self.theta.to(x.dtype), [g, c, h, w], align_corners=False)
        grid = self.grids[key].unsqueeze(0).expand(b, -1, -1, -1, -1).reshape(b * g, h, w, 2)
        xs = x.unsqueeze(1).expand(-1, g, -1, -1, -1).reshape(b * g, c, h, w)
        return F.grid_sample(xs, grid, mode="bilinear", padding_mode="border", align_corners=False)


class FrameWarp(nn.Module):
    """Maps over G moved between the image's frame and each control point's own frame (``warp="layers"``):
    ``to_image`` (B G, C, H, W), copy g in g's frame -> (B, G, C, H, W) aligned in the image's frame
    (copy g resampled at A_g^-1 q, zeros outside); ``to_frames`` the inverse, (B, G, C, H, W) aligned ->
    (B G, C, H, W), map g resampled at A_g p. Bilinear; exact where A_g maps pixel centres to pixel centres
    (quarter turns of a square map)."""

    def __init__(self, lattice: Lattice):
        super().__init__()
        mats = lattice.matrices()
        pad = torch.zeros(len(mats), 2, 1, dtype=torch.float64)
        self.register_buffer("fwd", torch.cat([mats, pad], 2).float(), persistent=False)
        self.register_buffer("back", torch.cat([torch.linalg.inv(mats), pad], 2).float(), persistent=False)
        self.grids: dict = {}

    def _grid(self, which: str, b: int, c: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        key = (which, h, w, like.device, like.dtype)
        if key not in self.grids:
            theta = (self.fwd if which == "fwd" else self.back).to(like.dtype)
            self.grids[key] = F.affine_grid(theta, [theta.shape[0], c, h, w], align_corners=False)
        g = self.grids[key]
        return g.unsqueeze(0).expand(b, -1, -1, -1, -1).reshape(b * g.shape[0], h, w, 2)

    def to_image(self, x: torch.Tensor, b: int) -> torch.Tensor:
        c, h, w = x.shape[-3:]
        y = F.grid_sample(x, self._grid("back", b, c, h, w, x), mode="bilinear", padding_mode="zeros",
                          align_corners=False)
        return y.view(b, -1, c, h, w)

    def to_frames(self, x: torch.Tensor) -> torch.Tensor:
        b, g, c, h, w = x.shape
        return F.grid_sample(x.reshape(b * g, c, h, w), self._grid("fwd", b, c, h, w, x), mode="bilinear",
                             padding_mode="zeros", align_corners=False)


WARPS = ("filters", "inputs", "layers")


class SymNet(nn.Module):
    """Two symnet layers and a linear classifier.

    ``warp="filters"``: [stem average pool] -> lift (filters warped to every control point) -> spatial max
    pool ``pool`` -> local pool over G -> bias, ReLU -> group layer (filters warped by g applied to the maps
    at g) -> max over space -> max over all of G -> bias, ReLU -> linear.
    ``warp="inputs"``: the input is warped to every control point instead (filter warped by g on x = filter
    on x warped by g^-1, up to resampling) and the two layers run on each warped copy with the filters as
    learned; the maps then live in their own frames, so there is no local pooling over G, only the
    interpolated maximum over all of G at the top.
    ``warp="layers"`` (the paper's layer by layer): the first layer runs on each warped copy of the input as
    with ``inputs``, then its maps are brought back to the image's frame (``FrameWarp``), so they form one
    feature map over (G, space): local pool over G (each control point's neighbourhood, on the kernel
    interpolant, with the search) -> bias, ReLU -> the maps resampled into each control point's frame ->
    spatial max pool there -> the second layer, then max over space and the interpolated maximum over all
    of G at the top. (Pooling over space before the round trip, on 6 x 6 maps, cost 5-6 points of error on
    rotated digits.) Same parameters in every mode.
    Pre-activations are pooled (max commutes with the per-filter bias and ReLU that follow)."""

    def __init__(self, c_in: int, classes: int, widths=(16, 32), kernels=(5, 3),
                 lattice: Lattice | None = None, refine_steps: int = 1, refine_radius: float = 0.5,
                 search_grid: int = 5, pool: int = 2, stem: int = 2, local_pool: bool = True,
                 warp: str = "inputs"):
        super().__init__()
        if warp not in WARPS:
            raise DlxError(f"model.warp must be one of {', '.join(WARPS)}, got {warp!r}")
        self.lattice = lattice or Lattice("rotscale", 8, (0.87, 1.15))
        (c1, c2), (k1, k2) = widths, kernels
        self.pool, self.stem, self.warp = pool, stem, warp
        self.input_warp = InputWarp(self.lattice) if warp in ("inputs", "layers") else None
        self.frames = FrameWarp(self.lattice) if warp == "layers" else None
        self.interp = Interpolator(self.lattice, refine_steps, refine_radius, search_grid)
        self.conv1 = WarpedConv(c_in, c1, k1, self.lattice, lift=True)
        self.bias1 = nn.Parameter(torch.zeros(c1))
        self.conv2 = WarpedConv(c1, c2, k2, self.lattice, lift=False)
        self.bias2 = nn.Parameter(torch.zeros(c2))
        self.local_pool = GroupPool(self.interp) if local_pool and warp != "inputs" else nn.Identity()
        self.fc = nn.Linear(c2, classes)

    def responses(self, x: torch.Tensor) -> torch.Tensor:
        """The first layer's maps at the control points before pooling: (B, G, C1, H, W) (with
        ``warp="inputs"`` each in its own frame, otherwise in the image's)."""
        if self.input_warp is None:
            return self.conv1(_stem(x, self.stem))
        w = self.conv1.weight
        h = F.conv2d(_stem(self.input_warp(x), self.stem), w, padding=w.shape[-1] // 2)
        if self.frames is not None:
            return self.frames.to_image(h, x.shape[0])
        return h.view(x.shape[0], -1, *h.shape[1:])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The second layer's responses at the control points, maximized over space: (B, G, C2)."""
        w = self.conv2.weight
        if self.frames is not None:  # pooled over G at full resolution, over space in each point's frame:
            h = torch.relu(self.local_pool(self.responses(x)) + self.bias1.view(1, 1, -1, 1, 1))
            h = _pool(self.frames.to_frames(h), self.pool)  # resampling a pooled 6x6 map loses the digit
            out = F.conv2d(h, w, padding=w.shape[-1] // 2).amax(dim=(-2, -1))
            return out.view(x.shape[0], -1, out.shape[-1])
        h = self.local_pool(_pool(self.responses(x), self.pool))
        h = torch.relu(h + self.bias1.view(1, 1, -1, 1, 1))
        if self.input_warp is None:
            return self.conv2(h).amax(dim=(-2, -1))
        out = F.conv2d(h.flatten(0, 1), w, padding=w.shape[-1] // 2).amax(dim=(-2, -1))
        return out.view(x.shape[0], -1, out.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, G, C2)
        b, g, c = f.shape
        h = self.interp.global_max(f.transpose(1, 2).reshape(-1, g)).reshape(b, c)
        return self.fc(torch.relu(h + self.bias2))


class ConvNet(nn.Module):
    """The symnet's architecture with G = {identity}: [stem average pool] -> conv -> max pool -> bias, ReLU
    -> conv -> global max -> bias, ReLU -> linear. Same filters and parameter count as ``SymNet``."""

    def __init__(self, c_in: int, classes: int, widths=(16, 32), kernels=(5, 3), pool: int = 2,
                 stem: int = 2):
        super().__init__()
        (c1, c2), (k1, k2) = widths, kernels
        self.pool, self.stem = pool, stem
        self.conv1 = nn.Conv2d(c_in, c1, k1, padding=k1 // 2, bias=False)
        self.bias1 = nn.Parameter(torch.zeros(c1))
        self.conv2 = nn.Conv2d(c1, c2, k2, padding=k2 // 2, bias=False)
        self.bias2 = nn.Parameter(torch.zeros(c2))
        self.fc = nn.Linear(c2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _pool(self.conv1(_stem(x, self.stem)), self.pool)
        h = torch.relu(h + self.bias1.view(1, -1, 1, 1))
        h = self.conv2(h).amax(dim=(-2, -1))
        return self.fc(torch.relu(h + self.bias2))


class P4CNN(nn.Module):
    """Group convolutions over p4 (translations and the four rotations by 90 degrees; Cohen & Welling 2016):
    a lifting layer (filters turned with ``torch.rot90``), a p4 layer (filters turned and their rotation
    axis rolled), max over space and the four rotations, linear. Layout as ``ConvNet``."""

    def __init__(self, c_in: int, classes: int, widths=(8, 16), kernels=(5, 3), pool: int = 2, stem: int = 2):
        super().__init__()
        (c1, c2), (k1, k2) = widths, kernels
        self.k, self.c1, self.c2, self.pool, self.stem = (k1, k2), c1, c2, pool, stem
        self.w1 = nn.Parameter(torch.empty(c1, c_in, k1, k1))
        self.w2 = nn.Parameter(torch.empty(c2, c1, 4, k2, k2))
        for w in (self.w1, self.w2):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.bias1 = nn.Parameter(torch.zeros(c1))
        self.bias2 = nn.Parameter(torch.zeros(c2))
        self.fc = nn.Linear(c2, classes)

    def lift_filters(self) -> torch.Tensor:
        return torch.cat([torch.rot90(self.w1, r, dims=(-2, -1)) for r in range(4)])  # (4 C1, C_in, k, k)

    def group_filters(self) -> torch.Tensor:
        """Output rotation r: the filter turned by r and its input rotation axis rolled by r."""
        out = [torch.rot90(torch.roll(self.w2, r, dims=2), r, dims=(-2, -1)) for r in range(4)]
        w = torch.stack(out)  # (4, C2, C1, 4, k, k)
        return w.permute(0, 1, 3, 2, 4, 5).reshape(4 * self.c2, 4 * self.c1, self.k[1], self.k[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _pool(F.conv2d(_stem(x, self.stem), self.lift_filters(), padding=self.k[0] // 2), self.pool)
        b, _, hh, ww = h.shape
        h = torch.relu(h.view(b, 4, self.c1, hh, ww) + self.bias1.view(1, 1, -1, 1, 1)).reshape(b, -1, hh, ww)
        h = F.conv2d(h, self.group_filters(), padding=self.k[1] // 2).amax(dim=(-2, -1))
        h = h.view(b, 4, self.c2).amax(1)
        return self.fc(torch.relu(h + self.bias2))


def _image_input(meta, name: str) -> int:
    shape = tuple(int(v) for v in meta.input_shape)
    if len(shape) != 3:
        raise DlxError(f"model '{name}' needs images (C, H, W); data '{meta.name}' has inputs of shape "
                       f"{shape}")
    return channels_and_spatial(shape)[0]


def _pair(cfg, key: str, name: str, default: tuple[int, int], odd: bool = False) -> tuple[int, int]:
    v = cfg.get(key)
    v = list(default) if v is None else v
    try:
        out = [int(x) for x in v] if not isinstance(v, (str, bytes, int, float)) else []
        ok = len(out) == 2 and all(o == x and o >= 1 for o, x in zip(out, v, strict=True))
    except (TypeError, ValueError):
        ok = False
    if not ok or (odd and any(o % 2 == 0 for o in out)):
        what = "two odd positive integers" if odd else "two positive integers"
        raise DlxError(f"model.{key} for '{name}' must be {what} (first layer, second layer), got {v!r}")
    return out[0], out[1]


def _common(cfg, name: str, widths=(16, 32)) -> dict:
    """The layout keys every model of this family shares."""
    return {"widths": _pair(cfg, "widths", name, widths),
            "kernels": _pair(cfg, "kernels", name, (5, 3), odd=True),
            "pool": positive_int(cfg, "pool", 2, name), "stem": positive_int(cfg, "stem", 2, name)}


def _number(cfg, key: str, default):
    v = cfg.get(key)
    return default if v is None else v


def lattice_from(cfg) -> Lattice:
    """The control-point lattice of ``model.group`` with ``model.K`` rotations (and the listed scales,
    aspects and shears)."""
    K = cfg.get("K", 8)
    if isinstance(K, float) and K.is_integer():
        K = int(K)
    width = _number(cfg, "kernel_width", 0.8)
    return Lattice(str(cfg.get("group", "rotscale")), K, _number(cfg, "scales", [0.87, 1.15]),
                   _number(cfg, "aspects", [1.0]), _number(cfg, "shears", [0.0]),
                   float(width) if isinstance(width, (int, float)) and not isinstance(width, bool) else width)


@register_model("symnet")
def build_symnet(cfg, meta) -> nn.Module:
    """Symnet over rotations (x scales, x the rest of the affine group) with K rotation control points."""
    c_in = _image_input(meta, "symnet")
    radius = _number(cfg, "refine_radius", 0.5)
    radius = float(radius) if isinstance(radius, int) and not isinstance(radius, bool) else radius
    return SymNet(c_in, int(meta.num_outputs), lattice=lattice_from(cfg),
                  refine_steps=_number(cfg, "refine_steps", 1), refine_radius=radius,
                  search_grid=_number(cfg, "search_grid", 5), local_pool=bool(cfg.get("local_pool", True)),
                  warp=str(cfg.get("warp", "inputs")), **_common(cfg, "symnet"))


@register_model("convnet")
def build_convnet(cfg, meta) -> nn.Module:
    """The plain CNN with the symnet's layout and filters (G = identity)."""
    return ConvNet(_image_input(meta, "convnet"), int(meta.num_outputs), **_common(cfg, "convnet"))


@register_model("p4cnn")
def build_p4cnn(cfg, meta) -> nn.Module:
    """P4 group-convolution CNN (rotations by 90 degrees), pooled over the group."""
    return P4CNN(_image_input(meta, "p4cnn"), int(meta.num_outputs), **_common(cfg, "p4cnn", (8, 16)))

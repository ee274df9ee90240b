"""ISSM components and their block-diagonal composition (Rangapuram et al. 2018, section 3; Hyndman et al.
2008): each component contributes a block of the latent state, of the transition F, of the emission a_t
and of the innovation g_t.

- level: one state, F = [1], a = [1], g = [α_t].
- level-trend: two states (level, slope), F = [[1, 1], [0, 1]], a = [1, 1], g = [α_t, β_t].
- seasonality with n seasons: n states (one per season), F = I_n, a_t = one-hot of the season active at
  t, g_t = γ_t a_t: only the active season's state is read and updated.

An ``ISSM`` is a level (or level-trend) followed by the seasonal components of a frequency. A network sets
the innovation strengths (one per component) at every step; the structure here turns them into g_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlx.forecast.time import Freq, Season


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # level | trend (level-trend) | seasonal
    states: int


class ISSM:
    """Level (or level-trend) + the seasonal components ``seasons``, composed block-diagonally."""

    def __init__(self, seasons: tuple[Season, ...] | list[Season] = (), trend: bool = False):
        first = Component("level_trend", "trend", 2) if trend else Component("level", "level", 1)
        self.components = [first] + [Component(s.name, "seasonal", s.states) for s in seasons]
        self.seasons = tuple(seasons)
        self.trend = bool(trend)
        self.blocks: dict[str, slice] = {}
        i = 0
        for c in self.components:
            self.blocks[c.name] = slice(i, i + c.states)
            i += c.states
        self.dim = i

    @classmethod
    def for_freq(cls, freq: Freq, trend: bool = False) -> ISSM:
        return cls(freq.seasons, trend)

    @property
    def n_strengths(self) -> int:
        """Innovation strengths a network outputs per step: α (level), β (slope, with trend), one γ per
        seasonal component."""
        return 1 + int(self.trend) + len(self.seasons)

    def transition(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """The constant block-diagonal F, (d, d)."""
        F = torch.eye(self.dim, dtype=dtype, device=device)
        if self.trend:
            F[0, 1] = 1.0
        return F

    def emission(self, season_idx: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
        """a_t for every step: ``season_idx`` (..., n_seasonal) int -> (..., d)."""
        lead = season_idx.shape[:-1]
        parts = [torch.ones(*lead, 2 if self.trend else 1, dtype=dtype, device=season_idx.device)]
        for k, s in enumerate(self.seasons):
            parts.append(torch.nn.functional.one_hot(season_idx[..., k].long(), s.states).to(dtype))
        return torch.cat(parts, -1)

    def innovation(self, strengths: torch.Tensor, emission: torch.Tensor) -> torch.Tensor:
        """g_t from the strengths (..., n_strengths) and the emission a_t (..., d)."""
        parts = [strengths[..., :1]]
        if self.trend:
            parts.append(strengths[..., 1:2])
        off = 1 + int(self.trend)
        for k, s in enumerate(self.seasons):
            block = emission[..., self.blocks[s.name]]
            parts.append(strengths[..., off + k : off + k + 1].to(block.dtype) * block)
        return torch.cat([p.to(emission.dtype) for p in parts], -1)

    def contributions(self, states: torch.Tensor, emission: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each component's part of aᵀl: ``states`` and ``emission`` (..., d) -> {name: (...)}."""
        return {c.name: (states[..., self.blocks[c.name]] * emission[..., self.blocks[c.name]]).sum(-1)
                for c in self.components}

    def describe(self) -> str:
        return " + ".join(f"{c.name} ({c.states})" for c in self.components)

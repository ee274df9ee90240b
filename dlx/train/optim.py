"""Optimizers (sgd, adam, adamw) and learning-rate schedules as LambdaLR multipliers."""

from __future__ import annotations

import math

import torch

from dlx.errors import DlxError

SCHEDULES = ("constant", "cosine", "step", "inv_sqrt")


def build_optimizer(params, cfg) -> torch.optim.Optimizer:
    from omegaconf import ListConfig

    from dlx.config import number

    name = cfg.get("name")
    lr = number(cfg.get("lr"), "optimizer.lr", lo=0)
    if lr <= 0:
        raise DlxError(f"optimizer.lr must be > 0, got {lr}")
    wd = number(cfg.get("weight_decay", 0.0), "optimizer.weight_decay", lo=0)
    if name == "sgd":
        momentum = number(cfg.get("momentum", 0.0), "optimizer.momentum", lo=0, hi=1, closed_hi=False)
        nesterov = bool(cfg.get("nesterov", False))
        if nesterov and momentum <= 0:
            raise DlxError("optimizer.nesterov=true needs optimizer.momentum > 0")
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    if name in ("adam", "adamw"):
        raw = cfg.get("betas", (0.9, 0.999))
        if not isinstance(raw, (list, tuple, ListConfig)) or len(raw) != 2:
            raise DlxError(f"optimizer.betas must be two numbers in [0, 1), got {raw!r}")
        betas = tuple(number(b, "optimizer.betas", lo=0, hi=1, closed_hi=False) for b in raw)
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=betas, weight_decay=wd)
    raise DlxError(f"unknown optimizer '{name}' (choose from: adam, adamw, sgd)")


def lr_multiplier(cfg, total_steps: int):
    """step -> factor on the base lr. inv_sqrt is Deep Double Descent's lr0 / sqrt(1 + floor(t/512))."""
    kind = cfg.get("schedule", "constant")
    warmup = int(cfg.get("warmup_steps", 0) or 0)
    if kind not in SCHEDULES:
        raise DlxError(f"unknown optimizer.schedule '{kind}' (choose from: {', '.join(SCHEDULES)})")
    fractions = list(cfg.get("milestones", [0.5, 0.75]))
    if kind == "step" and any(not isinstance(m, (int, float)) or not 0 < m <= 1 for m in fractions):
        raise DlxError(f"optimizer.milestones are fractions of training in (0, 1], got {fractions}")
    milestones = [int(float(m) * total_steps) for m in fractions]
    gamma = float(cfg.get("gamma", 0.1))

    def factor(step: int) -> float:
        w = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        if kind == "constant":
            return w
        if kind == "cosine":
            return w * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
        if kind == "step":
            return w * gamma ** sum(step >= m for m in milestones)
        return w / math.sqrt(1 + step // 512)

    return factor


def build_schedule(optimizer, cfg, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(cfg, total_steps))

"""Init-time probes of a fresh network (no training), with and without BN: relative loss
L(theta - eta g) / L(theta) vs step size eta on the first batches, per-layer activation mean/std, and a
middle layer's gradients (their histogram on the first batch; mean |g| and kurtosis on every probed
batch). The BN and no-BN networks start from the same conv weights and see the same batches, so the
per-batch values pair by batch."""

from __future__ import annotations

import copy
import math

from dlx.errors import DlxError


def first_batches(data, batch_size: int, n: int, seed: int):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for batch in data.train.batches(batch_size, shuffle=True, generator=gen):
        out.append(batch)
        if len(out) >= n:
            break
    return out


def relative_loss(model, task, batches, step_sizes) -> list[dict]:
    """L(theta - eta g) / L(theta) on each batch, g that batch's gradient; the model is left untouched.

    The model stays in train mode (BN uses batch statistics, as in the training step being probed);
    running statistics and weights are restored afterwards."""
    import torch

    saved = copy.deepcopy(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    model.train()
    for i, batch in enumerate(batches):
        model.zero_grad(set_to_none=True)
        loss0 = task.loss(model, batch)
        grads = torch.autograd.grad(loss0, params)
        theta = [p.detach().clone() for p in params]
        l0 = float(loss0.detach())
        gnorm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
        for eta in step_sizes:
            with torch.no_grad():
                for p, t, g in zip(params, theta, grads, strict=True):
                    p.copy_(t - float(eta) * g)
                loss = float(task.loss(model, batch))
            rows.append({"batch": i, "eta": float(eta), "loss0": l0, "loss": loss, "grad_norm": gnorm,
                         "ratio": loss / l0 if math.isfinite(loss) else math.inf})
        with torch.no_grad():
            for p, t in zip(params, theta, strict=True):
                p.copy_(t)
    model.load_state_dict(saved)
    return rows


def probe_layers(model) -> list[tuple[str, object]]:
    """The layers whose outputs the activation statistics describe: the stem and every residual block
    (or, for other model families, every top-level module that keeps a channel axis)."""
    from dlx.models.resnet_cifar import BasicBlock

    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, BasicBlock)]
    if blocks:
        stem = [(n, m) for n, m in model.named_children() if m.__class__.__name__ == "ReLU"][:1]
        return stem + blocks
    return [(n, m) for n, m in model.named_children() if m.__class__.__name__ == "ReLU"]


def activation_stats(model, batch) -> list[dict]:
    """Per probed layer on one batch in train mode: mean |channel mean| and mean channel std.
    Running statistics are restored afterwards."""
    import torch

    saved = copy.deepcopy(model.state_dict())
    layers = probe_layers(model)
    if not layers:
        raise DlxError("activation statistics need a model with residual blocks or ReLU layers")
    found: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: found.__setitem__(name, out.detach()))
             for name, m in layers]
    model.train()
    try:
        with torch.no_grad():
            model(batch[0])
    finally:
        for h in hooks:
            h.remove()
        model.load_state_dict(saved)
    rows = []
    for i, (name, _) in enumerate(layers):
        a = found[name].double()
        per_channel = a.transpose(0, 1).reshape(a.shape[1], -1)  # (C, N*H*W)
        rows.append({"layer": i, "name": name, "abs_mean": float(per_channel.mean(1).abs().mean()),
                     "std": float(per_channel.std(1).mean()), "max_abs": float(a.abs().max())})
    return rows


def middle_conv(model):
    """(name, module) of the first conv of the middle residual block."""
    import torch.nn as nn

    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if not convs:
        raise DlxError("the gradient histogram needs a model with conv layers")
    return convs[len(convs) // 2]


def middle_gradients(model, task, batch):
    """Gradients of the middle conv layer's weights on one batch (train mode); weights untouched."""
    saved = copy.deepcopy(model.state_dict())
    name, conv = middle_conv(model)
    model.train()
    model.zero_grad(set_to_none=True)
    task.loss(model, batch).backward()
    values = conv.weight.grad.detach().flatten().double().cpu().numpy()
    model.zero_grad(set_to_none=True)
    model.load_state_dict(saved)
    return name, values


def gradient_stats(values) -> dict:
    """Mean |g| and excess kurtosis (pandas' unbiased estimate) of one batch's gradients."""
    import pandas as pd

    g = pd.Series(values)
    return {"abs_mean": float(g.abs().mean()), "kurtosis": float(g.kurt())}


def init_analyses(cfg, bns) -> tuple:
    """relative_loss.csv, activations.csv, gradients.csv (first batch) and gradient_stats.csv (per batch)
    rows for a fresh model of each kind."""
    import pandas as pd
    from omegaconf import OmegaConf

    from dlx.build import build

    rel, act, grad, gstats = [], [], [], []
    for bn in bns:
        c = copy.deepcopy(cfg)
        OmegaConf.update(c, "model.batchnorm", bool(bn))
        parts = build(c)  # seeds before the model init: the same conv weights with and without BN
        bs = int(cfg.batchnorm.batch_size or cfg.trainer.batch_size)
        batches = first_batches(parts.data, bs, int(cfg.batchnorm.batches), int(cfg.seed))
        rel += [{"bn": bool(bn), **r} for r in relative_loss(parts.model, parts.task, batches,
                                                             list(cfg.batchnorm.step_sizes))]
        act += [{"bn": bool(bn), **r} for r in activation_stats(parts.model, batches[0])]
        for i, b in enumerate(batches):
            name, values = middle_gradients(parts.model, parts.task, b)
            if i == 0:
                grad.append(pd.DataFrame({"bn": bool(bn), "layer": name, "grad": values}))
            gstats.append({"bn": bool(bn), "batch": i, "layer": name, **gradient_stats(values)})
    return pd.DataFrame(rel), pd.DataFrame(act), pd.concat(grad, ignore_index=True), pd.DataFrame(gstats)


def max_eta_per_batch(rel, bn: bool) -> dict[int, float | None]:
    """Per probed batch: the largest step size that still lowered the loss (None: none did)."""
    out = {}
    for b, g in rel[rel.bn == bn].groupby("batch"):
        falls = g[g.ratio < 1]
        out[int(b)] = float(falls.eta.max()) if len(falls) else None
    return out


def _finite(v) -> float | None:
    return float(v) if math.isfinite(float(v)) else None


def init_summary(rel, act, grad, gstats=None) -> dict:
    """Numbers the paper quotes: the largest eta that still lowers the loss, activation growth with depth,
    and how much larger / heavier-tailed the no-BN gradients are; and, under ``per_batch`` (lists in batch
    order, None where a batch has no value), the per-batch values the init claims are decided on."""
    out: dict = {}
    for bn, tag in ((True, "bn"), (False, "nobn")):
        r = rel[rel.bn == bn].groupby("eta").ratio.median()
        if len(r):
            out[f"{tag}_best_eta"] = float(r.idxmin())
            out[f"{tag}_max_eta_loss_falls"] = float(r[r < 1].index.max()) if (r < 1).any() else None
        a = act[act.bn == bn].sort_values("layer")
        if len(a):
            out[f"{tag}_act_std_first_last"] = [float(a["std"].iloc[0]), float(a["std"].iloc[-1])]
        g = grad[grad.bn == bn].grad
        if len(g):
            out[f"{tag}_grad_abs_mean"] = float(g.abs().mean())
            out[f"{tag}_grad_kurtosis"] = float(g.kurt())
    if out.get("bn_grad_abs_mean") and out.get("nobn_grad_abs_mean"):
        out["grad_ratio_nobn_over_bn"] = out["nobn_grad_abs_mean"] / out["bn_grad_abs_mean"]
    batches = sorted({int(b) for b in rel.batch}) if len(rel) else []
    per: dict = {"batch": batches}
    if len(rel):
        out["min_eta"] = float(rel.eta.min())
    for bn, tag in ((True, "bn"), (False, "nobn")):
        eta = max_eta_per_batch(rel, bn) if len(rel) else {}
        per[f"{tag}_max_eta"] = [eta.get(b) for b in batches] if eta else []  # []: this network not probed
        if gstats is not None and len(gstats):
            s = gstats[gstats.bn == bn].set_index("batch")
            for col in ("abs_mean", "kurtosis"):
                per[f"{tag}_grad_{col}"] = [_finite(s[col][b]) if b in s.index else None for b in batches]
    out["per_batch"] = per
    return out

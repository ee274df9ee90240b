"""Stacked models: S members of one architecture (same layers, their own weights) as one module whose
layers hold grouped parameters, a leading member axis on every weight, and run one batched kernel per
layer instead of S small ones: ``baddbmm`` for Linear, a grouped convolution (groups = S) for Conv1d/2d,
one ``batch_norm`` over S x C channels for BatchNorm (per-member, per-channel statistics), and the
pre-activation / CIFAR ResNet blocks built from those. Members never mix: every op is per member.

An activation travels in one of two layouts, converted only where the next layer needs the other:

- member-major ``"m"``: (S, B, *features), what batched matmuls and the input/output use;
- channel-grouped ``"g"``: (B, S*C, *spatial), what grouped convolutions, batch norm and pooling use.

``stack_model(members)`` builds the stacked module from S already initialised members (so every member
starts from exactly the weights its own run would have); ``write_back(members)`` copies the stacked
weights and buffers into them (for checkpoints).

Members of one MLP chain (Linear layers with ReLU, Tanh or nothing between them) may differ in their
hidden widths: each weight is then zero-padded to the widest member's shape (``pad_stack``), hidden widths
rounded up to a multiple of ALIGN (``_align_hidden``). The padding stays exactly zero through training: a
padded unit has zero weights and bias, so its activation is 0 (the three activations keep 0 at 0), the
next layer's padded weights see 0 and the gradient reaching the unit is 0, so every padded weight, bias,
momentum and Adam moment gets a zero gradient and a zero update, weight decay included. A member's own
slice is what its own run computes, up to the float rounding of sums over a longer (zero-padded) axis.

A layer with no stacked form (dropout, attention, an LSTM, ...) raises ``NotStackable`` with the reason,
and the caller trains those members one by one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlx.models.layers import Reshape

POINTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Identity)
POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
         nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


class NotStackable(Exception):
    """This model (or this group of members) has no stacked form; ``str(err)`` says why."""


def to_g(x: torch.Tensor, layout: str, S: int) -> torch.Tensor:
    if layout == "g":
        return x
    B = x.shape[1]
    return x.transpose(0, 1).reshape(B, S * x.shape[2], *x.shape[3:])


def to_m(x: torch.Tensor, layout: str, S: int) -> torch.Tensor:
    if layout == "m":
        return x
    B = x.shape[0]
    return x.view(B, S, x.shape[1] // S, *x.shape[2:]).transpose(0, 1)


def _identity(x):
    return x


def pad_stack(tensors: list[torch.Tensor], shape=None) -> torch.Tensor:
    """(S, *shape) from S tensors of one rank (``shape``: by default the widest of each dimension): each
    in the leading corner of its slice, zeros elsewhere."""
    shapes = {tuple(t.shape) for t in tensors}
    widest = tuple(shape or (max(d) for d in zip(*shapes, strict=True)))
    if shapes == {widest}:
        return torch.stack([x.detach() for x in tensors]).contiguous()
    out = tensors[0].new_zeros((len(tensors), *widest))
    for i, t in enumerate(tensors):
        out[i][own(t.shape)] = t.detach()
    return out


def own(shape) -> tuple[slice, ...]:
    """The index of a member's own tensor (of ``shape``) within its zero-padded slice."""
    return tuple(slice(0, int(d)) for d in shape)


def _stack(tensors: list[torch.Tensor], param: bool = True):
    t = pad_stack(tensors)
    return nn.Parameter(t, requires_grad=tensors[0].requires_grad) if param else t


class Op(nn.Module):
    """One stacked layer: ``run(x, layout, S) -> (x, layout)``. ``names`` maps each stacked tensor to the
    member's own name for it (relative to the member module it replaces)."""

    names: dict[str, str] = {}

    def run(self, x, layout: str, S: int):
        raise NotImplementedError


class Pointwise(Op):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.module = fn
        self.fn = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Identity: _identity}.get(type(fn), fn)

    def run(self, x, layout, S):
        return self.fn(x), layout


class Pool(Op):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def run(self, x, layout, S):
        return self.fn(to_g(x, layout, S)), "g"


class Flatten(Op):
    def run(self, x, layout, S):
        return to_m(x, layout, S).flatten(2), "m"


class ReshapeOp(Op):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def run(self, x, layout, S):
        x = to_m(x, layout, S)
        return x.reshape(S, x.shape[1], *self.shape), "m"


class Linear(Op):
    def __init__(self, members: list[nn.Linear]):
        super().__init__()
        self.weight = _stack([m.weight for m in members])  # (S, out, in)
        self.bias = _stack([m.bias for m in members]) if members[0].bias is not None else None
        self.names = {"weight": "weight", **({"bias": "bias"} if self.bias is not None else {})}

    def run(self, x, layout, S):
        x = to_m(x, layout, S)
        lead = x.shape[1:-1]
        x3 = x.reshape(S, -1, x.shape[-1])
        w = self.weight.transpose(1, 2)
        out = torch.bmm(x3, w) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), x3, w)
        return out.view(S, *lead, out.shape[-1]), "m"


class Conv(Op):
    def __init__(self, members: list[nn.Module]):
        super().__init__()
        c = members[0]
        if c.padding_mode != "zeros" or isinstance(c.padding, str) and c.padding != "valid":
            raise NotStackable(f"{type(c).__name__} with padding {c.padding!r}/{c.padding_mode} has no "
                               "stacked form")
        self.fn = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d}[type(c)]
        self.stride, self.padding, self.dilation, self.groups = c.stride, c.padding, c.dilation, c.groups
        self.weight = _stack([m.weight for m in members])  # (S, Cout, Cin/g, *k)
        self.bias = _stack([m.bias for m in members]) if c.bias is not None else None
        self.names = {"weight": "weight", **({"bias": "bias"} if self.bias is not None else {})}

    def run(self, x, layout, S):
        x = to_g(x, layout, S)
        w = self.weight.reshape(-1, *self.weight.shape[2:])
        b = None if self.bias is None else self.bias.reshape(-1)
        padding = 0 if self.padding == "valid" else self.padding
        return self.fn(x, w, b, self.stride, padding, self.dilation, self.groups * S), "g"


class BatchNorm(Op):
    def __init__(self, members: list[nn.Module]):
        super().__init__()
        bn = members[0]
        if not bn.track_running_stats or bn.momentum is None:
            raise NotStackable("BatchNorm without running statistics or with a cumulative average has no "
                               "stacked form")
        self.eps, self.momentum = bn.eps, bn.momentum
        self.weight = _stack([m.weight for m in members]) if bn.affine else None
        self.bias = _stack([m.bias for m in members]) if bn.affine else None
        self.register_buffer("running_mean", _stack([m.running_mean for m in members], param=False))
        self.register_buffer("running_var", _stack([m.running_var for m in members], param=False))
        self.register_buffer("num_batches_tracked",
                             _stack([m.num_batches_tracked for m in members], param=False))
        self.names = {"running_mean": "running_mean", "running_var": "running_var",
                      "num_batches_tracked": "num_batches_tracked",
                      **({"weight": "weight", "bias": "bias"} if bn.affine else {})}

    def run(self, x, layout, S):
        x = to_g(x, layout, S)
        if self.training:
            self.num_batches_tracked.add_(1)
        w = None if self.weight is None else self.weight.reshape(-1)
        b = None if self.bias is None else self.bias.reshape(-1)
        # views of the (S, C) buffers: batch_norm updates the running statistics in place through them
        out = F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1), w, b, self.training,
                           self.momentum, self.eps)
        return out, "g"


class Seq(Op):
    def __init__(self, ops: list[tuple[str, Op]]):
        super().__init__()
        self.ops = nn.ModuleDict(ops)

    def run(self, x, layout, S):
        for op in self.ops.values():
            x, layout = op.run(x, layout, S)
        return x, layout


class PreAct(Op):
    """dlx.models.resnet.PreActBlock, stacked."""

    def __init__(self, members):
        super().__init__()
        b = members[0]
        self.bn1 = convert([m.bn1 for m in members])
        self.conv1 = convert([m.conv1 for m in members])
        self.bn2 = convert([m.bn2 for m in members])
        self.conv2 = convert([m.conv2 for m in members])
        self.shortcut = convert([m.shortcut for m in members]) if b.shortcut is not None else None

    def run(self, x, layout, S):
        x = to_g(x, layout, S)
        out = F.relu(self.bn1.run(x, "g", S)[0])
        short = self.shortcut.run(out, "g", S)[0] if self.shortcut is not None else x
        out = self.conv1.run(out, "g", S)[0]
        out = self.conv2.run(F.relu(self.bn2.run(out, "g", S)[0]), "g", S)[0]
        return out + short, "g"


class Basic(Op):
    """dlx.models.resnet_cifar.BasicBlock (parameter-free shortcut, padded per member), stacked."""

    def __init__(self, members):
        super().__init__()
        b = members[0]
        self.conv1 = convert([m.conv1 for m in members])
        self.bn1 = convert([m.bn1 for m in members])
        self.conv2 = convert([m.conv2 for m in members])
        self.bn2 = convert([m.bn2 for m in members])
        self.stride, self.pad = b.stride, b.pad

    def shortcut(self, x, S):
        if self.stride > 1:
            x = x[(slice(None), slice(None), *[slice(None, None, self.stride)] * (x.dim() - 2))]
        if self.pad:
            B, C = x.shape[0], x.shape[1] // S
            x = F.pad(x.reshape(B, S, C, *x.shape[2:]), [0, 0] * (x.dim() - 2) + [0, self.pad])
            x = x.reshape(B, S * (C + self.pad), *x.shape[3:])
        return x

    def run(self, x, layout, S):
        x = to_g(x, layout, S)
        out = F.relu(self.bn1.run(self.conv1.run(x, "g", S)[0], "g", S)[0])
        out = self.bn2.run(self.conv2.run(out, "g", S)[0], "g", S)[0]
        return F.relu(out + self.shortcut(x, S)), "g"


def _blocks() -> dict:
    from dlx.models.resnet import PreActBlock
    from dlx.models.resnet_cifar import BasicBlock

    return {PreActBlock: PreAct, BasicBlock: Basic}


def convert(members: list[nn.Module]) -> Op:
    """The stacked form of S same-type modules (raises NotStackable)."""
    m = members[0]
    kind = type(m)
    if any(type(o) is not kind for o in members):
        raise NotStackable("the members' layers differ")
    if kind is nn.Sequential:
        if any(len(o) != len(m) for o in members):
            raise NotStackable("the members' layer counts differ")
        return Seq([(name, convert([o[i] for o in members])) for i, (name, _) in
                    enumerate(m.named_children())])
    if kind is nn.Linear:
        return Linear(members)
    if kind in (nn.Conv1d, nn.Conv2d):
        return Conv(members)
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        return BatchNorm(members)
    if kind is nn.Flatten:
        if (m.start_dim, m.end_dim) != (1, -1):
            raise NotStackable("Flatten over other dimensions than 1..-1 has no stacked form")
        return Flatten()
    if kind is Reshape:
        return ReshapeOp(m.shape)
    if kind is nn.Dropout:
        if m.p == 0:
            return Pointwise(nn.Identity())
        raise NotStackable("dropout draws from the global random stream, which members cannot share "
                           "(set model.dropout=0 to stack)")
    if isinstance(m, POINTWISE):
        return Pointwise(m)
    if isinstance(m, POOLS):
        return Pool(m)
    block = _blocks().get(kind)
    if block is not None:
        return block(members)
    raise NotStackable(f"{kind.__name__} layers have no stacked form")


class StackedModel(nn.Module):
    """S members as one module: ``forward(x)`` takes (S, B, *input) and returns (S, B, *output)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise NotStackable("no members")
        shapes = [[tuple(t.shape) for t in [*o.parameters(), *o.buffers()]] for o in members]
        ragged = any(s != shapes[0] for s in shapes)
        if ragged:
            why = ragged_reason(members)
            if why:
                raise NotStackable(f"the members' parameter shapes differ and {why}")
        self.size = len(members)
        self.body = convert(members)
        if ragged:
            _align_hidden(self.body)
        # (stacked tensor's owner module, its attribute, the member's name for it), in the member's order
        self.links = _links(self.body, members[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = x.shape[0]
        out, layout = self.body.run(x, "m", S)
        return to_m(out, layout, S)

    def stacked_parameters(self) -> list[nn.Parameter]:
        """The stacked parameters in the order of a member's ``parameters()`` (what its optimizer holds)."""
        return [getattr(owner, attr) for owner, attr, name, is_param in self.links if is_param]

    @torch.no_grad()
    def write_back(self, members: list[nn.Module]) -> None:
        """Copy member i's slice of every stacked parameter and buffer into ``members[i]``."""
        for i, member in enumerate(members):
            mine = {**dict(member.named_parameters()), **dict(member.named_buffers())}
            for owner, attr, name, _ in self.links:
                mine[name].copy_(getattr(owner, attr)[i][own(mine[name].shape)])

    @torch.no_grad()
    def keep(self, index: list[int]) -> None:
        """Drop every member not in ``index`` (a diverged member leaves the stack)."""
        idx = torch.tensor(index, device=self.stacked_parameters()[0].device if self.links else "cpu")
        for owner, attr, _, is_param in self.links:
            t = getattr(owner, attr)
            if is_param:
                t.data = t.data.index_select(0, idx)
                t.grad = None
            else:
                owner._buffers[attr] = t.index_select(0, idx)
        self.size = len(index)


def _links(op: Op, member: nn.Module, prefix: str = "") -> list[tuple]:
    """Match every stacked tensor to the member's parameter or buffer name, in the member's own order."""
    found = {}

    def walk(o: Op, path: str):
        for attr, name in o.names.items():
            t = getattr(o, attr)
            if t is not None:
                found[f"{path}{name}"] = (o, attr, isinstance(t, nn.Parameter))
        if isinstance(o, Seq):
            for name, child in o.ops.items():
                walk(child, f"{path}{name}.")
        elif isinstance(o, (PreAct, Basic)):
            for name in ("bn1", "conv1", "bn2", "conv2", "shortcut"):
                child = getattr(o, name, None)
                if isinstance(child, Op):
                    walk(child, f"{path}{name}.")

    walk(op, prefix)
    order = [n for n, _ in member.named_parameters()] + [n for n, _ in member.named_buffers()]
    missing = [n for n in order if n not in found]
    if missing:
        raise NotStackable(f"no stacked form for the member's tensor '{missing[0]}'")
    return [(found[n][0], found[n][1], n, found[n][2]) for n in order]


CHAIN_ACTS = (nn.ReLU, nn.Tanh, nn.Identity)  # activations that keep 0 at 0: zero padding stays exact


def ragged_reason(members: list[nn.Module]) -> str | None:
    """Why members of different shapes cannot be zero-padded into one stack (None: they can). Only an MLP
    chain pads exactly: Flatten, then Linear layers with ReLU, Tanh or nothing between them, the same
    input and output sizes, and no other parameter or buffer."""
    for m in members:
        if not isinstance(m, nn.Sequential):
            return "only MLP chains (nn.Sequential of Linear layers) pad to a common width"
        body = [x for x in m if not (isinstance(x, nn.Dropout) and x.p == 0)]
        while body and isinstance(body[0], (nn.Flatten, Reshape)):
            body = body[1:]
        if not body or any(not isinstance(x, (nn.Linear, *CHAIN_ACTS)) for x in body):
            return "only MLP chains (Linear layers with ReLU, Tanh or nothing between) pad to a common width"
        if len(list(m.buffers())):
            return "a member has buffers"
    lin = [[x for x in m if isinstance(x, nn.Linear)] for m in members]
    kinds = [[type(x).__name__ for x in m] for m in members]
    if any(k != kinds[0] for k in kinds) or any(len(ls) != len(lin[0]) for ls in lin):
        return "the members' layers differ"
    if len({(ls[0].in_features, ls[-1].out_features) for ls in lin}) != 1:
        return "the members' input or output sizes differ"
    if len({tuple(x.bias is None for x in ls) for ls in lin}) != 1:
        return "the members' biases differ"
    return None


ALIGN = 8  # padded hidden widths round up to a multiple of this: batched matmuls run faster (23 -> 24: 1.5x)


@torch.no_grad()
def _align_hidden(body: Op) -> None:
    """Zero-pad the hidden widths of a padded MLP chain further, to multiples of ALIGN (the input and
    output sizes stay)."""
    lins = [op for op in body.ops.values() if isinstance(op, Linear)]
    for k, lin in enumerate(lins):
        S, out, inp = lin.weight.shape
        out_to = out if k == len(lins) - 1 else -(-out // ALIGN) * ALIGN
        in_to = inp if k == 0 else lins[k - 1].weight.shape[1]
        if (out_to, in_to) == (out, inp):
            continue
        w = lin.weight.new_zeros((S, out_to, in_to))
        w[:, :out, :inp] = lin.weight
        lin.weight = nn.Parameter(w, requires_grad=lin.weight.requires_grad)
        if lin.bias is not None:
            b = lin.bias.new_zeros((S, out_to))
            b[:, :out] = lin.bias
            lin.bias = nn.Parameter(b, requires_grad=lin.bias.requires_grad)


def stack_model(members: list[nn.Module]) -> StackedModel:
    return StackedModel(members)


class LinearChain:
    """A stacked MLP (Flatten/Reshape, then Linear layers with ReLU, Tanh or nothing between them) under
    cross-entropy, with its backward written out: the batched matmuls of the forward, log-softmax, and
    five batched ops per layer back, where autograd's engine would spend more time than the arithmetic on
    such small layers. ``step(x, y)`` returns the (S,) mean losses and leaves each stacked parameter's
    gradient in ``.grad`` (what autograd would have put there, to float rounding)."""

    ACTS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: None}

    def __init__(self, model: StackedModel, smoothing: float = 0.0):
        ops = list(model.body.ops.values()) if isinstance(model.body, Seq) else []
        while ops and isinstance(ops[0], (Flatten, ReshapeOp)):
            ops = ops[1:]
        self.layers: list[tuple[Linear, str | None]] = []
        for op in ops:
            if isinstance(op, Linear):
                self.layers.append((op, None))
            elif isinstance(op, Pointwise) and type(op.module) in self.ACTS and self.layers and \
                    self.layers[-1][1] is None:
                self.layers[-1] = (self.layers[-1][0], self.ACTS[type(op.module)])
            else:
                raise NotStackable(f"{type(op).__name__} in a linear chain")
        if not self.layers or self.layers[-1][1] is not None:
            raise NotStackable("a linear chain ends in a Linear layer")
        self.smoothing = float(smoothing)
        self._cache: dict = {}

    @classmethod
    def fits(cls, model: StackedModel) -> bool:
        try:
            cls(model)
        except NotStackable:
            return False
        return True

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        S, B = y.shape[0], y.shape[1]
        h = x.reshape(S, B, -1)
        inputs, outs = [], []
        for lin, act in self.layers:
            inputs.append(h)
            w = lin.weight.transpose(1, 2)
            z = torch.bmm(h, w) if lin.bias is None else torch.baddbmm(lin.bias.unsqueeze(1), h, w)
            h = z.relu_() if act == "relu" else z.tanh_() if act == "tanh" else z
            outs.append(h)
        # cross-entropy by hand (log_softmax's CPU kernel is slow on 10 classes): lse - logit[y]
        top = h.amax(-1, keepdim=True)
        e = (h - top).exp_()
        total = e.sum(-1, keepdim=True)
        lse = total.log().add_(top)
        target = y.unsqueeze(2)
        eps = self.smoothing
        picked = h.gather(2, target)
        if eps:
            picked = picked.mul(1 - eps).add_(h.mean(-1, keepdim=True), alpha=eps)
        losses = lse.sub_(picked).squeeze(2).mean(1)
        g = e.div_(total.mul_(B))  # d(mean loss)/d(logits) = (softmax - smoothed one-hot) / B
        g.scatter_add_(2, target, self._hit(S, B, eps, g))
        if eps:
            g.sub_(eps / (B * g.shape[-1]))
        for k in range(len(self.layers) - 1, -1, -1):
            lin, _ = self.layers[k]
            lin.weight.grad = torch.bmm(g.transpose(1, 2), inputs[k])
            if lin.bias is not None:
                lin.bias.grad = g.sum(1)
            if k:
                g = torch.bmm(g, lin.weight)
                act, out = self.layers[k - 1][1], outs[k - 1]
                if act == "relu":
                    g = torch.ops.aten.threshold_backward(g, out, 0.0)
                elif act == "tanh":
                    g = torch.ops.aten.tanh_backward(g, out)
        return losses

    def _hit(self, S: int, B: int, eps: float, like: torch.Tensor) -> torch.Tensor:
        """-(1 - eps) / B at each example's target (cached per batch shape)."""
        key = (S, B, like.device)
        if self._cache.get("key") != key:
            self._cache = {"key": key, "hit": torch.full((S, B, 1), -(1 - eps) / B, dtype=like.dtype,
                                                          device=like.device)}
        return self._cache["hit"]

"""Planning stacked sweep children (``sweep.stack=auto|true|false``): the train children of a sweep that
share an architecture and shapes and differ only in per-member settings (seed, label noise, training subset,
learning rate, momentum, weight decay, betas) are trained as one stacked model (dlx/train/stacked.py),
one process per stack. Every member still gets its own complete run directory, lease, resume and status.

Grouping (``plan``, in the sweep's process, before anything runs): children whose overrides agree on
every key but ``MEMBER_KEYS`` form a group; a group stacks when its config can (a model family with a
stacked form, no dropout, fp32, no DDP, a task and optimizer the stack runs: ``config_reason``), up to
``sweep.stack_max`` members, split further while the pool would otherwise have idle workers.

Groups of an MLP chain that differ only in ``PAD_KEYS`` (the width) may share one stack, zero-padded to
its widest member (dlx/models/stacked.py): from the narrowest up, a width joins the stack while a modelled
step of the padded stack (``step_seconds``: a fixed cost, a cost per member, the padded FLOPs) is cheaper
than the two apart, so the many tiny widths of a double-descent sweep pay one step's overhead, not one
each, and the wide ones keep their own stacks. Such stacks run costliest first, so the pool ends evenly.

With ``auto`` a group whose members are too large to gain (forward FLOPs per training batch above
``CPU_MAX_FLOPS`` on a CPU, ``GPU_MAX_FLOPS`` on an accelerator, counted on its first member at planning)
is not stacked: its children stay units of one, so the pool balances them.

Running a stack is dlx/sweep/stack.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlx.errors import DlxError

# overrides that may differ between the members of one stack: per-member data, init and optimizer
MEMBER_KEYS = ("seed", "data.label_noise", "data.noise_seed", "data.subset_seed", "optimizer.lr",
               "optimizer.momentum", "optimizer.weight_decay", "optimizer.betas", "optimizer.eps")
# overrides that change a group's shapes but not whether it can stack (no compose needed per value)
SHAPE_KEYS = ("model.width", "model.depth", "model.hidden", "model.kernel", "model.batchnorm", "data.n_train",
              "trainer.batch_size", "trainer.epochs", "trainer.steps", "trainer.eval_points",
              "trainer.eval_every")
OPTIMIZERS = ("sgd", "adam", "adamw")
SETTINGS = ("auto", "true", "false")
# overrides in which members of one MLP chain may differ and still stack, zero-padded to the widest
PAD_KEYS = ("model.width",)
CPU_MAX_FLOPS = 60e6  # forward FLOPs per member and training batch above which a CPU stack gains little
GPU_MAX_FLOPS = 20e9  # ... and above which one member alone keeps an accelerator busy
# a stack's step: (fixed seconds, seconds per member, seconds per forward FLOP of a member). CPU: a least-
# squares fit to fit_stack's steps at 1 thread on MNIST-1D MLPs (S 3-24, widths 4-256, batch 100; within
# 15%). Accelerator: launch-bound, a rough guess; it only decides which widths share a padded stack.
STEP_COST = {"cpu": (2.2e-4, 2.1e-5, 4.5e-11), "accelerator": (3e-4, 0.0, 1e-13)}


def setting(value) -> str:
    """sweep.stack as one of auto, true, false (YAML may give a bool; null is false)."""
    if value is None or isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value).lower()
    if text not in SETTINGS:
        raise DlxError(f"sweep.stack must be auto, true or false, got {value!r}")
    return text


_ALONE = object()  # the group key of a child that is never stacked (another kind than train)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def config_reason(cfg) -> str | None:
    """Why a child with this composed config cannot stack (None: it can, as far as the config tells)."""
    from dlx.models import stackable
    from dlx.models.registry import STACKABLE

    model, prec = cfg.get("model", {}), cfg.get("precision", {})
    if model.get("_target_") is not None:  # the user's own module, whatever its name: no stacked form
        return f"model '{model.get('name')}' is the user's ({model.get('_target_')}): it has no stacked form"
    if not stackable(model):  # what the model's registration declares
        return f"model '{model.get('name')}' has no stacked form (stacked: {', '.join(sorted(STACKABLE))})"
    if float(model.get("dropout", 0) or 0) > 0:
        return "dropout draws from the global random stream (set model.dropout=0 to stack)"
    if prec.get("name") != "fp32":
        return f"precision '{prec.get('name')}' (only fp32 stacks)"
    trainer = cfg.get("trainer", {})
    if str(trainer.get("strategy", "none") or "none") not in ("none", "single"):
        return "DDP runs one model over several processes"
    from dlx.train.stacked import TASKS

    if cfg.get("task", {}).get("name") not in TASKS:
        return f"task '{cfg.get('task', {}).get('name')}' is not stacked"
    if cfg.get("optimizer", {}).get("name") not in OPTIMIZERS:
        return f"optimizer '{cfg.get('optimizer', {}).get('name')}' is not stacked"
    return None


def plan(children, config: str, base: list[str], stack="auto", workers: int = 1, stack_max=None,
         say=None) -> list[list]:
    """The units of work: lists of children, one child (trained alone) or several (one stack)."""
    stack = setting(stack)
    if stack == "false":
        return [[c] for c in children]
    groups: dict[tuple, list] = {}
    for c in children:
        if c.kind != "train":
            groups[(_ALONE, c.run_id)] = [c]
            continue
        key = tuple(o for o in c.overrides if _key(o) not in MEMBER_KEYS)
        groups.setdefault(key, []).append(c)
    verdicts: dict[tuple, str | None] = {}
    units: list = []
    limit = max(1, int(stack_max)) if stack_max else None
    padded: dict[tuple, list] = {}  # stacking groups that differ only in an MLP's width, by the rest
    for key, members in groups.items():
        if key[:1] == (_ALONE,):
            units += [[c] for c in members]
            continue
        vkey = tuple(_key(o) if _key(o) in SHAPE_KEYS else o for o in key)
        if vkey not in verdicts:
            verdicts[vkey] = _verdict(config, [*base, *members[0].overrides])
        why = verdicts[vkey]
        shape = None
        if why is None:  # decided here, per shape: a stack that does not pay would train its members in
            shape = _shape(config, [*base, *members[0].overrides])  # one worker, not spread over the pool
            why = shape if isinstance(shape, str) else None
            if why is None and stack == "auto" and not shape.pays:
                why = f"{shape.flops / 1e6:.0f} MFLOP per member batch: large enough to run alone"
        if why is not None or (len(members) < 2 and not (shape and shape.chain)):
            if why and say and stack == "true":
                say(f"not stacked ({' '.join(key) or 'every child'}): {why}")
            units += [[c] for c in members]
            continue
        if shape.chain:  # may share a stack with the other widths of the same MLP, zero-padded
            rest = tuple(o for o in key if _key(o) not in PAD_KEYS)
            if rest not in padded:
                padded[rest] = []
                units.append(padded[rest])  # its place in the order: where its first group was
            padded[rest].append((shape, members))
            continue
        size = limit or len(members)
        units += [members[i:i + size] for i in range(0, len(members), size)]
    out: list[list] = []
    for u in units:  # each family of width groups becomes its stacks (see buckets)
        for b in buckets(u, limit) if u and isinstance(u[0], tuple) else [u]:
            size = limit or len(b)
            out += [b[i:i + size] for i in range(0, len(b), size)]
    units = out
    while len(units) < workers:  # keep every worker busy: halve the largest stack while halves still stack
        big = max(range(len(units)), key=lambda i: len(units[i]))
        if len(units[big]) < 4:
            break
        u = units.pop(big)
        units[big:big] = [u[: len(u) // 2], u[len(u) // 2:]]
    return units


def _verdict(config: str, overrides: list[str]) -> str | None:
    from dlx.config import compose

    try:
        return config_reason(compose(config, overrides))
    except DlxError as err:  # the child itself will fail with this, alone
        return str(err)


@dataclass
class Shape:
    """What planning learns of a group from building its first member: forward FLOPs of one member's
    training batch, whether a stack of such members pays under ``auto`` (``small_enough``), whether the
    model is an MLP chain that zero-pads to other widths, and the device it will train on."""

    flops: float
    pays: bool
    chain: bool
    device: str


def _shape(config: str, overrides: list[str]) -> Shape | str:
    """The group's Shape, or the error its children will fail with (they then run alone)."""
    from dlx.build import build
    from dlx.config import compose
    from dlx.device import resolve_device
    from dlx.models.stacked import ragged_reason

    try:
        cfg = compose(config, overrides)
        device = resolve_device(cfg.get("device", "auto"))
        on_cpu = cfg.copy()  # counting FLOPs needs no accelerator (a copy, not a second composition)
        on_cpu.device = "cpu"
        if on_cpu.get("data") is not None and on_cpu.data.get("n_train") is not None:
            on_cpu.data.n_train = None  # nor a subset's own draw: a batch of the whole data has its FLOPs
        parts = build(on_cpu)
    except DlxError as err:
        return str(err)
    ok, flops = small_enough(parts, cfg, device)
    chain = ragged_reason([parts.model]) is None and any(_key(o) in PAD_KEYS for o in overrides)
    return Shape(flops, ok, chain, str(device))


def step_seconds(size: int, flops: float, device: str) -> float:
    """The modelled seconds of one training step of a stack of ``size`` members whose (padded) forward
    pass costs ``flops`` each: a fixed cost per step, a cost per member, and the arithmetic."""
    fixed, member, per_flop = STEP_COST["cpu" if device == "cpu" else "accelerator"]
    return fixed + size * (member + flops * per_flop)


def buckets(groups: list[tuple[Shape, list]], limit: int | None = None) -> list[list]:
    """Stacks of MLP width groups, zero-padded to their widest: from the narrowest up, the next width
    joins the current stack while one padded stack models cheaper than the two apart (``step_seconds``)
    and it stays within ``limit`` members. The costliest stack first (so a pool finishes evenly), the
    widest members first within one."""
    out: list[tuple[Shape, int, list]] = []  # (widest shape, members, its groups)
    for shape, members in sorted(groups, key=lambda g: g[0].flops):
        if out:
            widest, n, parts = out[-1]
            dev = shape.device
            apart = step_seconds(n, widest.flops, dev) + step_seconds(len(members), shape.flops, dev)
            if (limit is None or n + len(members) <= limit) and \
                    step_seconds(n + len(members), shape.flops, dev) <= apart:
                out[-1] = (shape, n + len(members), [*parts, members])
                continue
        out.append((shape, len(members), [members]))
    out.sort(key=lambda b: step_seconds(b[1], b[0].flops, b[0].device), reverse=True)
    return [[c for members in reversed(parts) for c in members] for _, _, parts in out]


def small_enough(parts, cfg, device=None) -> tuple[bool, float]:
    """(does stacking pay?, forward FLOPs of one member's training batch on ``device``, by default the
    one the parts live on): small models gain."""
    from dlx import threads as thread_rule
    from dlx.build import first_batch

    flops = thread_rule.forward_flops(parts.model, first_batch(parts.data, int(cfg.trainer.batch_size)))
    on_cpu = str(device or parts.device) == "cpu"
    return flops <= (CPU_MAX_FLOPS if on_cpu else GPU_MAX_FLOPS), flops

"""Stacked sweep children (``sweep.stack=auto|true|false``): the train children of a sweep that share an
architecture and shapes and differ only in per-member settings (seed, label noise, training subset,
learning rate, momentum, weight decay, betas) are trained as one stacked model (dlx/train/stacked.py),
one process per stack. Every member still gets its own complete run directory, claim, resume and status.

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

A stack (``run_stack``, in a worker) claims and builds each member exactly as ``run_child`` and
`dlx train` would, then trains them together; a member that turns out not to stack (other shapes,
another resume point) trains alone, in the same worker, through the ordinary ``fit``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from dlx.errors import DlxError
from dlx.runs import status as run_status

# overrides that may differ between the members of one stack: per-member data, init and optimizer
MEMBER_KEYS = ("seed", "data.label_noise", "data.noise_seed", "data.subset_seed", "optimizer.lr",
               "optimizer.momentum", "optimizer.weight_decay", "optimizer.betas", "optimizer.eps")
# overrides that change a group's shapes but not whether it can stack (no compose needed per value)
SHAPE_KEYS = ("model.width", "model.depth", "model.hidden", "model.kernel", "model.batchnorm", "data.n_train",
              "trainer.batch_size", "trainer.epochs", "trainer.steps", "trainer.eval_points",
              "trainer.eval_every")
MODELS = ("mlp", "cnn5", "cnn1d", "cnnfc", "resnet18k", "resnet")
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
    model, prec = cfg.get("model", {}), cfg.get("precision", {})
    if model.get("_target_") is not None:  # the user's own module, whatever its name: no stacked form
        return f"model '{model.get('name')}' is the user's ({model.get('_target_')}): it has no stacked form"
    if model.get("name") not in MODELS:
        return f"model '{model.get('name')}' has no stacked form (stacked: {', '.join(MODELS)})"
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


def read_setting(sweep_dir: Path):
    """(sweep.stack, sweep.stack_max) from the sweep's saved config (off when it has none)."""
    import yaml

    try:
        cfg = yaml.safe_load((Path(sweep_dir) / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return "false", None
    sweep = cfg.get("sweep") or {}
    return setting(sweep.get("stack", "false")), sweep.get("stack_max")


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
        parts = build(compose(config, [*overrides, "device=cpu"]))  # counting FLOPs needs no accelerator
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


# ------------------------------------------------------------------------------------------------ a stack

class _Entry:
    """One member being run: its Run, config, built parts and (once set up) its stack Member."""

    def __init__(self, run, cfg, overrides, parts=None):
        self.run, self.cfg, self.overrides, self.parts = run, cfg, overrides, parts
        self.member = None
        self.resume_from = None
        self.setup_s = 0.0
        self.rng = None  # the global RNG state right after the build: what this member's own run carries


def run_stack(config: str, members: list[tuple], threads: int | None = None, stack="auto") -> dict[str, str]:
    """Run one unit of stacked children here: ``members`` are (overrides, run_dir, kind) as run_child takes
    them. Returns {run_dir: status}; failures are recorded in each member's summary.json, not raised."""
    from dlx import threads as thread_rule

    if threads:
        os.environ[thread_rule.CAP_ENV] = str(threads)
        thread_rule.apply(threads)
    statuses: dict[str, str] = {}
    entries: list[_Entry] = []
    try:
        for overrides, run_dir, _kind in members:
            like = entries[0] if entries else None
            entry = _open(config, list(overrides), Path(run_dir), statuses, like)
            if entry is not None:
                entries.append(entry)
        if entries:
            _train(entries, setting(stack))
    except KeyboardInterrupt:
        for e in entries:
            if not e.run.closed:
                e.run.summary("interrupted")
                e.run.close()
        raise
    for e in entries:
        statuses[str(e.run.dir)] = run_status(e.run.dir) or "failed"
    return statuses


def _open(config: str, overrides: list[str], d: Path, statuses: dict, like: _Entry | None = None
          ) -> _Entry | None:
    """Claim, compose and build one member as run_child and `dlx train` do (None if claimed or failed).
    ``like``: a member opened before, whose input tensors this one shares where they are equal."""
    import torch

    from dlx.build import build
    from dlx.config import compose
    from dlx.experiments.train.experiment import save_label_noise
    from dlx.locks import Claimed
    from dlx.runs import Run
    from dlx.sweep.execute import DONE
    from dlx.train import distributed
    from dlx.train.loop import check_settings

    run = Run(d, "train", extra={"config": config})
    try:  # the lease first, then the status: a member another invocation finished is never trained again
        run.open()
    except Claimed:
        statuses[str(d)] = "claimed"
        return None
    if run_status(d) in DONE:
        statuses[str(d)] = run_status(d)
        run.claim.release()
        return None
    if (d / "checkpoint.pt").is_file():  # a member that died: continue, do not start over
        overrides = [*overrides, "trainer.resume=true"]
    run.summary("running")
    try:
        cfg = compose(config, overrides)
        run.config = (cfg, overrides)
        run.save_config(cfg, overrides)
        run.start_tracking()
        parts = build(cfg)
        rng = torch.get_rng_state()  # after the model's initialisation: what this member's run carries
        if like is not None:
            _share_inputs(parts.data, like.parts.data)
        check_settings(cfg.trainer, cfg.optimizer, len(parts.data.train))
        run.device = parts.device
        run.env["threads_rule"] = parts.threads
        entry = _Entry(run, cfg, overrides, parts)
        entry.rng = rng
        if cfg.trainer.get("resume"):
            entry.resume_from = run.dir / "checkpoint.pt"
            if not entry.resume_from.is_file():
                raise DlxError(f"trainer.resume=true but there is no checkpoint at {entry.resume_from}")
        run.summary("running", params=parts.params, precision=parts.precision.note, model=cfg.model.name,
                    data=cfg.data.name, n_train=len(parts.data.train), world_size=distributed.world(),
                    **parts.task.describe())
        save_label_noise(run, parts.data)
        entry.setup_s = round(time.time() - run.t0, 3)
        return entry
    except KeyboardInterrupt:
        run.summary("interrupted")
        run.close()
        raise
    except Exception as err:
        run.fail(err)
        run.close()
        statuses[str(d)] = "failed"
        return None


def _share_inputs(data, like) -> None:
    """Point this member's input tensors at an earlier member's where they are equal (only the labels
    differ between seeds of one dataset), so a stack holds one copy of the inputs, not S."""
    import torch

    for name in ("train", "val", "test"):
        a, b = getattr(data, name, None), getattr(like, name, None)
        fa, fb = getattr(a, "fields", None), getattr(b, "fields", None)
        if not (isinstance(fa, tuple) and isinstance(fb, tuple) and len(fa) == len(fb) == 2):
            continue
        if fa[0] is not fb[0] and fa[0].shape == fb[0].shape and fa[0].dtype == fb[0].dtype and \
                torch.equal(fa[0], fb[0]):
            a.fields = (fb[0], fa[1])


def pays(entries: list[_Entry], stack: str) -> tuple[bool, float]:
    """(stack them?, forward FLOPs per member and training batch, of the widest) for ``sweep.stack=auto``."""
    widest = max(entries, key=lambda e: e.parts.params)
    ok, flops = small_enough(widest.parts, widest.cfg)
    return ok or stack == "true", flops


def share_setup(entries) -> None:
    """The first member's setup pays the stack's one-time costs (imports, loading the data the others then
    share): that excess over the others' typical setup is shared equally, so no member's wall_s absorbs
    the stack's start-up. The sum of the members' setup_s is unchanged."""
    if len(entries) < 2:
        return
    rest = sorted(e.setup_s for e in entries[1:])
    excess = max(0.0, entries[0].setup_s - rest[len(rest) // 2])
    entries[0].setup_s -= excess
    for e in entries:
        e.setup_s = round(e.setup_s + excess / len(entries), 3)


def _train(entries: list[_Entry], stack: str) -> None:
    """Stack what stacks (by resume point), train the rest alone; finish every member."""
    import torch

    from dlx.models.stacked import NotStackable, stack_model
    from dlx.train.stacked import member_state, position

    if len(entries) > 1:
        try:
            stack_model([e.parts.model for e in entries[:1]])
            ok, flops = pays(entries, stack)
            why = "" if ok else f"{flops / 1e6:.0f} MFLOP per member batch: large enough to run alone"
        except NotStackable as err:
            ok, flops, why = False, 0.0, str(err)
    else:
        ok, flops, why = False, 0.0, "a stack of one"
    if not ok:
        for e in entries:
            _alone(e, why)
        return
    share_setup(entries)
    ready = []
    for e in entries:
        try:
            p = e.parts
            torch.set_rng_state(e.rng)
            e.member = member_state(p.model, p.task, p.data, p.precision, e.cfg.trainer, e.cfg.optimizer,
                                    int(e.cfg.seed), e.resume_from)
            ready.append(e)
        except KeyboardInterrupt:
            raise
        except Exception as err:
            e.run.fail(err)
            e.run.close()
    by_position: dict[tuple, list[_Entry]] = {}
    for e in ready:
        by_position.setdefault(position(e.member), []).append(e)
    for group in by_position.values():
        if len(group) == 1:
            _alone(group[0], "the only member at its resume point")
        else:
            _stacked(group, flops)


def _alone(e: _Entry, why: str) -> None:
    """Train one member through the ordinary fit(), exactly as `dlx train` would."""
    import torch

    from dlx.train import fit
    from dlx.train.callbacks import Checkpointer, CsvLogger, Progress, Tracking

    run, cfg, p = e.run, e.cfg, e.parts
    try:
        torch.set_rng_state(e.rng)
        if e.member is not None:  # set up for a stack: start again from the state its build left
            from dlx.build import build

            p = e.parts = build(cfg)
        callbacks = [CsvLogger(run.path("metrics.csv")),
                     Checkpointer(run.path("checkpoint.pt"), cfg.trainer.get("checkpoint_every", 0),
                                  cfg.trainer.get("checkpoint_minutes")),
                     Progress(cfg.trainer.get("progress", "auto"), label=run.dir.name)]
        if run.trackers:
            callbacks.append(Tracking(run.trackers))
        hist = fit(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer, seed=cfg.seed,
                   callbacks=callbacks, resume_from=e.resume_from)
        _finish(e, hist, {})
    except KeyboardInterrupt:
        raise
    except Exception as err:
        run.fail(err)
        run.close()


def stack_threads(cfg, size: int, flops: float) -> str:
    """Set torch's threads for a stack of ``size`` members of ``flops`` forward FLOPs a batch (one thread
    for a small stack under ``trainer.threads=auto``); returns the rule, for the run's env."""
    from dlx import threads as thread_rule

    setting_ = cfg.trainer.get("threads", "auto")
    if setting_ == "auto":
        n, rule = thread_rule.choose("auto")  # the cores free within the worker's share
        if size * flops < thread_rule.MIN_FLOPS:
            n, rule = 1, f"auto: small stack ({size} x {flops / 1e6:.1f} MFLOP per batch forward)"
        else:
            rule = f"{rule}; stack of {size} x {flops / 1e6:.1f} MFLOP per batch forward"
    else:
        n, rule = thread_rule.choose(setting_)
    thread_rule.apply(n)
    return rule


def _stacked(group: list[_Entry], flops: float) -> None:
    """Train ``group`` as one stack and finish each member."""
    from dlx.models.stacked import NotStackable
    from dlx.train.callbacks import CsvLogger, Tracking
    from dlx.train.loop import History
    from dlx.train.stacked import fit_stack

    S = len(group)
    cfg = group[0].cfg
    rule = stack_threads(cfg, S, flops)
    for e in group:
        m = e.member
        m.checkpoint = e.run.path("checkpoint.pt")
        m.checkpoint_every = int(cfg.trainer.get("checkpoint_every", 0) or 0)
        m.writers = [CsvLogger(e.run.path("metrics.csv"))]
        if e.run.trackers:
            m.writers.append(Tracking(e.run.trackers))
        e.run.env["threads_rule"] = rule
    t0 = time.perf_counter()
    try:
        fit_stack([e.member for e in group], cfg.trainer, progress=cfg.trainer.get("progress", "none"),
                  label=f"stack of {S}")
    except NotStackable as err:  # found before the first step: nothing trained yet
        for e in group:
            _alone(e, str(err))
        return
    except KeyboardInterrupt:
        raise
    except Exception as err:  # a failure of the shared stack is every member's
        for e in group:
            if not e.run.closed:
                e.run.fail(err)
                e.run.close()
        return
    wall = round(time.perf_counter() - t0, 3)
    for e in group:
        s = e.member.state
        hist = History(s.history, e.member.status, s.epoch, s.step, s.wall_s, s.diverged_step)
        _finish(e, hist, {"stack": {"members": S, "train_wall_s": wall}}, model=s.model)


def _finish(e: _Entry, hist, extra: dict, model=None) -> None:
    """The summary, predictions and figure a train run writes at its end (dlx/experiments/train)."""
    from dlx.build import final_metrics
    from dlx.experiments.train.experiment import plot
    from dlx.train.evaluate import save_predictions
    from dlx.train.loop import plan_steps

    run, cfg, p = e.run, e.cfg, e.parts
    try:
        out = {"epochs": hist.epoch, "steps": hist.step, "setup_s": e.setup_s,
               "train_wall_s": round(hist.wall_s, 3), "resumed": e.resume_from is not None, **extra}
        if hist.status == "diverged":
            spe = plan_steps(len(p.data.train), cfg.trainer)[0]
            out.update(diverged_step=hist.diverged_step, diverged_epoch=hist.diverged_step // spe + 1)
        if hist.status == "completed":
            save_predictions(run, model if model is not None else p.model, p.task, p.data,
                             cfg.task.get("save_predictions"), int(cfg.trainer.get("eval_batch_size", 2048)),
                             p.precision)
        if extra.get("stack"):  # wall_s: this member's share (its setup and its part of the stack's time)
            run.t0 = time.time() - e.setup_s - hist.wall_s
        run.summary(hist.status, final_metrics(hist.rows, p.task), **out)
        if hist.rows:
            plot(run.dir)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        run.fail(err)
    finally:
        run.close()

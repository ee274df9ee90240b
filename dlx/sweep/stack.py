"""Stacked sweep children (``sweep.stack=auto|true|false``): the train children of a sweep that share an
architecture and shapes and differ only in per-member settings (seed, label noise, training subset,
learning rate, momentum, weight decay, betas) are trained as one stacked model (dlx/train/stacked.py),
one process per stack. Every member still gets its own complete run directory, claim, resume and status.

Grouping (``plan``, in the sweep's process, before anything runs): children whose overrides agree on
every key but ``MEMBER_KEYS`` form a group; a group stacks when its config can (a model family with a
stacked form, no dropout, fp32, no DDP, a task and optimizer the stack runs: ``config_reason``), up to
``sweep.stack_max`` members, split further while the pool would otherwise have idle workers.

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
CPU_MAX_FLOPS = 60e6  # forward FLOPs per member and training batch above which a CPU stack gains little
GPU_MAX_FLOPS = 20e9  # ... and above which one member alone keeps an accelerator busy


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
    units: list[list] = []
    limit = max(1, int(stack_max)) if stack_max else None
    for key, members in groups.items():
        if len(members) < 2 or key[:1] == (_ALONE,):
            units += [[c] for c in members]
            continue
        vkey = tuple(_key(o) if _key(o) in SHAPE_KEYS else o for o in key)
        if vkey not in verdicts:
            verdicts[vkey] = _verdict(config, [*base, *members[0].overrides])
        why = verdicts[vkey]
        if why is None and stack == "auto":  # decided here, per shape: a stack that does not pay would
            why = _too_large(config, [*base, *members[0].overrides])  # train its members in one worker
        if why is not None:
            if say and stack == "true":
                say(f"not stacked ({' '.join(key) or 'every child'}): {why}")
            units += [[c] for c in members]
            continue
        size = limit or len(members)
        units += [members[i:i + size] for i in range(0, len(members), size)]
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


def _too_large(config: str, overrides: list[str]) -> str | None:
    """Why a group should not stack under ``auto`` because one member is big enough to run alone (None:
    stacking pays); the same rule as ``pays``, on the group's first member built here."""
    from dlx.build import build
    from dlx.config import compose
    from dlx.device import resolve_device

    try:
        cfg = compose(config, overrides)
        device = resolve_device(cfg.get("device", "auto"))
        parts = build(compose(config, [*overrides, "device=cpu"]))  # counting FLOPs needs no accelerator
    except DlxError as err:  # the child itself will fail with this, alone
        return str(err)
    ok, flops = _small_enough(parts, cfg, device)
    return None if ok else f"{flops / 1e6:.0f} MFLOP per member batch: large enough to run alone"


def _small_enough(parts, cfg, device=None) -> tuple[bool, float]:
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
    from dlx.sweep.execute import DONE

    if threads:
        os.environ[thread_rule.CAP_ENV] = str(threads)
        thread_rule.apply(threads)
    statuses: dict[str, str] = {}
    entries: list[_Entry] = []
    try:
        for overrides, run_dir, _kind in members:
            d = Path(run_dir)
            ovs = list(overrides)
            if (d / "checkpoint.pt").is_file() and run_status(d) not in DONE:
                ovs.append("trainer.resume=true")  # a member that died: continue, do not start over
            like = entries[0] if entries else None
            entry = _open(config, ovs, d, statuses, like)
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


def derive(cfg, overrides: list[str], new: list[str]):
    """The config ``compose(config, new)`` would give, from ``cfg = compose(config, overrides)`` when the
    two differ only in plain per-member values (seed, label noise, lr, ...; Hydra's own parser reads them),
    at a fraction of a compose's cost; None when they differ otherwise."""
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    old_by, new_by = {_key(o): o for o in overrides}, {_key(o): o for o in new}
    if len(old_by) != len(overrides) or len(new_by) != len(new) or set(old_by) - set(new_by):
        return None  # a repeated key, or one this member leaves at its default
    changed = [o for k, o in new_by.items() if old_by.get(k) != o]
    if any(o.startswith(("+", "~")) or _key(o) not in (*MEMBER_KEYS, "trainer.resume") for o in changed):
        return None
    try:
        parsed = OverridesParser.create().parse_overrides(changed)
    except Exception:
        return None
    out = copy.deepcopy(cfg)
    for o in parsed:
        old, value = OmegaConf.select(out, o.key_or_group), o.value()
        numbers = (int, float)
        same = old is None or value is None or isinstance(old, bool) == isinstance(value, bool) and (
            isinstance(old, numbers) and isinstance(value, numbers) or type(old) is type(value) or
            OmegaConf.is_list(old) and isinstance(value, list))
        if not same or isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float):
            return None  # let compose judge (and refuse) it
        OmegaConf.update(out, o.key_or_group, value, merge=False)
    return out


def _open(config: str, overrides: list[str], d: Path, statuses: dict, like: _Entry | None = None
          ) -> _Entry | None:
    """Claim, compose and build one member as run_child and `dlx train` do (None if claimed or failed).
    ``like``: a member opened before, whose config this one's is derived from when they differ only in
    per-member values."""
    import torch

    from dlx.build import build
    from dlx.config import compose
    from dlx.experiments.train.experiment import save_label_noise
    from dlx.locks import Claimed
    from dlx.runs import Run
    from dlx.train import distributed
    from dlx.train.loop import check_settings

    run = Run(d, "train", extra={"config": config})
    try:
        run.summary("running")
    except Claimed:
        statuses[str(d)] = "claimed"
        return None
    try:
        cfg = derive(like.cfg, like.overrides, overrides) if like is not None else None
        if cfg is None:
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
    """(stack them?, forward FLOPs per member and training batch) for ``sweep.stack=auto``."""
    ok, flops = _small_enough(entries[0].parts, entries[0].cfg)
    return ok or stack == "true", flops


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


def _stacked(group: list[_Entry], flops: float) -> None:
    """Train ``group`` as one stack and finish each member."""
    from dlx import threads as thread_rule
    from dlx.models.stacked import NotStackable
    from dlx.train.callbacks import CsvLogger, Tracking
    from dlx.train.loop import History
    from dlx.train.stacked import fit_stack

    S = len(group)
    cfg = group[0].cfg
    setting_ = cfg.trainer.get("threads", "auto")
    if setting_ == "auto":
        n, rule = thread_rule.choose("auto")  # the cores free within the worker's share
        if S * flops < thread_rule.MIN_FLOPS:
            n, rule = 1, f"auto: small stack ({S} x {flops / 1e6:.1f} MFLOP per batch forward)"
        else:
            rule = f"{rule}; stack of {S} x {flops / 1e6:.1f} MFLOP per batch forward"
    else:
        n, rule = thread_rule.choose(setting_)
    thread_rule.apply(n)
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

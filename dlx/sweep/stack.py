"""Running one stack (planned by dlx/sweep/plan.py) in a worker: each member is leased and opened as any
sweep child (dlx/sweep/child.py: open_child) and started, trained and finished through the train run's
lifecycle (dlx/train/lifecycle.py), exactly as `dlx train` would; the members train together through
``fit_stack`` (dlx/train/stacked.py). A member that turns out not to stack (other shapes, another resume
point) trains alone, in the same worker, through the ordinary ``fit``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dlx.runs import status as run_status
from dlx.sweep.plan import setting, small_enough


class _Entry:
    """One member being run: its Run, config, what ``lifecycle.start`` built and (once set up) its stack
    Member."""

    def __init__(self, run, cfg, started, rng):
        self.run, self.cfg, self.started = run, cfg, started
        self.member = None
        self.rng = rng  # the global RNG state right after the build: what this member's own run carries

    @property
    def parts(self):
        return self.started.parts


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
    """Lease, compose and start one member as any sweep child and `dlx train` are (None if another process
    holds it, it is done, or it failed). ``like``: a member opened before, whose input tensors this one
    shares where they are equal."""
    import torch

    from dlx.sweep.child import open_child
    from dlx.train import lifecycle

    rng = []

    def after_build(parts):
        rng.append(torch.get_rng_state())  # after the model's initialisation: what this member's run carries
        if like is not None:
            _share_inputs(parts.data, like.parts.data)

    try:
        run, cfg = open_child(config, overrides, d, "train")
        if run is None:
            statuses[str(d)] = cfg
            return None
        with run.recording(keep_open=True):
            started = lifecycle.start(cfg, run, after_build)
    except KeyboardInterrupt:
        raise
    except Exception:  # recorded in the member's summary
        statuses[str(d)] = "failed"
        return None
    return _Entry(run, cfg, started, rng[0])


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


def share_setup(started) -> None:
    """``started``: the members' lifecycle Started records (anything with ``setup_s``), in order. The first
    member's setup pays the stack's one-time costs (imports, loading the data the others then
    share): that excess over the others' typical setup is shared equally, so no member's wall_s absorbs
    the stack's start-up. The sum of the members' setup_s is unchanged."""
    if len(started) < 2:
        return
    rest = sorted(s.setup_s for s in started[1:])
    excess = max(0.0, started[0].setup_s - rest[len(rest) // 2])
    started[0].setup_s -= excess
    for s in started:
        s.setup_s = round(s.setup_s + excess / len(started), 3)


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
    share_setup([e.started for e in entries])
    ready = []
    for e in entries:
        try:
            p = e.parts
            torch.set_rng_state(e.rng)
            e.member = member_state(p.model, p.task, p.data, p.precision, e.cfg.trainer, e.cfg.optimizer,
                                    int(e.cfg.seed), e.started.resume_from)
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

    from dlx.train import fit, lifecycle

    run, cfg = e.run, e.cfg
    try:
        torch.set_rng_state(e.rng)
        if e.member is not None:  # set up for a stack: start again from the state its build left
            from dlx.build import build

            e.started.parts = build(cfg)
        p = e.parts
        hist = fit(p.model, p.task, p.data, p.precision, cfg.trainer, cfg.optimizer, seed=cfg.seed,
                   callbacks=lifecycle.callbacks(cfg, run), resume_from=e.started.resume_from)
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
    """What a train run writes at its end (dlx/train/lifecycle.py: finish)."""
    from dlx.train import lifecycle

    run = e.run
    try:
        if extra.get("stack"):  # wall_s: this member's share (its setup and its part of the stack's time)
            run.t0 = time.time() - e.started.setup_s - hist.wall_s
        lifecycle.finish(e.cfg, run, e.started, hist, extra, model=model)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        run.fail(err)
    finally:
        run.close()

"""fit(): the one training loop. Logging, progress, checkpoints, divergence checks and the evaluation
schedule are callbacks (dlx/train/callbacks.py), not branches in here."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlx.train import distributed
from dlx.train.callbacks import Callback, DivergenceGuard, Evaluator
from dlx.train.checkpoint import load_checkpoint
from dlx.train.interrupt import graceful
from dlx.train.optim import build_optimizer, build_schedule


@dataclass
class TrainState:
    model: torch.nn.Module
    task: object
    data: object
    precision: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    generator: torch.Generator
    epochs: int
    total_steps: int
    steps_per_epoch: int
    cfg: object
    epoch: int = 0  # completed epochs
    step: int = 0  # completed optimizer steps
    loss: torch.Tensor | None = None  # last training batch loss
    first_loss: float | None = None
    history: list[dict] = field(default_factory=list)
    evaluated: bool = False  # an evaluation row was added at the end of this epoch
    stop: str | None = None  # "diverged" ends the loop
    diverged_step: int | None = None
    wall_s: float = 0.0  # training wall time, carried across resumes
    callbacks: list = field(default_factory=list)  # their state_dict()s travel in the checkpoint
    batch_in_epoch: int = 0  # batches of the current epoch already consumed (a mid-epoch checkpoint)
    epoch_generator: torch.Tensor | None = None  # the batch-order generator's state when this epoch began
    interrupt: bool = False  # Ctrl-C asked to stop at the next step boundary

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps


@dataclass
class History:
    rows: list[dict]
    status: str
    epoch: int
    step: int
    wall_s: float
    diverged_step: int | None = None

    @property
    def final(self) -> dict:
        return self.rows[-1] if self.rows else {}


def plan_steps(n_train: int, cfg) -> tuple[int, int, int]:
    """(steps_per_epoch, epochs, total_steps) from trainer.epochs or trainer.steps."""
    from dlx.errors import DlxError

    if int(cfg.batch_size) < 1:
        raise DlxError(f"trainer.batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.get("steps") is not None and int(cfg.steps) < 1:
        raise DlxError(f"trainer.steps must be >= 1 (or null to train by epochs), got {cfg.steps}")
    if not cfg.get("steps") and int(cfg.epochs) < 1:
        raise DlxError(f"trainer.epochs must be >= 1, got {cfg.epochs}")
    if not cfg.get("eval_points"):  # eval_points, when set, replaces eval_every
        from dlx.config import number

        number(cfg.get("eval_every", 1), "trainer.eval_every (evaluate every N epochs)", lo=1, integer=True)
    spe = max(1, math.ceil(n_train / int(cfg.batch_size)))
    if cfg.get("steps"):
        total = int(cfg.steps)
        return spe, math.ceil(total / spe), total
    epochs = int(cfg.epochs)
    return spe, epochs, epochs * spe


def check_settings(trainer_cfg, optim_cfg, n_train: int) -> None:
    """Every trainer and optimizer setting checked up front (fit() would refuse them too, but only after
    the run has started): steps, evaluation schedule, optimizer and lr schedule."""
    plan_steps(n_train, trainer_cfg)
    build_schedule(build_optimizer([torch.nn.Parameter(torch.zeros(1))], optim_cfg), optim_cfg, 1)


def run_epoch(state: TrainState, net, bs: int, clip, ddp: bool, cbs: list) -> None:
    """One pass over the training batches (or what is left of it after a mid-epoch checkpoint)."""
    data, task, precision, optimizer = state.data, state.task, state.precision, state.optimizer
    generator, skip = state.generator, state.batch_in_epoch
    if skip:  # resumed mid-epoch: replay this epoch's batch order and augmentation draws up to where it was
        generator.set_state(state.epoch_generator)
    else:
        state.epoch_generator = generator.get_state()
    for i, batch in enumerate(data.train.batches(bs, shuffle=True, generator=generator)):
        if data.augment is not None:
            batch = data.augment(batch, generator)
        if i < skip:
            continue
        if state.interrupt:
            state.stop = "interrupted"
            if state.batch_in_epoch == 0:  # nothing of this epoch trained: a resume draws its order again,
                generator.set_state(state.epoch_generator)  # from the state before this epoch's draws
            return
        state.batch_in_epoch = i + 1
        if ddp:
            batch = distributed.shard(batch)
            if batch is None:
                continue
        with precision.autocast():
            loss = task.loss(net, batch)
        state.loss = distributed.mean_loss(loss.detach()) if ddp else loss.detach()
        for cb in cbs:
            cb.on_batch_end(state)
        if state.stop:
            return
        optimizer.zero_grad(set_to_none=True)
        precision.backward(loss)
        if clip:
            precision.unscale(optimizer)
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), float(clip))
        precision.step(optimizer)
        state.scheduler.step()
        state.step += 1
        if state.done:
            return


def fit(model, task, data, precision, trainer_cfg, optim_cfg, *, seed: int = 0, callbacks=(),
        resume_from: Path | None = None) -> History:
    """Train `model` on `data.train` under `task` and `precision`; return the evaluation history."""
    cfg = trainer_cfg
    spe, epochs, total = plan_steps(len(data.train), cfg)
    model = precision.prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:  # a fitted or fixed scorer (a baseline): nothing to train, evaluated once as epoch 0
        epochs = total = 0
        params = [torch.nn.Parameter(torch.zeros(0))]  # so the optimizer and its checkpoint keep one shape
    optimizer = build_optimizer(params, optim_cfg)
    scheduler = build_schedule(optimizer, optim_cfg, max(total, 1))
    generator = torch.Generator().manual_seed(int(seed))
    state = TrainState(model, task, data, precision, optimizer, scheduler, generator, epochs, total, spe, cfg)
    check_every = 1 if params[0].device.type == "cpu" else int(cfg.get("check_every", 50))
    guard = DivergenceGuard(cfg.get("divergence_factor"), check_every)
    cbs: list[Callback] = [guard, Evaluator(), *callbacks]
    state.callbacks = cbs
    if resume_from is not None:
        load_checkpoint(resume_from, state)
    clip = cfg.get("grad_clip")
    bs = int(cfg.batch_size)
    net = distributed.wrap(model)  # DDP under torchrun; the plain model otherwise (state keeps the plain one)
    ddp = distributed.active()
    status = "interrupted"
    t_start = time.perf_counter() - state.wall_s
    for cb in cbs:
        cb.on_start(state)
    try:
        model.train()
        if total == 0:
            for cb in cbs:
                cb.on_epoch_end(state)
        with graceful(state):
            while not state.done and state.stop is None:
                run_epoch(state, net, bs, clip, ddp, cbs)
                if state.stop:
                    break
                state.epoch += 1
                state.batch_in_epoch = 0
                state.wall_s = time.perf_counter() - t_start
                state.evaluated = False
                for cb in cbs:
                    cb.on_epoch_end(state)
                if state.interrupt:
                    state.stop = "interrupted"
        status = state.stop or "completed"
    finally:
        state.wall_s = time.perf_counter() - t_start
        for cb in cbs:
            cb.on_end(state, status)
    return History(state.history, status, state.epoch, state.step, state.wall_s, state.diverged_step)

"""fit_stack(): S members of one architecture trained together as one stacked model (dlx/models/stacked.py),
each exactly as fit() would train it alone: its own initialisation, batch order (its own generator),
labels and training subset, optimizer state and hyper-parameters, evaluation rows, divergence check and
checkpoints. Per-op overhead is paid once per step instead of S times, which is what small models on a
CPU (and any model that leaves a GPU idle) spend their time on.

What fit() does through callbacks is done here per member with the same pieces: the evaluation schedule
(``eval_epochs``), the divergence rule (``DivergenceGuard``), metrics.csv (``CsvLogger``), tracking
(``Tracking``) and checkpoints (``state_to_checkpoint`` on a TrainState holding the member's own plain
model, torch optimizer and LambdaLR, synchronised from the stack before each save), so a member's run
directory reads like a one-by-one run's and either can resume the other's checkpoint.

A member that diverges is recorded at the step its own run would stop and leaves the stack; the others
go on. The optimizer updates each member's slice of a stacked parameter with the arithmetic of torch's
single-tensor SGD / Adam / AdamW (hyper-parameters shared by every member stay Python floats, as in
torch; ones that differ become per-member tensors).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from dlx.models.stacked import NotStackable, StackedModel, own, pad_stack
from dlx.train.callbacks import DivergenceGuard, eval_epochs
from dlx.train.checkpoint import load_checkpoint, save_checkpoint
from dlx.train.interrupt import graceful
from dlx.train.loop import TrainState, plan_steps
from dlx.train.optim import build_optimizer, build_schedule

TASKS = ("classify", "binary", "regress")  # tasks whose loss and metrics read one model(x) per batch
SCHEDULE_KEYS = ("schedule", "warmup_steps", "milestones", "gamma")  # what an lr multiplier depends on


@dataclass
class Member:
    """One member of a stack: the TrainState its own fit() would have (plain model, torch optimizer,
    LambdaLR, batch-order generator, history, counters), the global RNG state its run would carry, and
    the per-member writers (CsvLogger, Tracking) called at each epoch end."""

    state: TrainState
    task: object
    data: object
    rng: torch.Tensor
    cuda_rng: list | None = None
    checkpoint: Path | None = None
    checkpoint_every: int = 0
    optim_cfg: object = None
    writers: list = field(default_factory=list)
    status: str | None = None
    resumed: bool = False


def member_state(model, task, data, precision, trainer_cfg, optim_cfg, seed: int,
                 resume_from: Path | None = None) -> Member:
    """What fit() sets up for one run (optimizer, schedule, generator, counters), resumed from its
    checkpoint when given. Call right after building the member: the global RNG state then is the one
    its own run would save."""
    spe, epochs, total = plan_steps(len(data.train), trainer_cfg)
    model = precision.prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, optim_cfg)
    scheduler = build_schedule(optimizer, optim_cfg, max(total, 1))
    generator = torch.Generator().manual_seed(int(seed))
    state = TrainState(model, task, data, precision, optimizer, scheduler, generator, epochs, total, spe,
                       trainer_cfg)
    state.callbacks = []
    if resume_from is not None:
        load_checkpoint(resume_from, state)  # also restores the global RNG its run carried
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return Member(state, task, data, torch.get_rng_state(), cuda_rng, resumed=resume_from is not None,
                  optim_cfg=optim_cfg)


def position(m: Member) -> tuple[int, int, int]:
    return m.state.epoch, m.state.step, m.state.batch_in_epoch


# ----------------------------------------------------------------------------------------------- optimizer

def _hyper(values: list[float], device) -> float | torch.Tensor:
    """A hyper-parameter shared by every member stays a float (torch's own arithmetic); else a (S,) tensor."""
    if all(v == values[0] for v in values):
        return float(values[0])
    return torch.tensor(values, dtype=torch.float32, device=device)


def _view(h, p: torch.Tensor):
    return h.view(-1, *([1] * (p.dim() - 1))) if isinstance(h, torch.Tensor) else h


class StackedOptimizer:
    """SGD, Adam or AdamW over stacked parameters (member axis first): member i's slice gets the update
    torch's single-tensor implementation would give member i's own parameters, with its own lr (its base
    lr times its schedule's factor at this step), momentum, betas, eps and weight decay."""

    def __init__(self, params: list[torch.nn.Parameter], members: list[Member]):
        opts = [m.state.optimizer for m in members]
        kinds = {type(o) for o in opts}
        if len(kinds) != 1 or next(iter(kinds)) not in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
            raise NotStackable("the members' optimizers differ or are not SGD, Adam or AdamW")
        if any(len(o.param_groups) != 1 for o in opts):
            raise NotStackable("one parameter group per member is stacked")
        self.params = params
        self.kind = "sgd" if isinstance(opts[0], torch.optim.SGD) else "adam"
        groups = [o.param_groups[0] for o in opts]
        dev = params[0].device
        self.members = members
        if self.kind == "sgd":
            if len({g["nesterov"] for g in groups}) != 1 or \
                    any(g["maximize"] or g["dampening"] for g in groups):
                raise NotStackable("nesterov must agree; dampening and maximize are not stacked")
            self.nesterov = bool(groups[0]["nesterov"])
            self.momentum_values = [float(g["momentum"]) for g in groups]
            self.momentum = _hyper(self.momentum_values, dev)
            self.wd = _hyper([float(g["weight_decay"]) for g in groups], dev)
        else:
            if any(g["amsgrad"] or g["maximize"] for g in groups) or \
                    len({bool(g.get("decoupled_weight_decay")) for g in groups}) != 1:
                raise NotStackable("amsgrad, maximize and mixed Adam/AdamW are not stacked")
            self.decoupled = bool(groups[0].get("decoupled_weight_decay"))
            self.betas = [tuple(float(b) for b in g["betas"]) for g in groups]
            self.eps = _hyper([float(g["eps"]) for g in groups], dev)
            self.wd = _hyper([float(g["weight_decay"]) for g in groups], dev)
        self.base = [float(m.state.scheduler.base_lrs[0]) for m in members]
        self.factors = [m.state.scheduler.lr_lambdas[0] for m in members]
        # one schedule for all (the same schedule settings and length): its factor is computed once a step
        sig = {None if m.optim_cfg is None else tuple(str(m.optim_cfg.get(k)) for k in SCHEDULE_KEYS)
               for m in members}
        self.shared = None not in sig and len(sig) == 1 and len({m.state.total_steps for m in members}) == 1
        self.state: list[dict] = [{} for _ in params]
        self._import(members)

    def lrs(self, step: int) -> list[float]:
        """Each member's lr at ``step`` completed steps: LambdaLR's base_lr * lambda(step)."""
        if self.shared:
            f = self.factors[0](step)
            return [b * f for b in self.base]
        return [b * f(step) for b, f in zip(self.base, self.factors, strict=True)]

    def _import(self, members: list[Member]) -> None:
        """Stack the members' torch optimizer state (a resumed run's momentum, Adam moments and step)."""
        for j in range(len(self.params)):
            per = [m.state.optimizer.state.get(_member_params(m)[j], {}) for m in members]
            keys = set(per[0])
            if any(set(s) != keys for s in per):
                raise NotStackable("the members' optimizer states differ in kind")
            for k in keys:
                if k == "step":
                    self.state[j]["step"] = float(per[0]["step"])
                elif per[0][k] is not None:  # zero-padded like the weights (a member's own shape)
                    self.state[j][k] = pad_stack([s[k].to(self.params[j].device) for s in per],
                                                 self.params[j].shape[1:])

    @torch.no_grad()
    def step(self, step: int) -> None:
        lrs = self.lrs(step)
        lr = _hyper(lrs, self.params[0].device)
        if self.kind == "sgd":
            self._sgd(lr)
        else:
            self._adam(lr, lrs)

    def _sgd(self, lr) -> None:
        params, states = self.params, self.state
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            params = [p for p in self.params if p.grad is not None]
            states = [self.state[j] for j, p in enumerate(self.params) if p.grad is not None]
            grads = [p.grad for p in params]
        scalar = not any(isinstance(h, torch.Tensor) for h in (lr, self.momentum, self.wd))
        if scalar:  # the common case: torch's ops with the same Python floats, over all tensors at once
            if self.wd != 0:
                grads = torch._foreach_add(grads, params, alpha=self.wd)
            if self.momentum != 0:
                if "momentum_buffer" not in states[0]:
                    for s, g in zip(states, grads, strict=True):
                        s["momentum_buffer"] = g.detach().clone()
                    bufs = [s["momentum_buffer"] for s in states]
                else:
                    bufs = [s["momentum_buffer"] for s in states]
                    torch._foreach_mul_(bufs, self.momentum)
                    torch._foreach_add_(bufs, grads)
                grads = torch._foreach_add(grads, bufs, alpha=self.momentum) if self.nesterov else bufs
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        for p, g, s in zip(params, grads, states, strict=True):
            wd, mom = _view(self.wd, p), _view(self.momentum, p)
            if isinstance(wd, torch.Tensor) or wd != 0:
                g = g + p * wd
            if isinstance(mom, torch.Tensor) or mom != 0:
                buf = s.get("momentum_buffer")
                if buf is None:
                    buf = s["momentum_buffer"] = g.detach().clone()
                else:
                    buf.mul_(mom).add_(g)
                g = g + buf * mom if self.nesterov else buf
            if isinstance(lr, torch.Tensor):
                p.addcmul_(g, _view(lr, p), value=-1)
            else:
                p.add_(g, alpha=-lr)

    def _adam(self, lr, lrs: list[float]) -> None:
        params = [p for p in self.params if p.grad is not None]
        states = [self.state[j] for j, p in enumerate(self.params) if p.grad is not None]
        for p, s in zip(params, states, strict=True):
            if "exp_avg" not in s:
                s["step"] = 0.0
                s["exp_avg"] = torch.zeros_like(p)
                s["exp_avg_sq"] = torch.zeros_like(p)
        step = states[0]["step"] + 1.0
        for s in states:
            s["step"] = step
        b1 = [b[0] for b in self.betas]
        b2 = [b[1] for b in self.betas]
        dev = params[0].device
        beta1, beta2 = _hyper(b1, dev), _hyper(b2, dev)
        # per member, as torch computes them from Python floats
        size = _hyper([lr_i / (1 - a ** step) for lr_i, a in zip(lrs, b1, strict=True)], dev)
        bc2_sqrt = _hyper([(1 - b ** step) ** 0.5 for b in b2], dev)
        for p, s in zip(params, states, strict=True):
            g = p.grad
            wd = _view(self.wd, p)
            if isinstance(wd, torch.Tensor) or wd != 0:
                if self.decoupled:
                    p.mul_(1 - _view(lr, p) * wd)
                else:
                    g = g + p * wd if isinstance(wd, torch.Tensor) else g.add(p, alpha=wd)
            ea, eas = s["exp_avg"], s["exp_avg_sq"]
            v1, v2 = _view(beta1, p), _view(beta2, p)
            ea.lerp_(g, 1 - v1)
            if isinstance(v2, torch.Tensor):
                eas.mul_(v2).add_(g * g * (1 - v2))
            else:
                eas.mul_(v2).addcmul_(g, g, value=1 - v2)
            denom = (eas.sqrt() / _view(bc2_sqrt, p)).add_(_view(self.eps, p))
            sz = _view(size, p)
            if isinstance(sz, torch.Tensor):
                p.sub_(ea / denom * sz)
            else:
                p.addcdiv_(ea, denom, value=-sz)

    def keep(self, index: list[int]) -> None:
        idx = torch.tensor(index, device=self.params[0].device)
        for s in self.state:
            for k, v in list(s.items()):
                if isinstance(v, torch.Tensor):
                    s[k] = v.index_select(0, idx)

        def pick(h):
            return h.index_select(0, idx) if isinstance(h, torch.Tensor) else h

        self.members = [self.members[i] for i in index]
        self.base = [self.base[i] for i in index]
        self.factors = [self.factors[i] for i in index]
        self.wd = pick(self.wd)
        if self.kind == "sgd":
            self.momentum_values = [self.momentum_values[i] for i in index]
            self.momentum = pick(self.momentum)
        else:
            self.betas = [self.betas[i] for i in index]
            self.eps = pick(self.eps)

    @torch.no_grad()
    def write_back(self, members: list[Member], step: int) -> None:
        """Each member's torch optimizer and LambdaLR as its own run would hold them after ``step`` steps."""
        lrs = self.lrs(step)
        for i, m in enumerate(members):
            opt, sched = m.state.optimizer, m.state.scheduler
            for j, p in enumerate(_member_params(m)):
                s = self.state[j]
                if not s:
                    continue
                mine, at = {}, own(p.shape)
                if self.kind == "sgd":
                    if self.momentum_values[i] != 0 and "momentum_buffer" in s:
                        mine["momentum_buffer"] = s["momentum_buffer"][i][at].clone()
                else:
                    mine = {"step": torch.tensor(float(s["step"]), dtype=torch.float32),
                            **{k: s[k][i][at].clone() for k in ("exp_avg", "exp_avg_sq")}}
                if mine:
                    opt.state[p] = mine
            opt.param_groups[0]["lr"] = lrs[i]
            sched.last_epoch, sched._step_count, sched._last_lr = step, step + 1, [lrs[i]]


def _member_params(m: Member) -> list[torch.nn.Parameter]:
    return list(m.state.optimizer.param_groups[0]["params"])


# ---------------------------------------------------------------------------------------------------- data

class StackedSplit:
    """One split of S members (equal lengths) as stacked tensors; a tensor every member shares (the inputs
    when only the labels differ) is held once."""

    def __init__(self, splits: list):
        fields = [s.fields for s in splits]
        if any(not isinstance(f, tuple) or len(f) != 2 for f in fields):
            raise NotStackable("stacked splits are (x, y) tensor splits")
        self.n = len(splits[0])
        if any(len(s) != self.n for s in splits):
            raise NotStackable("the members' splits differ in size")
        self.x, self.x_shared = _share([f[0] for f in fields])
        self.y, self.y_shared = _share([f[1] for f in fields])
        self.S = len(splits)
        self._offsets()

    def _offsets(self) -> None:
        dev = self.y.device
        self.off = (torch.arange(self.S, device=dev) * self.n).unsqueeze(1)

    def rows(self, idx: torch.Tensor):
        """Training rows: ``idx`` (S, b) indices into each member's split -> x (S, b, ...), y (S, b)."""
        return self._take(self.x, self.x_shared, idx), self._take(self.y, self.y_shared, idx)

    def _take(self, t, shared, idx):
        if shared:
            return t[idx]
        return t.reshape(self.S * self.n, *t.shape[2:])[idx + self.off]

    def slice(self, i: int, j: int):
        """Evaluation rows i..j of every member: x (S, b, ...), y (S, b)."""
        x = self.x[i:j].unsqueeze(0).expand(self.S, *self.x[i:j].shape) if self.x_shared else self.x[:, i:j]
        y = self.y[i:j].unsqueeze(0).expand(self.S, *self.y[i:j].shape) if self.y_shared else self.y[:, i:j]
        return x, y

    def keep(self, index: list[int]) -> None:
        idx = torch.tensor(index, device=self.y.device)
        if not self.x_shared:
            self.x = self.x.index_select(0, idx)
        if not self.y_shared:
            self.y = self.y.index_select(0, idx)
        self.S = len(index)
        self._offsets()


def _share(tensors: list[torch.Tensor]):
    first = tensors[0]
    if all(t is first or (t.shape == first.shape and t.dtype == first.dtype and torch.equal(t, first))
           for t in tensors[1:]):
        return first, True
    if any(t.shape != first.shape or t.dtype != first.dtype for t in tensors):
        raise NotStackable("the members' data differ in shape")
    return torch.stack(tensors).contiguous(), False


class _Output:
    """A 'model' that returns precomputed outputs: lets a task's own loss/metrics score one member's slice
    of the stacked forward."""

    def __init__(self, out):
        self.out = out

    def __call__(self, x):
        return self.out


def stacked_loss(tasks: list):
    """(S, B, ...) outputs and (S, B) targets -> (S,) losses, each the member's own task.loss: one
    cross-entropy over every member for classification, the members' own task.loss otherwise."""
    smoothings = {float(getattr(t, "label_smoothing", 0.0)) for t in tasks}
    if all(t.name == "classify" for t in tasks) and len(smoothings) == 1:
        smoothing = smoothings.pop()

        def classify(out, y, active=None):
            S, B = y.shape[0], y.shape[1]
            per = F.cross_entropy(out.reshape(S * B, -1), y.reshape(-1), reduction="none",
                                  label_smoothing=smoothing)
            return per.view(S, B).mean(1)

        return classify

    def generic(out, y, active=None):
        return torch.stack([t.loss(_Output(out[i]), (None, y[i])) for i, t in enumerate(active or tasks)])

    return generic


# ---------------------------------------------------------------------------------------------------- loop

def check_members(members: list[Member]) -> None:
    """Raise NotStackable unless the members can train as one stack from where they are."""
    first = members[0]
    if first.task.name not in TASKS:
        raise NotStackable(f"task '{first.task.name}' is not stacked (stacked: {', '.join(TASKS)})")
    if any(type(m.task) is not type(first.task) for m in members):
        raise NotStackable("the members' tasks differ")
    if len({position(m) for m in members}) != 1:
        raise NotStackable("the members resume from different steps")
    if any(getattr(m.state.precision, "name", None) != "fp32" for m in members):
        raise NotStackable("only fp32 members are stacked")
    plans = {(m.state.steps_per_epoch, m.state.epochs, m.state.total_steps) for m in members}
    if len(plans) != 1:
        raise NotStackable("the members' training plans differ")
    if len({m.data.augment is None for m in members}) != 1:
        raise NotStackable("augmentation on some members only")
    if len({m.data.val is None for m in members}) != 1:
        raise NotStackable("a validation split on some members only")
    from dlx.train import distributed

    if distributed.active():
        raise NotStackable("DDP runs are not stacked")


class _Epoch:
    """One epoch's batch order for every active member: the permutations, and (when they fit in
    ``EPOCH_BYTES`` and nothing augments) the training rows gathered once in that order, so a step's batch
    is a slice rather than a gather."""

    def __init__(self, train: StackedSplit, perms: torch.Tensor, gather: bool):
        self.train, self.perms = train, perms
        self.rows = train.rows(perms) if gather else None

    def batch(self, a: int, b: int):
        if self.rows is not None:
            return self.rows[0][:, a:b], self.rows[1][:, a:b]
        return self.train.rows(self.perms[:, a:b])

    def keep(self, idx: torch.Tensor) -> None:
        self.perms = self.perms.index_select(0, idx)
        if self.rows is not None:
            self.rows = (self.rows[0].index_select(0, idx), self.rows[1].index_select(0, idx))


EPOCH_BYTES = 256 * 2**20


def fit_stack(members: list[Member], trainer_cfg, *, progress: str = "none", label: str = "stack",
              on_step=None) -> None:
    """Train every member to the end (or until it diverges); set ``member.status``. The caller writes each
    member's summary. Ctrl-C in the main thread stops at a step boundary with every member's checkpoint
    saved (status 'interrupted'); elsewhere it propagates. ``on_step(members, losses)``, if given, sees
    each step's training losses (a list of floats, one per active member; CPU only)."""
    check_members(members)
    stack = _StackFit(members, trainer_cfg, on_step)
    if progress != "none":
        from dlx.progress import ProgressLine

        stack.line = ProgressLine(label, stack.first.epochs, "epochs", progress, done=stack.epoch)
    try:
        stack.train()
    finally:
        if stack.line is not None:
            stack.line.close()


class _StackFit:
    """One fit_stack call: the stacked model, optimizer and splits, the shared counters (epoch, step,
    batch in the epoch) and the members still training. Read top to bottom it is fit()'s loop:
    ``train`` -> ``_epoch`` (each member's own batch order) -> ``_step``, then ``_end_epoch`` (evaluate,
    log, checkpoint), with the bookkeeping a stack adds (a diverged member leaves it) below."""

    def __init__(self, members: list[Member], cfg, on_step):
        from dlx.models.stacked import LinearChain

        self.on_step = on_step
        self.first = members[0].state
        self.model = StackedModel([m.state.model for m in members])
        self.params = self.model.stacked_parameters()
        self.opt = StackedOptimizer(self.params, members)
        self.train_split = StackedSplit([m.data.train for m in members])
        names = (["train"] if cfg.get("eval_train", True) else []) + \
            (["val"] if members[0].data.val is not None else []) + ["test"]
        split = {n: StackedSplit([m.data.split(n) for m in members]) for n in names if n != "train"}
        self.evals = {n: self.train_split if n == "train" else split[n] for n in names}
        self.loss_fn = stacked_loss([m.task for m in members])
        smoothing = {float(getattr(m.task, "label_smoothing", 0.0)) for m in members}
        self.kernel = None
        if all(m.task.name == "classify" for m in members) and len(smoothing) == 1 and \
                LinearChain.fits(self.model):
            self.kernel = LinearChain(self.model, smoothing.pop())  # a plain MLP: the hand-written backward
        self.device = self.params[0].device
        # divergence: checked every step on a CPU; on a GPU losses are buffered so a check does not sync
        self.every = 1 if self.device.type == "cpu" else int(cfg.get("check_every", 50))
        self.factor = cfg.get("divergence_factor")
        self.guard = DivergenceGuard(self.factor, 1)
        self.clip = cfg.get("grad_clip")
        self.bs = int(cfg.batch_size)
        self.total = self.first.total_steps
        self.schedule = eval_epochs(self.first.epochs, cfg.get("eval_every", 1), cfg.get("eval_points", 0))
        self.eval_bs = int(cfg.get("eval_batch_size", 2048))
        minutes = cfg.get("checkpoint_minutes")
        self.seconds = 60.0 * float(minutes) if minutes else None
        self.ckpt_every = members[0].checkpoint_every
        self.augment = members[0].data.augment is not None
        train = self.train_split
        row_bytes = (train.x[0].numel() * train.x.element_size()) if train.x_shared else \
            train.x[0, 0].numel() * train.x.element_size()
        self.gather = not self.augment and len(members) * train.n * row_bytes <= EPOCH_BYTES
        self.n_batches = math.ceil(train.n / self.bs)
        self.last_save = time.monotonic()
        # where the members stand: a resumed stack starts mid-epoch, its first `skip` batches done
        self.epoch, self.step, self.skip = self.first.epoch, self.first.step, self.first.batch_in_epoch
        self.skip_now = self.skip  # the batch in the epoch a checkpoint written now resumes at
        self.active = list(members)
        self.buffered: list[tuple[int, torch.Tensor]] = []
        self.holder = SimpleNamespace(interrupt=False)
        self.stop: str | None = None
        self.line = None
        self.clock = time.perf_counter()
        self.ep: _Epoch | None = None
        # the divergence guard still has first losses to record
        self.unset = any(m.state.first_loss is None for m in self.active)

    # --- fit()'s loop ---------------------------------------------------------------------------------------

    def train(self) -> None:
        self.model.train()
        with graceful(self.holder):
            while self.step < self.total and self.stop is None and self.active:
                self._epoch()
                if self.stop or not self.active:
                    break
                self._end_epoch()
        self._finish()  # as fit: after the Ctrl-C handler, so a Ctrl-C while saving stops the sweep

    def _epoch(self) -> None:
        """One pass over the training rows in each member's own order (resumed mid-epoch: the same order,
        its first ``skip`` batches skipped); Ctrl-C stops it at a batch boundary."""
        for m in self.active:
            g = m.state.generator
            if self.skip:
                g.set_state(m.state.epoch_generator)
            else:
                m.state.epoch_generator = g.get_state()
        n = self.train_split.n
        perms = torch.stack([torch.randperm(n, generator=m.state.generator) for m in self.active])
        self.ep = _Epoch(self.train_split, perms.to(self.device), self.gather)
        for i in range(self.n_batches):
            a, b = i * self.bs, min(n, (i + 1) * self.bs)
            x = None
            if self.augment:  # drawn for every batch, skipped ones too, as the member's own run does
                x, y = self.ep.batch(a, b)
                x = torch.stack([m.data.augment((x[k], y[k]), m.state.generator)[0]
                                 for k, m in enumerate(self.active)])
            if i < self.skip:
                continue
            if self.holder.interrupt:
                self.stop = "interrupted"
                self.skip_now = i
                if i == 0:  # nothing of this epoch trained: its batch order is drawn again on resume
                    for m in self.active:
                        m.state.generator.set_state(m.state.epoch_generator)
                break
            self.skip_now = i + 1
            if x is None:
                x, y = self.ep.batch(a, b)
            gone = self._step(x, y)
            if gone:
                self._drop(gone)
                if not self.active:
                    break
            if self.step >= self.total:
                break
        self.skip = 0
        self.ep = None

    def _step(self, x, y) -> list[Member]:
        """One optimizer step of every active member; returns those its losses show diverged."""
        if self.kernel is not None:
            losses = self.kernel.step(x, y)
        else:
            for p in self.params:
                p.grad = None
            losses = self.loss_fn(self.model(x), y, [m.task for m in self.active])
            losses.sum().backward()
            losses = losses.detach()
        gone: list[Member] = []
        if self.every == 1:
            values = losses.tolist()
            if self.on_step is not None:
                self.on_step(self.active, values)
            if self.unset or self.factor or not all(map(math.isfinite, values)):
                gone = self._check([values], self.step, self.step, self.skip_now)
                self.unset = False
        else:
            self.buffered.append((self.step, losses))
            if len(self.buffered) >= self.every:
                gone = self._flush(self.step, self.skip_now)
        if self.clip:
            _clip(self.params, float(self.clip))
        self.opt.step(self.step)
        self.step += 1
        return gone

    def _end_epoch(self) -> None:
        """As fit's callbacks at an epoch end: the divergence check, evaluation rows on the schedule, each
        member's writers (metrics.csv, tracking), checkpoints when due, the progress line."""
        self.epoch += 1
        self.skip_now = 0
        self._account()
        if self.every > 1:
            for m in self._flush(self.step, 0):  # as fit: diverged at this epoch end, counters advanced
                m.state.epoch = self.epoch
        due_eval = self.epoch in self.schedule or self.step >= self.total
        if due_eval and any(m.state.stop is None for m in self.active):
            rows = evaluate_stack(self.model, [m.task for m in self.active], self.evals, self.eval_bs)
            lrs = self.opt.lrs(self.step)
            for k, m in enumerate(self.active):
                if m.state.stop is None:
                    m.state.history.append({"epoch": self.epoch, "step": self.step, "lr": lrs[k], **rows[k],
                                            "wall_s": round(m.state.wall_s, 3)})
        for m in self.active:
            s = m.state
            s.epoch, s.step, s.batch_in_epoch = self.epoch, self.step, 0
            s.evaluated = bool(due_eval and s.stop is None)
            for w in m.writers:
                w.on_epoch_end(s)
        due = self.seconds is not None and time.monotonic() - self.last_save >= self.seconds
        if self.step >= self.total or due or (self.ckpt_every and self.epoch % self.ckpt_every == 0):
            self._sync()
            for m in self.active:
                if m.checkpoint is not None:
                    self._save(m)
            self.last_save = time.monotonic()
        if self.line is not None:
            info = f"step {self.step}  {len(self.active)} member{'s' if len(self.active) != 1 else ''}"
            self.line.update(self.epoch, info, line=due_eval)
        gone = [m for m in self.active if m.state.stop]
        if gone:
            self._drop(gone)
        if self.holder.interrupt:
            self.stop = "interrupted"

    def _finish(self) -> None:
        """Every member still in the stack ends with the stack's stop (or completed), its state written back
        from the stack, and its checkpoint saved if Ctrl-C stopped it."""
        self._account()
        for m in self.active:
            m.status = self.stop or "completed"
            m.state.stop = self.stop
        if self.active:
            self._sync()
        if self.stop == "interrupted":
            for m in self.active:
                if m.checkpoint is not None:
                    self._save(m)

    # --- what a stack adds: members' own clocks, states and divergence -------------------------------------

    def _account(self) -> None:
        """Each active member's share of the training time since the last call."""
        now = time.perf_counter()
        for m in self.active:
            m.state.wall_s += (now - self.clock) / len(self.active)
        self.clock = now

    def _sync(self) -> None:
        """Write the stack's weights, optimizer state and counters back into each member's own TrainState."""
        self.model.write_back([m.state.model for m in self.active])
        self.opt.write_back(self.active, self.step)
        for m in self.active:
            s = m.state
            s.epoch, s.step, s.batch_in_epoch = self.epoch, self.step, self.skip_now

    @staticmethod
    def _save(m: Member) -> None:
        torch.set_rng_state(m.rng)
        if m.cuda_rng is not None:
            torch.cuda.set_rng_state_all(m.cuda_rng)
        save_checkpoint(m.checkpoint, m.state)

    def _drop(self, gone: list[Member]) -> None:
        """Take members out of the stack: the model, optimizer, splits and epoch order lose their rows."""
        keep = [i for i, m in enumerate(self.active) if m not in gone]
        self._account()
        self.active = [self.active[i] for i in keep]
        if self.active:
            self.model.keep(keep)
            self.opt.keep(keep)
            for split in {id(v): v for v in [self.train_split, *self.evals.values()]}.values():
                split.keep(keep)
            if self.ep is not None:
                self.ep.keep(torch.tensor(keep, device=self.device))

    def _check(self, values: list[list[float]], first_step: int, now_step: int, in_epoch: int
               ) -> list[Member]:
        """The divergence rule on each member's losses (one list per step); returns the members it stops."""
        gone = []
        for k, m in enumerate(self.active):
            s = m.state
            self.guard._check(s, [v[k] for v in values], first_step)
            if s.stop == "diverged":
                s.epoch, s.step, s.batch_in_epoch = self.epoch, now_step, in_epoch
                m.status = "diverged"
                gone.append(m)
        return gone

    def _flush(self, now_step: int, in_epoch: int) -> list[Member]:
        """Check the buffered losses (a GPU checks every ``check_every`` steps)."""
        if not self.buffered:
            return []
        values = torch.stack([v for _, v in self.buffered]).float().cpu().tolist()
        start = self.buffered[0][0]
        self.buffered = []
        return self._check(values, start, now_step, in_epoch)


@torch.no_grad()
def _clip(params: list[torch.Tensor], max_norm: float) -> None:
    """torch.nn.utils.clip_grad_norm_ per member: each member's own total norm over its parameters."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack([g.reshape(g.shape[0], -1).norm(2, dim=1) for g in grads], dim=1)  # (S, tensors)
    total = torch.linalg.vector_norm(norms, 2, dim=1)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))


@torch.no_grad()
def evaluate_stack(model: StackedModel, tasks: list, splits: dict, batch_size: int) -> list[dict]:
    """Each member's task metrics on each split, from one stacked forward per batch: {f'{split}_{k}': v}."""
    from dlx.tasks.base import accumulate, finish

    was = model.training
    model.eval()
    rows: list[dict] = [{} for _ in tasks]
    try:
        for name, split in splits.items():
            accs: list[dict] = [{} for _ in tasks]
            for i in range(0, split.n, batch_size):
                x, y = split.slice(i, i + batch_size)
                out = model(x)
                for k, task in enumerate(tasks):
                    accumulate(accs[k], task.metrics(_Output(out[k]), (x[k], y[k])))
            for k, task in enumerate(tasks):
                for key, v in task.reduce(finish(accs[k])).items():
                    rows[k][f"{name}_{key}"] = v
    finally:
        model.train(was)
    return rows

"""The assignment search of MUiR: a decomposed (1 + lambda)-EA over which hypermodule each location uses,
run as a callback of dlx's one training loop, one generation per epoch.

At the start of a generation a fraction ``fraction`` of the locations is contested. Each contested location
keeps its champion (its current module) and gets ``lam`` challengers: the module in use at another location
drawn uniformly (so a module used in many places is drawn more often: popular modules spread), or, with
probability ``reactivation``, an unused module re-drawn from the initial distribution. During the
generation the location's block is the soft-weighted mix ``sum_i softmax(s)_i H_i z`` of its candidates;
the soft weights ``s`` start at 0 for the champion and ``log(alpha / lam) - log(1 - alpha)`` for every
challenger (their total initial probability is ``alpha``; ``alpha`` null: all candidates equal) and are
trained by gradient descent together with the modules and contexts. At the end of the generation each
contested location keeps the module with the largest soft weight (weights of a module drawn twice add up;
a tie keeps the champion), and the soft weights are reset.

The soft weights have their own Adam optimizer (learning rate ``soft_lr``, state reset every generation),
held here and stepped the moment backward has produced their gradient (a post-accumulate-grad hook), so
dlx's own optimizer trains everything else unchanged. The search's state (generation, RNG, soft-weight
optimizer, history) is this callback's ``state_dict`` and travels in the checkpoint; the assignment and
the soft weights are buffers of the model. A resumed run therefore continues the same search.

Defaults are the authors' released settings: ``lam`` 4 (synthetic) or 1 (cross-modal), ``fraction`` 0.5,
``soft_lr`` 0.01 / 0.1, ``reactivation`` 1e-4, ``alpha`` null / 0.5.
"""

from __future__ import annotations

import math

import torch

from dlx.errors import DlxError
from dlx.train.callbacks import Callback

KEYS = ("generations", "steps", "lam", "fraction", "soft_lr", "alpha", "reactivation", "burn_in", "final")


def check_search(cfg, where: str = "search") -> dict:
    """The search settings as plain values, or one clear error."""
    from dlx.config import number

    s = {k: cfg.get(k) for k in KEYS}
    out = {"generations": number(s["generations"], f"{where}.generations", lo=0, integer=True),
           "steps": number(s["steps"], f"{where}.steps (joint steps per generation)", lo=1, integer=True),
           "burn_in": number(s["burn_in"] or 0, f"{where}.burn_in", lo=0, integer=True),
           "final": number(s["final"] or 0, f"{where}.final", lo=0, integer=True),
           "fraction": number(s["fraction"], f"{where}.fraction", lo=0, hi=1),
           "soft_lr": number(s["soft_lr"], f"{where}.soft_lr", lo=0),
           "reactivation": number(s["reactivation"], f"{where}.reactivation", lo=0, hi=1)}
    lam = s["lam"]
    if not isinstance(lam, int) or isinstance(lam, bool) or lam < 1:
        raise DlxError(f"{where}.lam (challengers per contested location, the paper's lambda) must be an "
                       f"integer >= 1, got {lam!r}")
    out["lam"] = lam
    if out["fraction"] <= 0 or out["soft_lr"] <= 0:
        raise DlxError(f"{where}.fraction must be in (0, 1] and {where}.soft_lr > 0")
    alpha = s["alpha"]
    out["alpha"] = None if alpha is None else number(alpha, f"{where}.alpha", lo=0, hi=1, closed_hi=False)
    if out["alpha"] == 0:
        raise DlxError(f"{where}.alpha must be in (0, 1) (or null: all candidates start equal)")
    return out


def epochs_of(search: dict) -> int:
    return search["burn_in"] + search["generations"] + search["final"]


class AssignmentSearch(Callback):
    """One generation per epoch: contests start at the first epoch after ``burn_in`` and the last one ends
    ``generations`` epochs later; the remaining ``final`` epochs train the final assignment."""

    def __init__(self, pool, search: dict, seed: int = 0):
        self.pool, self.s = pool, dict(search)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.gen = 0  # generations (epochs) completed
        self.history: list[dict] = []
        self.opt = None
        self._opt_state = None
        self._resumed = False
        self._hook = None
        self._fresh = 0  # modules reactivated for the current generation

    # --- checkpointed state ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"gen": self.gen, "rng": self.generator.get_state(), "history": list(self.history),
                "fresh": self._fresh, "opt": self.opt.state_dict() if self.opt is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.gen = int(state["gen"])
        self.generator.set_state(state["rng"])
        self.history = list(state["history"])
        self._opt_state = state.get("opt")
        self._fresh = int(state.get("fresh", 0))
        self._resumed = True

    # --- the loop's hooks -----------------------------------------------------------------------------
    def on_start(self, state) -> None:
        soft = self.pool.soft
        self.opt = torch.optim.Adam([soft], lr=self.s["soft_lr"])
        if self._opt_state is not None:
            self.opt.load_state_dict(self._opt_state)
            self._opt_state = None
        self._hook = soft.register_post_accumulate_grad_hook(self._step_soft)
        self.pool.refresh()
        if not self._resumed:
            self.record(0, 0, changed=0, contested=0)
            if self.contests(1):
                self.start()

    def on_epoch_end(self, state) -> None:
        if state.stop:
            return
        changed, contested = self.select() if self.pool.searching else (0, 0)
        self.gen = state.epoch
        self.record(state.epoch, state.step, changed, contested)
        if self.contests(state.epoch + 1):  # also when this run stops here: a resumed run continues it
            self.start()

    def on_end(self, state, status) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    # --- the EA ---------------------------------------------------------------------------------------
    def contests(self, epoch: int) -> bool:
        b = self.s["burn_in"]
        return b < epoch <= b + self.s["generations"]

    def _step_soft(self, soft) -> None:
        if soft.grad is not None and self.pool.searching:
            self.opt.step()
        soft.grad = None

    def start(self) -> None:
        """Contest ``fraction`` of the locations: draw challengers, reset soft weights and their optimizer."""
        p, g, lam = self.pool, self.generator, self.s["lam"]
        n_loc, dev = p.n_loc, p.champion.device
        n = max(1, math.ceil(self.s["fraction"] * n_loc))
        locs = torch.randperm(n_loc, generator=g)[:n]
        champion = p.champion.cpu()
        if n_loc > 1:  # another location's module: popular modules are drawn more often
            src = torch.randint(0, n_loc - 1, (n, lam), generator=g)
            src = src + (src >= locs[:, None]).long()
            cand = champion[src]
        else:
            cand = champion[locs][:, None].repeat(1, lam)
        react = torch.rand(n, lam, generator=g) < self.s["reactivation"]
        unused = torch.tensor(sorted(set(range(p.n_modules)) - set(champion.tolist())), dtype=torch.long)
        fresh = torch.zeros(0, dtype=torch.long)
        if react.any() and len(unused):
            picks = unused[torch.randint(0, len(unused), (int(react.sum()),), generator=g)]
            cand[react] = picks
            fresh = torch.unique(picks)
            p.fresh(fresh, g)
        alpha = self.s["alpha"]
        init = torch.zeros(n, lam + 1)
        if alpha is not None:
            init[:, 1:] = math.log(alpha / lam) - math.log(1 - alpha)
        with torch.no_grad():
            locs_d = locs.to(dev)
            p.challengers[locs_d] = cand.to(dev)
            p.contested.zero_()
            p.contested[locs_d] = True
            p.soft.zero_()
            p.soft[locs_d] = init.to(p.soft)
        self.opt.state.clear()
        p.refresh()
        self._fresh = int(len(fresh))

    def select(self) -> tuple[int, int]:
        """Keep each contested location's strongest candidate; returns (locations changed, contested)."""
        p = self.pool
        with torch.no_grad():
            locs = torch.nonzero(p.contested).squeeze(1)
            ids = torch.cat([p.champion[locs, None], p.challengers[locs]], 1)
            prob = torch.softmax(p.soft[locs].float(), -1)
            same = (ids[:, :, None] == ids[:, None, :]).float()
            total = torch.einsum("nst,nt->ns", same, prob)  # a module's weight summed over its slots
            winner = ids.gather(1, total.argmax(1, keepdim=True)).squeeze(1)  # ties: the first (champion)
            changed = int((winner != p.champion[locs]).sum())
            p.champion[locs] = winner
            p.challengers.copy_(p.champion[:, None].expand_as(p.challengers))
            p.contested.zero_()
            p.soft.zero_()
        p.refresh()
        return changed, int(len(locs))

    def record(self, epoch: int, step: int, changed: int, contested: int) -> None:
        self.history.append({"generation": int(epoch), "step": int(step),
                             "modules_in_use": int(len(self.pool.in_use())), "contested": int(contested),
                             "changed": int(changed), "reactivated": self._fresh if contested else 0})

"""Ranking (text matching): a model scores (query, candidate) pairs; the true response should score
highest among its group's candidates.

A batch is a dict (see dlx/data/textpairs.py): ``q`` (B, Lq), ``cands`` (B, C, Lr), ``label`` (B, C) with
one 1 per row, ``group`` (B,). The model is called as ``model(q, cands) -> (B, C)`` scores.

* ``loss``: the per-negative pairwise hinge of Lu & Li (2013), ``max(0, 1 - s(x, y+) + s(x, y-))`` for
  every sampled negative y- of every pair (each negative its own term, *not* one hinge on the negatives'
  average score), averaged over the B x (C - 1) terms; plus the model's own regulariser
  (``model.penalty()``, e.g. the bilinear model's L1/L2 terms) when it has one.
* ``metrics``: per-candidate ``score``, ``label`` and ``group`` (concatenated over a split, so ranking is
  over whole groups), and the summed hinge (``loss``, per group: mean over its negatives) with the count.
* ``reduce``: P@1 (the headline, higher is better) and MRR with dlx.metrics (ties broken at random,
  seeded by ``task.tie_seed``: a constant scorer gets chance, 1/C, not credit for candidate order).
  ``task.tie_seed`` defaults to the run's ``seed`` (``${seed}`` in conf/task/rank.yaml), so runs on
  different seeds break ties differently and a scorer that ties (random, inner product on disjoint
  vocabularies) shows its chance spread over seeds; a number given for it fixes the tie-break instead.
"""

from __future__ import annotations

import torch

from dlx.tasks.base import Task
from dlx.tasks.registry import register_task


def scores(model, batch) -> torch.Tensor:
    s = model(batch["q"], batch["cands"]).float()
    if s.shape != batch["cands"].shape[:2]:
        raise RuntimeError(f"a ranking model must return (batch, candidates) = "
                           f"{tuple(batch['cands'].shape[:2])} scores, got {tuple(s.shape)}")
    return s


def hinge_terms(s: torch.Tensor, label: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """(B, C) scores with one positive per row -> (B, C-1) hinge terms, one per negative."""
    pos = label > 0
    if not bool((pos.sum(1) == 1).all()):
        raise RuntimeError("every ranking row needs exactly one true candidate (label 1)")
    s_pos = s[pos]  # (B,)
    s_neg = s[~pos].reshape(s.shape[0], s.shape[1] - 1)
    return torch.clamp(margin - s_pos[:, None] + s_neg, min=0)


@register_task("rank")
class Rank(Task):
    name = "rank"
    primary = "p_at_1"
    higher_is_better = True
    accepts = ("rank",)
    loss_name = "pairwise hinge loss"

    @property
    def margin(self) -> float:
        return float(self.cfg.get("margin", 1.0)) if self.cfg is not None else 1.0

    @property
    def tie_seed(self) -> int:
        """The tie-break seed: ``task.tie_seed`` (the run's seed unless set; 0 without a config)."""
        got = self.cfg.get("tie_seed") if self.cfg is not None else None
        return 0 if got is None else int(got)

    def loss(self, model, batch) -> torch.Tensor:
        loss = hinge_terms(scores(model, batch), batch["label"], self.margin).mean()
        base = getattr(model, "module", model)  # DDP wraps the model
        penalty = getattr(base, "penalty", None)
        return loss + penalty() if callable(penalty) else loss

    def metrics(self, model, batch) -> dict[str, torch.Tensor]:
        s = scores(model, batch)
        h = hinge_terms(s, batch["label"], self.margin)
        c = s.shape[1]
        return {"loss": h.mean(1).sum(), "n": torch.tensor(s.shape[0]), "score": s.reshape(-1),
                "label": batch["label"].reshape(-1), "group": batch["group"].repeat_interleave(c)}

    def reduce(self, acc: dict) -> dict[str, float]:
        from dlx.metrics import mrr, precision_at_k

        seed = self.tie_seed
        n = max(acc.get("n", 0.0), 1.0)
        if "score" not in acc or len(acc["score"]) == 0:
            return {"loss": float("nan"), "p_at_1": float("nan"), "mrr": float("nan")}
        args = (acc["score"], acc["label"], acc["group"])
        return {"loss": acc["loss"] / n, "p_at_1": precision_at_k(*args, k=1, seed=seed),
                "mrr": mrr(*args, seed=seed)}

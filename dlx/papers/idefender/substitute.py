"""The black-box attacker's substitute model: black-box attacks are crafted on it and transferred to the
target classifier.

Two protocols (``substitute.labels``):

- ``query`` (default; Papernot et al., "Practical Black-Box Attacks against Machine Learning", 2017):
  the attacker holds ``n_query`` clean inputs the target was never trained on and no labels. It labels
  them by querying the target (the target's predicted class, not the true class), trains the substitute
  on them, and grows the set by Jacobian-based dataset augmentation: each round adds
  ``x + lambda * sign(d substitute_logit[label(x)] / dx)`` for every point (clipped to the pixel range),
  labelled by querying the target again, so the set doubles per round. The substitute is trained on and
  continues from round to round (``epochs`` per round), as in Papernot et al.'s procedure.
- ``true``: the substitute is trained like the classifier, on the true labels of the whole training split
  (an ordinary dlx train run in substitute/); an attacker that has the defender's labelled training data.

The model is the classifier's own family and size by default (``substitute.model: null``) or a named model
config. The held-out inputs are a seeded draw from the calibration split (clean validation inputs, or the
calibration half of the test split): never the target's training data, never an evaluated test input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlx.errors import DlxError

LABELS = ("query", "true")


@dataclass
class SubstituteOptions:
    labels: str
    model: str | None
    seed: int
    n_query: int
    rounds: int
    lam: float
    epochs: int

    def describe(self, n_queries: int | None = None) -> str:
        """The substitute in one phrase, for results, claims and docs."""
        model = self.model or "the classifier's own family"
        if self.labels == "true":
            return f"a substitute trained on the true labels of the training split ({model})"
        n = f" = {n_queries} target queries" if n_queries is not None else ""
        return (f"a query-labelled substitute (Papernot et al. 2017; {model}): {self.n_query} held-out "
                f"inputs + {self.rounds} Jacobian augmentation rounds{n}, labelled by the target's "
                "predictions")


def substitute_options(cfg) -> SubstituteOptions:
    """``cfg.substitute`` checked before anything is trained."""
    from dlx.config import number

    s = cfg.substitute
    # `substitute.labels=true` reaches here as the boolean True (YAML): it names the true-label protocol
    labels = "true" if s.labels is True else str(s.labels)
    if labels not in LABELS:
        raise DlxError(f"substitute.labels must be one of: {', '.join(LABELS)} (got '{labels}')")
    return SubstituteOptions(
        labels=labels, model=str(s.model) if s.model else None,
        seed=number(s.seed, "substitute.seed", integer=True),
        n_query=number(s.n_query, "substitute.n_query", lo=1, integer=True),
        rounds=number(s.augment_rounds, "substitute.augment_rounds", lo=0, hi=12, integer=True),
        lam=number(s.augment_step, "substitute.augment_step", lo=0.0, hi=1.0),
        epochs=number(s.epochs, "substitute.epochs", lo=1, integer=True))


def substitute_train_cfg(opts: SubstituteOptions, tcfg):
    """The classifier's train config with the substitute's model and seed."""
    from omegaconf import OmegaConf

    from dlx.config import compose

    scfg = OmegaConf.to_container(tcfg, resolve=True)
    if opts.model:
        scfg["model"] = OmegaConf.to_container(compose("train", [f"model={opts.model}"]).model)
    scfg["seed"] = int(opts.seed)
    return OmegaConf.create(scfg)


def pick_queries(n_pool: int, n_query: int, seed: int) -> np.ndarray:
    """Indices of the attacker's held-out inputs: a seeded draw of n_query (all when the pool is smaller)."""
    if n_query >= n_pool:
        return np.arange(n_pool)
    return np.sort(np.random.default_rng(seed).choice(n_pool, n_query, replace=False))


def jacobian_augment(pixel_model: torch.nn.Module, x_pix: np.ndarray, labels: np.ndarray, lam: float,
                     clip: tuple[float, float], device: str, batch_size: int = 512) -> np.ndarray:
    """Papernot et al.'s Jacobian-based augmentation: x + lam * sign(d f_label(x) / dx), clipped, where f is
    the substitute's logit of the label the target gave x."""
    pixel_model.eval()
    out = []
    for i in range(0, len(x_pix), batch_size):
        x = torch.as_tensor(x_pix[i : i + batch_size], device=device).clone().requires_grad_(True)
        y = torch.as_tensor(labels[i : i + batch_size], device=device, dtype=torch.long)
        logit = pixel_model(x).gather(1, y[:, None]).sum()
        (grad,) = torch.autograd.grad(logit, x)
        out.append((x.detach() + lam * grad.sign()).clamp(*clip).cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else x_pix.copy()


def _fit(model, scfg, meta, x, y, epochs: int, seed: int) -> dict:
    """``epochs`` more epochs of dlx's training loop on (x, y) (normalized inputs); its last metrics row."""
    from omegaconf import OmegaConf

    from dlx.data.bundle import DataBundle, TensorSplit
    from dlx.precision import build_precision
    from dlx.tasks import build_task
    from dlx.train import fit

    split = TensorSplit((x, y))
    trainer = OmegaConf.merge(scfg.trainer, {"epochs": int(epochs), "steps": None, "eval_every": int(epochs),
                                             "eval_points": 0, "eval_train": False, "checkpoint_every": 0,
                                             "checkpoint_minutes": None, "resume": False, "progress": "none"})
    # evaluated once at the end, on its own training set: "test_error" = disagreement with the target there
    data = DataBundle(train=split, test=split, val=None, meta=meta)
    hist = fit(model, build_task(scfg.task, meta), data, build_precision(scfg.precision, str(x.device)),
               trainer, scfg.optimizer, seed=seed)
    if hist.status != "completed":
        raise DlxError(f"training the query-labelled substitute ended '{hist.status}'")
    return hist.final


def query_substitute(opts: SubstituteOptions, tcfg, target, x_pool_pix: np.ndarray, out_dir: Path | None,
                     y_pool: np.ndarray | None = None):
    """Train the substitute on the target's labels of held-out inputs (+ Jacobian augmentation).

    ``target`` is experiment.Target (predict / model_input in pixel space); ``x_pool_pix`` the attacker's
    pool of clean held-out inputs in pixels; ``y_pool`` their true labels, only recorded (labels.csv) to show
    where the target's labels differ, never used for training. Returns (model in eval mode, labelled set
    (x_pix, labels, round), per-round table)."""
    import pandas as pd
    from omegaconf import OmegaConf

    from dlx.device import seed_everything
    from dlx.models import build_model
    from dlx.papers.idefender.wrap import PixelModel
    from dlx.runs import save_torch, write_csv

    scfg = substitute_train_cfg(opts, tcfg)
    meta = target.meta
    idx = pick_queries(len(x_pool_pix), opts.n_query, opts.seed)
    if len(idx) == 0:
        raise DlxError("the attacker has no held-out input to query (the calibration split is empty)")
    x = np.asarray(x_pool_pix[idx], dtype=np.float32)
    labels = target.predict(x)  # the oracle: the target's predicted class, the only label the attacker gets
    rounds = np.zeros(len(x), dtype=np.int64)
    seed_everything(opts.seed)
    model = build_model(scfg.model, meta).to(target.device)
    pixel_model = PixelModel(model, target.mean, target.std).to(target.device)
    rows = []
    for r in range(opts.rounds + 1):
        xt = target.model_input(x)
        yt = torch.as_tensor(labels, device=target.device, dtype=torch.long)
        last = _fit(model, scfg, meta, xt, yt, opts.epochs, opts.seed + r)
        rows.append({"round": r, "n_labelled": len(x), "queries": len(x), "epochs": opts.epochs,
                     "train_disagreement": last.get("test_error")})
        if r == opts.rounds:
            break
        new = jacobian_augment(pixel_model, x, labels, opts.lam, target.clip, target.device)
        x = np.concatenate([x, new])
        labels = np.concatenate([labels, target.predict(new)])
        rounds = np.concatenate([rounds, np.full(len(new), r + 1)])
    model.eval()
    table = pd.DataFrame(rows)
    if out_dir is not None:
        write_csv(out_dir / "rounds.csv", table)
        true = np.full(len(x), -1)
        if y_pool is not None:
            true[: len(idx)] = np.asarray(y_pool)[idx]
        write_csv(out_dir / "labels.csv", pd.DataFrame({"round": rounds, "label": labels,
                                                        "true_label": true}))
        save_torch(out_dir / "weights.pt", {"model": model.state_dict(),
                                            "model_cfg": OmegaConf.to_container(scfg.model)})
    return model, (x, labels, rounds), table


def true_label_substitute(opts: SubstituteOptions, tcfg, run_dir: Path):
    """The earlier protocol: a dlx train run on the true labels of the training split, in ``run_dir``."""
    from dlx.papers.idefender.classifier import train_child

    return train_child(substitute_train_cfg(opts, tcfg), run_dir)[1].model


def substitute(opts: SubstituteOptions, tcfg, target, run, x_pool_pix: np.ndarray,
               y_pool: np.ndarray | None = None) -> tuple[torch.nn.Module, int | None]:
    """(substitute model in eval mode, number of target queries it took; None for true labels)."""
    if opts.labels == "true":
        return true_label_substitute(opts, tcfg, run.path("substitute")), None
    model, (x, _, _), _ = query_substitute(opts, tcfg, target, x_pool_pix, run.path("substitute"), y_pool)
    return model, len(x)

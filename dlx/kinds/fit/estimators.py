"""Non-torch baselines (the ``baseline`` config group): scikit-learn estimators built for a task, and
``Predictor``, which lets a fitted estimator stand where a model goes, so the task's own metrics score it
exactly as they score a network."""

from __future__ import annotations

import numpy as np
import torch

from dlx.config import number
from dlx.errors import DlxError

FITS = {"logistic": ("classify", "binary"), "ridge": ("regress",), "gbt": ("classify", "binary", "regress")}
ROUNDS = {"gbt": "max_iter"}  # the key of a boosted baseline's rounds: its fit and scoring cost grow with it
SCORE_BATCH = 65536  # rows per predict call scoring a fit: an ensemble pays a cost per call


def build_estimator(cfg, task: str, seed: int = 0):
    """The estimator ``cfg.name`` for task family ``task``, or one clear error."""
    name = cfg.get("name")
    if name not in FITS:
        raise DlxError(f"unknown baseline '{name}' (choose from: {', '.join(sorted(FITS))})")
    if task not in FITS[name]:
        fits = [n for n, t in sorted(FITS.items()) if task in t]
        raise DlxError(f"baseline '{name}' does not fit task '{task}' (choose from: {', '.join(fits)})")
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=number(cfg.C, "baseline.C", lo=0), max_iter=int(cfg.max_iter),
                                  random_state=seed)
    if name == "ridge":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=number(cfg.alpha, "baseline.alpha", lo=0))
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regress" else HistGradientBoostingClassifier
    return cls(max_iter=number(cfg.max_iter, "baseline.max_iter", lo=1, integer=True),
               learning_rate=number(cfg.learning_rate, "baseline.learning_rate", lo=0),
               max_leaf_nodes=number(cfg.max_leaf_nodes, "baseline.max_leaf_nodes", lo=2, integer=True),
               early_stopping=bool(cfg.early_stopping), random_state=seed)


def arrays(split) -> tuple[np.ndarray, np.ndarray]:
    """An (x, y) split as a 2-D feature matrix and a target vector."""
    x, y = split.x.cpu().numpy(), split.y.cpu().numpy()
    return x.reshape(len(x), -1), y


class Predictor(torch.nn.Module):
    """A fitted estimator as a parameter-free module with the outputs a task expects: log-probabilities
    (classify), a logit (binary), a prediction (regress)."""

    def __init__(self, estimator, task: str, num_classes: int | None = None):
        super().__init__()
        self.estimator, self.task, self.num_classes = estimator, task, num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x.detach().cpu().numpy().reshape(len(x), -1)
        if self.task == "regress":
            out = self.estimator.predict(feats)
        else:
            p = np.clip(self.estimator.predict_proba(feats), 1e-12, 1.0)
            if self.task == "binary":
                out = np.log(p[:, 1]) - np.log(p[:, 0])
            else:  # columns for every class, also those absent from the training rows
                out = np.full((len(feats), int(self.num_classes)), np.log(1e-12))
                out[:, self.estimator.classes_.astype(int)] = np.log(p)
        return torch.as_tensor(np.asarray(out, np.float32), device=x.device)

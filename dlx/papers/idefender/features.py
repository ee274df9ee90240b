"""What the detectors see of a classifier: hidden fully connected outputs (forward hooks), logits,
predictions and Monte-Carlo dropout probabilities.

Layer names are model-independent: ``fc1 .. fcK`` are the outputs of the K hidden fully connected
layers (after their activation), taken as the inputs of the 2nd .. last ``nn.Linear`` in forward order;
``logits`` is the model's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from dlx.errors import DlxError


@dataclass
class Observed:
    """A set of inputs as the detectors see it (numpy, one row per input)."""

    feats: dict[str, np.ndarray]
    logits: np.ndarray
    mc_probs: np.ndarray | None = None  # (T, N, C) softmax outputs with dropout on

    @property
    def pred(self) -> np.ndarray:
        return self.logits.argmax(1)

    def __len__(self) -> int:
        return len(self.logits)

    def take(self, idx) -> Observed:
        return Observed({k: v[idx] for k, v in self.feats.items()}, self.logits[idx],
                        None if self.mc_probs is None else self.mc_probs[:, idx])


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def layer_names(model: nn.Module) -> list[str]:
    """Valid feature layers of ``model``: fc1..fcK for its K hidden fully connected layers, then logits."""
    return [f"fc{i}" for i in range(1, len(linears(model)))] + ["logits"]


def check_layers(model: nn.Module, names) -> list[str]:
    valid = layer_names(model)
    names = [str(n) for n in names]
    for n in names:
        if n not in valid:
            raise DlxError(f"unknown feature layer '{n}' for this classifier "
                           f"(choose from: {', '.join(valid)})")
    if not names:
        raise DlxError(f"no feature layer given (choose from: {', '.join(valid)})")
    return names


def has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


@torch.no_grad()
def observe(model: nn.Module, x: torch.Tensor, batch_size: int = 1024, mc_samples: int = 0,
            seed: int = 0) -> Observed:
    """Run ``model`` (eval mode) over normalized inputs ``x``; collect every hidden FC output and logits.

    With ``mc_samples`` > 0 and dropout in the model, also ``mc_samples`` stochastic passes with only
    the dropout layers in training mode (Gal & Ghahramani's MC dropout, as Feinman et al. use it).
    """
    lin = linears(model)
    store: dict[str, list[torch.Tensor]] = {f"fc{i}": [] for i in range(1, len(lin))}

    def hook(name):
        return lambda _m, inputs: store[name].append(inputs[0].detach().flatten(1).float().cpu())

    handles = [m.register_forward_pre_hook(hook(f"fc{i}")) for i, m in enumerate(lin) if i > 0]
    was_training = model.training
    model.eval()
    logits = []
    try:
        for i in range(0, len(x), batch_size):
            logits.append(model(x[i : i + batch_size]).float().cpu())
    finally:
        for h in handles:
            h.remove()
    feats = {k: torch.cat(v).numpy() if v else np.zeros((0, 0), np.float32) for k, v in store.items()}
    out = torch.cat(logits).numpy() if logits else np.zeros((0, 0), np.float32)
    feats["logits"] = out
    mc = None
    if mc_samples > 0 and has_dropout(model) and len(x):
        torch.manual_seed(seed)
        drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
        for m in drops:
            m.train()
        try:
            mc = np.stack([torch.cat([model(x[i : i + batch_size]).softmax(1).float().cpu()
                                      for i in range(0, len(x), batch_size)]).numpy()
                           for _ in range(mc_samples)])
        finally:
            for m in drops:
                m.eval()
    model.train(was_training)
    return Observed(feats, out, mc)

"""Checkpoints hold everything needed to continue bit-for-bit on CPU: weights, optimizer, schedule,
loss scaler, the batch-order generator, torch's RNG, the history so far and the state of every callback
that keeps one. Loaded with weights_only=True, so a checkpoint can never run code."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from dlx.errors import DlxError
from dlx.runs import save_torch


def state_to_checkpoint(state) -> dict:
    ckpt = {"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(), "precision": state.precision.state_dict(),
            "epoch": state.epoch, "step": state.step, "generator": state.generator.get_state(),
            "rng": torch.get_rng_state(), "history": state.history, "first_loss": state.first_loss,
            "wall_s": state.wall_s, "batch_in_epoch": state.batch_in_epoch,
            "callbacks": {cb.state_key: sd for cb in state.callbacks if (sd := cb.state_dict())}}
    if state.batch_in_epoch:
        ckpt["epoch_generator"] = state.epoch_generator
    if torch.cuda.is_available():
        ckpt["cuda_rng"] = torch.cuda.get_rng_state_all()
    return ckpt


def save_checkpoint(path: Path, state) -> Path:
    return save_torch(path, state_to_checkpoint(state))


def read_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DlxError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise DlxError(f"refusing to load {path}: it holds more than tensors and plain values "
                       f"({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # torch reports truncation many ways
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DlxError(f"cannot read checkpoint {path}: damaged or truncated ({detail[:120]})") from None
    except Exception as err:  # zipfile, struct, ... errors from a damaged archive: still bad input
        raise DlxError(f"cannot read checkpoint {path}: damaged or truncated "
                       f"({type(err).__name__})") from None


def load_weights(model: torch.nn.Module, state_dict: dict, path: Path) -> None:
    if not isinstance(state_dict, dict):
        raise DlxError(f"checkpoint {path} holds no model weights")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise DlxError(f"checkpoint {path} does not fit this model ({detail[:160]})") from None


def load_checkpoint(path: Path, state) -> None:
    ckpt = read_checkpoint(path)
    load_weights(state.model, ckpt["model"], path)
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    state.precision.load_state_dict(ckpt.get("precision", {}))
    state.generator.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["rng"])
    if "cuda_rng" in ckpt and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    state.epoch, state.step = int(ckpt["epoch"]), int(ckpt["step"])
    state.history = list(ckpt.get("history", []))
    state.first_loss = ckpt.get("first_loss")
    state.wall_s = float(ckpt.get("wall_s", 0.0))
    state.batch_in_epoch = int(ckpt.get("batch_in_epoch", 0))
    state.epoch_generator = ckpt.get("epoch_generator")
    saved = ckpt.get("callbacks", {})
    for cb in state.callbacks:
        if cb.state_key in saved:
            cb.load_state_dict(saved[cb.state_key])

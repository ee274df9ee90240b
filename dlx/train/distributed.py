"""Data-parallel training under torchrun (`trainer.strategy=ddp`): gloo on CPU, nccl on CUDA.

Every rank holds the whole (small) dataset and draws the same batch order; each trains on its slice
of every batch and DDP averages the gradients, so N ranks follow the single-process trajectory up to
floating-point summation order (and unequal slices of a short last batch). Rank 0 alone writes."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from dlx.errors import DlxError


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init(strategy: str) -> None:
    """Join the process group torchrun set up (RANK, WORLD_SIZE, MASTER_ADDR in the environment)."""
    if strategy in (None, "none", "single"):
        return
    if strategy != "ddp":
        raise DlxError(f"unknown trainer.strategy '{strategy}' (choose from: none, ddp)")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise DlxError("trainer.strategy=ddp runs under torchrun: torchrun --nproc_per_node=N -m dlx train "
                       "trainer.strategy=ddp ...")
    if not active():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)


def device_for_rank(device: str) -> str:
    if active() and device.startswith("cuda"):
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def broadcast_str(text: str | None) -> str | None:
    """Rank 0's value on every rank (e.g. the run directory, resolved once)."""
    if not active():
        return text
    box = [text]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(batch):
    """This rank's slice of a (tuple or dict) batch; None when it is too short to give every rank a sample."""
    from dlx.data.bundle import batch_size_of, map_batch

    n = world()
    if n == 1:
        return batch
    if batch_size_of(batch) < n:
        return None
    r = rank()
    return map_batch(batch, lambda t: t[r::n])


def mean_loss(loss: torch.Tensor) -> torch.Tensor:
    """The batch loss averaged over ranks, so every rank's divergence check sees the same number."""
    if not active():
        return loss
    loss = loss.clone()
    dist.all_reduce(loss)
    return loss / world()


def barrier() -> None:
    if active():
        dist.barrier()


def shutdown() -> None:
    if active():
        dist.destroy_process_group()

"""The throughput workloads: a model, one synthetic batch already on the device, its loss, and what
one training step processes (images, target tokens or samples)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dlx.errors import DlxError


@dataclass
class Workload:
    name: str
    paper: str  # the Table 1 model it stands in for
    unit: str  # what throughput counts, per second
    default_batch: int
    image: bool  # 4-D NCHW input: channels_last applies
    make: Callable  # (batch, device, generator) -> (model, batch tuple, loss_fn, items per step)


def _images(model_fn, image_size: int = 32, classes: int = 10):
    def make(batch: int, device: str, gen: torch.Generator):
        from dlx.papers.bench.models import image_loss

        x = torch.randn(batch, 3, image_size, image_size, generator=gen).to(device)
        y = torch.randint(0, classes, (batch,), generator=gen).to(device)
        return model_fn(classes).to(device), (x, y), image_loss, batch

    return make


def _resnet18k(classes: int):
    from omegaconf import OmegaConf

    from dlx.data.bundle import Meta
    from dlx.models import build_model

    meta = Meta("synthetic", "classify", (3, 32, 32), classes)
    return build_model(OmegaConf.create({"name": "resnet18k", "width": 16, "batchnorm": True}), meta)


def _alexnet(classes: int):
    from dlx.papers.bench.models import AlexNetSmall

    return AlexNetSmall(classes)


def _mobilenet(classes: int):
    from dlx.papers.bench.models import MobileNetSmall

    return MobileNetSmall(classes)


def _lstm(batch: int, device: str, gen: torch.Generator, vocab: int = 2000, src_len: int = 24,
          tgt_len: int = 24):
    from dlx.papers.bench.models import Seq2Seq, seq2seq_loss

    src = torch.randint(0, vocab, (batch, src_len), generator=gen).to(device)
    tgt = torch.randint(0, vocab, (batch, tgt_len + 1), generator=gen).to(device)
    return Seq2Seq(vocab).to(device), (src, tgt), seq2seq_loss, batch * tgt_len


def _ncf(batch: int, device: str, gen: torch.Generator, users: int = 20000, items: int = 10000):
    from dlx.papers.bench.models import NCF, ncf_loss

    u = torch.randint(0, users, (batch,), generator=gen).to(device)
    i = torch.randint(0, items, (batch,), generator=gen).to(device)
    clicked = torch.randint(0, 2, (batch,), generator=gen).float().to(device)
    return NCF(users, items).to(device), (u, i, clicked), ncf_loss, batch


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("alexnet", "AlexNet", "images/s", 32, True, _images(_alexnet)),
    Workload("resnet18k", "ResNet-50", "images/s", 32, True, _images(_resnet18k)),
    Workload("mobilenet", "MobileNet", "images/s", 32, True, _images(_mobilenet)),
    Workload("lstm", "GNMTv2", "tokens/s", 32, False, _lstm),
    Workload("ncf", "NCF", "samples/s", 2048, False, _ncf),
)}


def workload(name: str) -> Workload:
    if name not in WORKLOADS:
        raise DlxError(f"unknown bench model '{name}' (choose from: {', '.join(WORKLOADS)})")
    return WORKLOADS[name]

"""What every dataset builder produces: splits, metadata, and an optional training-batch augmentation.

A split is anything with ``__len__`` and ``batches(batch_size, shuffle, generator)``; a batch is a tuple
or a dict of tensors sharing their first (example) axis. ``TensorSplit`` is the default split: small
data held as tensors (already on the device), sliced without a DataLoader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch

Batch = tuple | dict


@dataclass
class Meta:
    """Facts about a dataset that models and tasks adapt to."""

    name: str
    task: str  # the data family a task must accept: classify, binary, regress (rank, forecast, ... later)
    input_shape: tuple[int, ...]  # per example, channels first: (C, H, W), (C, L) or (L,)
    num_classes: int | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    extra: dict = field(default_factory=dict)
    num_outputs: int | None = None  # width of the model's output; classification: num_classes

    def __post_init__(self) -> None:
        if self.num_outputs is None and self.num_classes:
            self.num_outputs = int(self.num_classes)


def map_batch(batch: Batch, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
    """``fn`` applied to every tensor of a tuple or dict batch, keeping its structure."""
    if isinstance(batch, dict):
        return {k: fn(v) for k, v in batch.items()}
    return tuple(fn(v) for v in batch)


def first_tensor(batch: Batch) -> torch.Tensor:
    return next(iter(batch.values())) if isinstance(batch, dict) else batch[0]


def batch_size_of(batch: Batch) -> int:
    return int(first_tensor(batch).shape[0])


class Split(Protocol):
    """The protocol fit(), evaluate() and the experiments rely on."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[Batch]: ...

    def to(self, device) -> Split:
        """This split with its tensors on ``device`` (build_data calls it once)."""


class TensorSplit:
    """A split held as tensors with a common first axis: ``TensorSplit((x, y))`` or ``TensorSplit({...})``.
    Batches have the structure of ``fields``; ``x`` and ``y`` name the two tensors of an (x, y) split."""

    def __init__(self, fields: Batch):
        self.fields = fields if isinstance(fields, dict) else tuple(fields)
        sizes = {batch_size_of((t,)) for t in (fields.values() if isinstance(fields, dict) else fields)}
        if len(sizes) != 1:
            raise ValueError(f"tensors of a split must share their first axis, got sizes {sorted(sizes)}")

    @property
    def x(self) -> torch.Tensor:
        return self.fields["x"] if isinstance(self.fields, dict) else self.fields[0]

    @property
    def y(self) -> torch.Tensor:
        return self.fields["y"] if isinstance(self.fields, dict) else self.fields[1]

    def __len__(self) -> int:
        return batch_size_of(self.fields)

    def to(self, device) -> TensorSplit:
        return TensorSplit(map_batch(self.fields, lambda t: t.to(device)))

    def take(self, index) -> TensorSplit:
        """The examples at ``index`` (a tensor of indices or a slice) as a new split."""
        return TensorSplit(map_batch(self.fields, lambda t: t[index]))

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Slice mini-batches without a DataLoader; the permutation is drawn from ``generator``."""
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=generator).to(first_tensor(self.fields).device)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                yield map_batch(self.fields, lambda t, idx=idx: t[idx])
        else:
            for i in range(0, n, batch_size):
                yield map_batch(self.fields, lambda t, i=i: t[i : i + batch_size])


Augment = Callable[[Batch, torch.Generator], Batch]


@dataclass
class DataBundle:
    """train/test (and optional val) splits, metadata, an augmentation of training batches, and ``notes``:
    what a builder's preparation did that a run may want to record (e.g. classification's label noise)."""

    train: Split
    test: Split
    val: Split | None
    meta: Meta
    augment: Augment | None = None  # applied to training batches only
    notes: dict = field(default_factory=dict)

    def split(self, name: str) -> Split:
        from dlx.errors import DlxError

        s = {"train": self.train, "test": self.test, "val": self.val}.get(name)
        if s is None:
            raise DlxError(f"split '{name}' is not available for data '{self.meta.name}' (choose train, test"
                           + (", val" if self.val is not None else "; set data.val_fraction>0 for val") + ")")
        return s

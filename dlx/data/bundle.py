"""What every dataset builder returns: splits as device tensors plus metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Meta:
    """Facts about a dataset that models and tasks adapt to."""

    name: str
    task: str  # "classify" now; "forecast", "match", "multitask" later
    input_shape: tuple[int, ...]  # per example, channels first: (C, H, W), (C, L) or (L,)
    num_classes: int | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Split:
    """One split held as tensors (already on the device for small data)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Slice mini-batches without a DataLoader; the permutation is drawn from ``generator``."""
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=generator).to(self.x.device)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                yield self.x[idx], self.y[idx]
        else:
            for i in range(0, n, batch_size):
                yield self.x[i : i + batch_size], self.y[i : i + batch_size]


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class DataBundle:
    """train/test (and optional val) splits, metadata, and what was done to the training labels."""

    train: Split
    test: Split
    val: Split | None
    meta: Meta
    augment: Augment | None = None  # applied to training batches only
    train_clean_y: np.ndarray | None = None  # training labels before label noise
    noise_mask: np.ndarray | None = None  # bool per training example: label was changed

    def split(self, name: str) -> Split:
        from dlx.errors import DlxError

        s = {"train": self.train, "test": self.test, "val": self.val}.get(name)
        if s is None:
            raise DlxError(f"split '{name}' is not available for data '{self.meta.name}' (choose train, test"
                           + (", val" if self.val is not None else "; set data.val_fraction>0 for val") + ")")
        return s

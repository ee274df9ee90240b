"""Multi-task data (the MUiR experiments) and the three offline member datasets they need.

``muir_crossmodal`` (and ``muir_crossmodal_cifar``, its paper-scale task list): several datasets, one per
task (``tasks.<name>``: any data config), as one bundle. Its splits are ``MultiTaskSplit``s:
 * ``batches(batch_size, shuffle=True)`` is joint training: each batch is ``{task: sub_batch}`` with one
   batch of every task (``tasks.<name>.batch_size``, else ``batch_size``), each task cycling through its own
   reshuffled examples; an epoch is ``epoch_examples / batch_size`` joint batches (``epoch_examples`` null:
   the largest task's training set), and ``len()`` is ``epoch_examples``.
 * ``batches(batch_size, shuffle=False)`` is evaluation: every example of every task once, one task at a
   time (``{task: sub_batch}`` with a single key).
``Meta.extra['tasks']`` holds each task's own Meta (what its model and task are built for) and
``Meta.extra['modality']`` its modality.

``muir_kang``: the Kang et al. (2011)-style synthetic benchmark, generated (seeded; see ``kang_tasks``).
``chars``: next-character language modelling on English text that ships with Python (the pydoc topics of
``pydoc_data``), or a UTF-8 text file given as ``root``. ``dna_motifs``: DeepBind-style regression on
random DNA with planted motifs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from dlx.data.bundle import DataBundle, Meta, TensorSplit
from dlx.data.prep import opt
from dlx.data.registry import register_data
from dlx.errors import DlxError


class TaskBatch(dict):
    """One batch of several tasks: ``{task: item}`` that also holds the items joined along a new first axis,
    in key order (``joined``): tasks of one shape travel through sampling, the model and the loss as one
    tensor, and anything that wants them one by one reads the dict. (Not a stacked sweep: that is
    dlx/models/stacked.py.)"""

    def __init__(self, items: dict, joined):
        super().__init__(items)
        self.joined = joined


class MultiTaskSplit:
    """One split of several tasks (see the module docstring for the two ways it batches)."""

    def __init__(self, splits: dict, epoch_examples: int | None = None, batch_sizes: dict | None = None):
        if not splits:
            raise DlxError("a multi-task split needs at least one task")
        self.splits = dict(splits)
        self.epoch_examples = int(epoch_examples) if epoch_examples else max(len(s) for s in splits.values())
        self.batch_sizes = {k: int(v) for k, v in (batch_sizes or {}).items() if v}

    def __len__(self) -> int:
        return self.epoch_examples

    @property
    def tasks(self) -> list[str]:
        return list(self.splits)

    def examples(self) -> int:
        return sum(len(s) for s in self.splits.values())

    def to(self, device) -> MultiTaskSplit:
        return MultiTaskSplit({k: s.to(device) for k, s in self.splits.items()}, self.epoch_examples,
                              self.batch_sizes)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        if not shuffle:
            for name, split in self.splits.items():
                for b in split.batches(batch_size):
                    yield {name: b}
            return
        steps = max(1, math.ceil(self.epoch_examples / batch_size))
        joined = self._joined(batch_size)
        if joined is not None:
            yield from _joined_cycle(self.tasks, *joined, steps, generator)
            return
        streams = {k: _cycle(s, self.batch_sizes.get(k, batch_size), generator)
                   for k, s in self.splits.items()}
        for _ in range(steps):
            yield {k: next(it) for k, it in streams.items()}

    def _joined(self, batch_size: int):
        """Tasks whose training splits are (x, y) tensors of one shape and share a batch size (the synthetic
        benchmark's 30 tasks) are drawn together: (fields joined over tasks, batch size), else None."""
        splits = list(self.splits.values())
        sizes = {self.batch_sizes.get(k, batch_size) for k in self.splits}
        if len(splits) < 2 or len(sizes) != 1 or not all(isinstance(s, TensorSplit) and
                                                         isinstance(s.fields, tuple) for s in splits):
            return None
        shapes = {tuple(tuple(t.shape) for t in s.fields) for s in splits}
        if len(shapes) != 1:
            return None
        if getattr(self, "_joined_fields", None) is None:
            self._joined_fields = tuple(torch.stack([s.fields[i] for s in splits])
                                for i in range(len(splits[0].fields)))
        return self._joined_fields, sizes.pop()


def _cycle(split, batch_size: int, generator):
    """Endless batches of one task: a fresh permutation each pass, full batches only (a split smaller than
    the batch is one batch)."""
    n = len(split)
    if n == 0:
        raise DlxError("a task of a multi-task split has no training examples")
    b = min(batch_size, n)
    while True:
        for batch in split.batches(b, shuffle=True, generator=generator):
            if len(next(iter(batch.values())) if isinstance(batch, dict) else batch[0]) == b:
                yield batch


def _joined_cycle(names: list[str], fields: tuple, batch_size: int, steps: int, generator):
    """``_cycle`` for tasks of one shape at once: every task its own permutation, one gather per field."""
    t, n = fields[0].shape[:2]
    b = min(batch_size, n)
    rows = torch.arange(t, device=fields[0].device)[:, None]
    per_pass, done = n // b, 0
    while done < steps:
        order = torch.rand(t, n, generator=generator).argsort(1).to(fields[0].device)
        for i in range(min(per_pass, steps - done)):
            idx = order[:, i * b:(i + 1) * b]
            got = tuple(f[rows, idx] for f in fields)
            yield TaskBatch({name: tuple(g[j] for g in got) for j, name in enumerate(names)}, got)
        done += min(per_pass, steps - done)


def _multi_meta(name: str, metas: dict, modality: dict, **extra) -> Meta:
    return Meta(name, "multitask", (len(metas),), num_outputs=len(metas),
                extra={"tasks": metas, "modality": modality, **extra})


@register_data("muir_crossmodal")
@register_data("muir_crossmodal_cifar")
def build_multitask(cfg) -> DataBundle:
    """Each ``tasks.<name>`` is a data config of its own (digits, chars, dna_motifs, cifar10, ...);
    ``select`` keeps some of them (null: all); a task's ``modality`` names its domain."""
    from omegaconf import ListConfig

    from dlx.data.registry import build_data  # not dlx.data's: that would import the package from its module

    tasks = opt(cfg, "tasks", {})
    if not tasks:
        raise DlxError("data.tasks is empty: a multitask dataset needs at least one task")
    select = opt(cfg, "select")
    if select is not None:
        if isinstance(select, str):
            select = [select]
        select = list(select) if isinstance(select, (list, ListConfig)) else None
        if not select or any(s not in tasks for s in select):
            raise DlxError(f"data.select must name tasks of data.tasks ({', '.join(tasks)}), got "
                           f"{opt(cfg, 'select')!r}")
    names = [n for n in tasks if select is None or n in select]
    bundles = {n: build_data(tasks[n]) for n in names}
    metas = {n: b.meta for n, b in bundles.items()}
    modality = {n: str(tasks[n].get("modality") or n) for n in names}
    sizes = {n: tasks[n].get("batch_size") for n in names}
    for n, b in bundles.items():
        if b.augment is not None:
            raise DlxError(f"data.tasks.{n}.augment: augmentation is not supported inside a multitask "
                           "dataset")
    vals = {n: b.val for n, b in bundles.items() if b.val is not None}
    return DataBundle(
        train=MultiTaskSplit({n: b.train for n, b in bundles.items()}, opt(cfg, "epoch_examples"), sizes),
        test=MultiTaskSplit({n: b.test for n, b in bundles.items()}),
        val=MultiTaskSplit(vals) if vals else None,
        meta=_multi_meta(str(opt(cfg, "name", "multitask")), metas, modality))


# --- the Kang et al. (2011)-style synthetic benchmark -------------------------------------------------------

def kang_tasks(seed: int = 0, tasks: int = 30, groups: int = 3, dim: int = 20, n_train: int = 10,
               n_val: int = 5, n_test: int = 50, noise: float = 0.0, scale=(0.5, 1.5),
               shared: bool = True) -> dict:
    """The generator, as arrays.

    Default (``shared`` true), the premise MUiR exploits: every group g has a direction ``d_g ~ N(0, I_dim)``
    and task t of group ``g(t) = t // (tasks / groups)`` has the weight ``w_t = s_t d_g(t)``, so the ten
    tasks of a group are scaled copies of one vector; a per-task scale ``s_t ~ U(scale)``; inputs
    ``x ~ U(-1, 1)^dim``; targets ``y = x . w_t + noise * N(0, 1)`` (the noisy variant adds the noise to every
    split, test included, as the benchmark's noisy files do).

    Negative control (``shared`` false): tasks that share nothing. Task t gets a direction of its own,
    ``d_t ~ N(0, I_dim)`` independently for every task, and ``w_t = s_t d_t``. Everything else is kept: the
    same scales, inputs and noise draws (the same numbers, for the same seed), hence the same distribution of
    each task's weight, inputs and targets, and the same nominal groups ``g(t)`` (the oracle still shares a
    module within them and the adjusted Rand index is still scored against them) -- only the shared direction
    that makes the groups real is gone.

    Draws come from ``default_rng(seed)`` in a fixed order (group directions, scales, then per task
    train/val/test inputs, then the noise), so the clean and noisy variants of a seed share inputs and
    weights; the control's own directions come from a second stream (``default_rng([seed, 1])``) so that
    every other draw matches the default's."""
    if tasks < 1 or groups < 1 or tasks % groups:
        raise DlxError(f"data.tasks ({tasks}) must be a positive multiple of data.groups ({groups})")
    if min(dim, n_train, n_test) < 1 or n_val < 0 or noise < 0:
        raise DlxError("data.dim, n_train and n_test must be >= 1, n_val and noise >= 0")
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(groups, dim))
    lo, hi = (float(s) for s in scale)
    scales = rng.uniform(lo, hi, size=tasks)
    group = np.arange(tasks) // (tasks // groups)
    own = directions[group] if shared else np.random.default_rng([seed, 1]).normal(size=(tasks, dim))
    w = scales[:, None] * own
    n = n_train + n_val + n_test
    x = rng.uniform(-1, 1, size=(tasks, n, dim))
    clean = np.einsum("tnd,td->tn", x, w)
    y = clean + noise * rng.normal(size=clean.shape)
    cut = np.cumsum([n_train, n_val])
    return {"x": np.split(x, cut, axis=1), "y": np.split(y, cut, axis=1), "group": group, "w": w,
            "directions": directions if shared else own, "scales": scales, "shared": bool(shared)}


@register_data("muir_kang")
def build_kang(cfg) -> DataBundle:
    """30 linear regression tasks in 3 groups of 10 (see ``kang_tasks``), as a multitask bundle of tasks
    ``t00`` .. ``t29``; ``noise`` 0 is the clean variant, 0.3 the noisy one; ``shared`` false is the negative
    control (30 tasks that share nothing, groups in name only)."""
    from dlx.config import number

    tasks = number(opt(cfg, "tasks", 30), "data.tasks", lo=1, integer=True)
    groups = number(opt(cfg, "groups", 3), "data.groups", lo=1, integer=True)
    d = kang_tasks(int(opt(cfg, "seed", 0)), tasks, groups, number(opt(cfg, "dim", 20), "data.dim", lo=1,
                                                                    integer=True),
                   number(opt(cfg, "n_train", 10), "data.n_train", lo=1, integer=True),
                   number(opt(cfg, "n_val", 5), "data.n_val", lo=0, integer=True),
                   number(opt(cfg, "n_test", 50), "data.n_test", lo=1, integer=True),
                   number(opt(cfg, "noise", 0.0), "data.noise", lo=0), list(opt(cfg, "scale", [0.5, 1.5])),
                   _flag(opt(cfg, "shared", True), "data.shared"))
    names = [f"t{i:02d}" for i in range(tasks)]
    dim = d["x"][0].shape[-1]
    meta_t = {n: Meta(n, "regress", (dim,), num_outputs=1, extra={"target_std": 1.0}) for n in names}

    def split(i: int):
        return {n: TensorSplit((torch.as_tensor(d["x"][i][t], dtype=torch.float32),
                                torch.as_tensor(d["y"][i][t], dtype=torch.float32)))
                for t, n in enumerate(names)}

    val = split(1) if d["x"][1].shape[1] else None
    meta = _multi_meta("muir_kang", meta_t, {n: "synthetic" for n in names},
                       groups=d["group"].tolist(), weights=d["w"].tolist(), shared=d["shared"])
    return DataBundle(train=MultiTaskSplit(split(0), opt(cfg, "epoch_examples")),
                      test=MultiTaskSplit(split(2)), val=MultiTaskSplit(val) if val else None, meta=meta)


def _flag(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise DlxError(f"{where} must be true or false, got {value!r}")
    return value


# --- character language modelling on text that ships with Python -------------------------------------------

def read_text(root) -> tuple[str, str]:
    """(text, where it came from): ``root`` null -> the pydoc topics of ``pydoc_data`` (sorted by topic),
    else the UTF-8 text file ``root`` (or the one .txt / .raw file in the folder ``root``)."""
    if root is None:
        from pydoc_data.topics import topics

        return "\n".join(topics[k] for k in sorted(topics)), "pydoc_data.topics"
    path = Path(str(root)).expanduser()
    if path.is_dir():
        txt = sorted(path.glob("*.txt")) + sorted(path.glob("*.raw"))
        if len(txt) != 1:
            raise DlxError(f"data.root {path} must be a UTF-8 text file or a folder with exactly one "
                           f".txt/.raw file (found {len(txt)})")
        path = txt[0]
    if not path.is_file():
        raise DlxError(f"data.root {path} does not exist (give a UTF-8 text file, or null for the pydoc "
                       "topics)")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError as err:
        raise DlxError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


@register_data("chars", root="optional")
def build_chars(cfg) -> DataBundle:
    """Contiguous train / val / test parts of the text (``val_fraction``, ``test_fraction``, first
    ``max_chars`` characters); characters seen fewer than ``min_count`` times in training map to id 0
    (unknown). Examples are non-overlapping windows: ``x`` = ``seq_len`` characters, ``y`` = the same
    shifted by one, so every character is predicted once; each window starts from a zero LSTM state."""
    from dlx.config import number

    text, source = read_text(opt(cfg, "root"))
    cap = opt(cfg, "max_chars")
    if cap is not None:
        text = text[:number(cap, "data.max_chars", lo=1, integer=True)]
    seq = number(opt(cfg, "seq_len", 32), "data.seq_len", lo=1, integer=True)
    fv = number(opt(cfg, "val_fraction", 0.0), "data.val_fraction", lo=0, hi=1, closed_hi=False)
    ft = number(opt(cfg, "test_fraction", 0.1), "data.test_fraction", lo=0, hi=1, closed_hi=False)
    if fv + ft >= 1:
        raise DlxError("data.val_fraction + data.test_fraction must be < 1")
    n = len(text)
    n_test, n_val = int(n * ft), int(n * fv)
    train_text, val_text, test_text = text[:n - n_val - n_test], text[n - n_val - n_test:n - n_test], \
        text[n - n_test:]
    codes = np.frombuffer(train_text.encode("utf-32-le"), dtype=np.uint32)
    chars, counts = np.unique(codes, return_counts=True)
    order = np.argsort(-counts, kind="stable")  # most frequent first: ids 1, 2, ...; 0 = unknown
    least = number(opt(cfg, "min_count", 1), "data.min_count", lo=1, integer=True)
    keep = chars[order][counts[order] >= least]
    ranked = np.sort(keep)  # code points in order, for searchsorted; id_of[i] = the id of ranked[i]
    id_of = np.argsort(keep, kind="stable").astype(np.int64) + 1

    def windows(part: str):
        if len(part) < seq + 1:
            return None
        codes = np.frombuffer(part.encode("utf-32-le"), dtype=np.uint32)
        at = np.clip(np.searchsorted(ranked, codes), 0, max(len(ranked) - 1, 0))
        ids = np.where(ranked[at] == codes, id_of[at], 0) if len(ranked) else np.zeros(len(codes), np.int64)
        m = (len(ids) - 1) // seq
        x = torch.as_tensor(ids[:m * seq].reshape(m, seq))
        y = torch.as_tensor(ids[1:m * seq + 1].reshape(m, seq))
        return TensorSplit((x, y))

    train, test = windows(train_text), windows(test_text)
    if train is None or test is None:
        raise DlxError(f"the text ({n} characters from {source}) is too short for data.seq_len={seq} with "
                       f"data.test_fraction={ft}")
    val = windows(val_text) if n_val else None
    names = ["<unk>"] + [chr(int(c)) for c in keep]
    meta = Meta("chars", "lm", (seq,), num_outputs=len(names),
                extra={"vocab": names, "source": source, "characters": n})
    return DataBundle(train=train, test=test, val=val, meta=meta)


# --- DeepBind-style regression on DNA with planted motifs --------------------------------------------------

BASES = "ACGT"


def dna_motifs(seed: int = 0, n: int = 2000, length: int = 64, motifs: int = 3, motif_len: int = 8,
               plant: float = 0.5, mutate: float = 0.05, noise: float = 0.2):
    """(one-hot (n, 4, length), target (n,), motif strings, effects). Each of ``motifs`` random consensus
    words (length ``motif_len``) has an effect ``a_k ~ N(0, 1)``; each sequence is uniform random bases in
    which every motif is planted with probability ``plant`` at a uniform position that overlaps no other
    planted copy (each base of a copy replaced by a random base with probability ``mutate``); the target
    is ``sum_k a_k [motif k planted] + noise * N(0, 1)``."""
    if length < motif_len or motif_len < 1 or motifs < 1 or n < 1:
        raise DlxError("data.length must be >= data.motif_len >= 1, and data.motifs and data.n >= 1")
    if motifs * motif_len > length:
        raise DlxError(f"data.motifs x data.motif_len ({motifs} x {motif_len}) must fit in data.length "
                       f"({length})")
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 4, size=(motifs, motif_len))
    effects = rng.normal(size=motifs)
    seqs = rng.integers(0, 4, size=(n, length))
    planted = rng.random((n, motifs)) < plant
    mutations = rng.random((n, motifs, motif_len)) < mutate
    substitutes = rng.integers(0, 4, size=(n, motifs, motif_len))
    for i in range(n):  # planted copies never overlap, so every planted motif is really there
        taken = np.zeros(length, dtype=bool)
        for k in np.flatnonzero(planted[i]):
            while True:
                pos = int(rng.integers(0, length - motif_len + 1))
                if not taken[pos:pos + motif_len].any():
                    break
            taken[pos:pos + motif_len] = True
            seqs[i, pos:pos + motif_len] = np.where(mutations[i, k], substitutes[i, k], words[k])
    y = planted.astype(float) @ effects + noise * rng.normal(size=n)
    onehot = np.eye(4, dtype=np.float32)[seqs].transpose(0, 2, 1)
    return onehot, y, ["".join(BASES[b] for b in w) for w in words], effects


@register_data("dna_motifs")
def build_dna(cfg) -> DataBundle:
    """``n`` training, ``n_val`` validation and ``n_test`` test sequences from one seeded draw (see
    ``dna_motifs``); targets standardised with the training mean and std, and errors reported on that scale
    (an MSE of 1 is what predicting the mean scores)."""
    from dlx.config import number

    n = number(opt(cfg, "n", 2000), "data.n", lo=1, integer=True)
    n_test = number(opt(cfg, "n_test", 500), "data.n_test", lo=1, integer=True)
    n_val = number(opt(cfg, "n_val", 0), "data.n_val", lo=0, integer=True)
    x, y, words, effects = dna_motifs(int(opt(cfg, "seed", 0)), n + n_val + n_test,
                                      number(opt(cfg, "length", 64), "data.length", lo=1, integer=True),
                                      number(opt(cfg, "motifs", 3), "data.motifs", lo=1, integer=True),
                                      number(opt(cfg, "motif_len", 8), "data.motif_len", lo=1, integer=True),
                                      number(opt(cfg, "plant", 0.5), "data.plant", lo=0, hi=1),
                                      number(opt(cfg, "mutate", 0.05), "data.mutate", lo=0, hi=1),
                                      number(opt(cfg, "noise", 0.2), "data.noise", lo=0))
    mean, std = float(y[:n].mean()), float(y[:n].std()) or 1.0
    z = ((y - mean) / std).astype(np.float32)

    def part(a, b):
        return TensorSplit((torch.as_tensor(x[a:b]), torch.as_tensor(z[a:b])))

    meta = Meta("dna_motifs", "regress", (4, x.shape[-1]), num_outputs=1,
                extra={"target_std": 1.0, "raw_std": std, "motifs": words, "effects": effects.tolist()})
    return DataBundle(train=part(0, n), val=part(n, n + n_val) if n_val else None, test=part(n + n_val, None),
                      meta=meta)

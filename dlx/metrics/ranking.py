"""Ranking metrics: ROC AUC, precision@k and mean reciprocal rank over groups (queries, sessions...).

Within a group, items are ranked by descending score; tied scores are ordered at random (numpy
``default_rng(seed)``), never by input order, so a constant scorer gets chance-level P@k and MRR rather
than credit for however the rows happened to be sorted.
"""

from __future__ import annotations

import numpy as np

from dlx.errors import DlxError
from dlx.metrics._arrays import as_groups, as_vector, same_length, to_numpy


def auc(y_true, score) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative,
    ties counting one half (:func:`sklearn.metrics.roc_auc_score`).

    ``y_true`` holds two classes, the larger (e.g. 1 of {0, 1}, True of {False, True}) positive; ``y_true``
    and ``score`` are 1-D and of equal length. Raises :class:`DlxError` when only one class is present.
    """
    from sklearn.metrics import roc_auc_score

    y = to_numpy(y_true)
    if y.ndim != 1:
        raise DlxError(f"y_true must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise DlxError("y_true is empty")
    s = as_vector(score, "score")
    same_length(y_true=y, score=s)
    classes = np.unique(y)
    if len(classes) != 2:
        what = "only one class" if len(classes) == 1 else f"{len(classes)} classes"
        raise DlxError(f"auc needs both a positive and a negative in y_true, got {what} "
                       f"({', '.join(map(str, classes[:5]))})")
    return float(roc_auc_score(y, s))


def _ranked(scores, labels, groups, seed) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by (group, descending score, random tie-break). Returns, in that order, each sorted
    row's group index (0..G-1), its 0-based rank within its group, whether it is relevant, and the size
    of every group."""
    s = as_vector(scores, "scores")
    rel = as_vector(labels, "labels") > 0
    same_length(scores=s, labels=rel)
    g = as_groups(groups, len(s))
    # Shuffle, then stable sorts: ties in score keep the shuffled order, i.e. are broken uniformly at
    # random; every step is deterministic given the seed (unlike an unstable sort's tie order).
    perm = np.random.default_rng(seed).permutation(len(s))
    by_score = perm[np.argsort(-s[perm], kind="stable")]
    order = by_score[np.argsort(g[by_score], kind="stable")]
    g_sorted = g[order]
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    np.not_equal(g_sorted[1:], g_sorted[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    code = np.cumsum(new) - 1
    rank = np.arange(len(s)) - starts[code]
    sizes = np.diff(np.append(starts, len(s)))
    return code, rank, rel[order], sizes


def precision_at_k(scores, labels, groups, k: int = 1, seed: int = 0) -> float:
    """Mean over groups of ``(# relevant among the group's top k by score) / min(k, group size)``.

    An item is relevant when its label is > 0; a group without a relevant item contributes 0. ``groups``
    holds any hashable labels, a group's rows need not be contiguous. Ties in score are broken at random,
    seeded by ``seed``.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise DlxError(f"k must be an integer >= 1, got {k!r}")
    code, rank, rel, sizes = _ranked(scores, labels, groups, seed)
    hits = np.bincount(code, weights=rel & (rank < k), minlength=len(sizes))
    return float(np.mean(hits / np.minimum(k, sizes)))


def mrr(scores, labels, groups, seed: int = 0) -> float:
    """Mean reciprocal rank: mean over groups of ``1 / rank`` of the group's first relevant item (label > 0),
    rank 1-based by descending score; a group without a relevant item contributes 0. Ties in score are
    broken at random, seeded by ``seed``.
    """
    code, rank, rel, sizes = _ranked(scores, labels, groups, seed)
    pos = np.flatnonzero(rel)  # relevant rows, in (group, rank) order
    first = pos[np.r_[True, code[pos][1:] != code[pos][:-1]]] if len(pos) else pos
    reciprocal = np.zeros(len(sizes))
    reciprocal[code[first]] = 1.0 / (rank[first] + 1)
    return float(reciprocal.mean())

"""Text-matching scorers for the ``rank`` task: ``model(q, cands) -> (B, C)`` scores of B queries (token ids,
(B, Lq), 0 = padding) against C candidate responses each ((B, C, Lr)).

* ``random``        -- a constant score: with the metrics' random tie-breaking, chance P@1 (1/C).
* ``inner_product`` -- cosine of the two bag-of-words count vectors on the shared vocabulary (no training;
                       on disjoint vocabularies every score is 0, i.e. chance).
* ``pls``           -- Partial Least Squares (scikit-learn ``PLSCanonical``) fitted at build time on the
                       tf-idf vectors of the training pairs (query side, response side); score = inner product
                       of the two latent vectors.
* ``bilinear``      -- ``x^T L R^T y`` with low-rank L, R (V x rank) and L1 + L2 penalties, in the spirit of
                       RMLS (Wu, Li & Xu 2013); x, y are binary bags scaled to unit length; trained with the
                       ranking loss.
* ``dual_encoder``  -- two towers, each an EmbeddingBag (mean) and a 2-layer MLP; score = dot product.
* ``deepmatch``     -- Lu & Li (2013): patches from topic models at several resolutions, a local bilinear
                       match per patch, sparse hidden layers wired by patch containment, an MLP on top
                       (dlx/models/matching.py: DeepMatch; the patches: ``build_patches``).

Models with nothing to train (random, inner_product, pls) have no trainable parameters (the fitted PLS
projections are buffers), so ``dlx.train.fit`` evaluates them once, as epoch 0.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn

from dlx.errors import DlxError
from dlx.models.registry import register_model, reused


def _check_rank_data(meta, name: str) -> int:
    if meta.task != "rank" or "vocab_size" not in meta.extra:
        raise DlxError(f"model '{name}' scores text pairs; data '{meta.name}' is a '{meta.task}' dataset "
                       "(use data=textpairs task=rank)")
    return int(meta.extra["vocab_size"])


def _int(cfg, key: str, default, name: str, lo: int = 1) -> int:
    from dlx.config import number

    return number(cfg.get(key, default), f"model.{key} ({name})", lo=lo, integer=True)


def _float(cfg, key: str, default, name: str, lo: float = 0.0) -> float:
    from dlx.config import number

    return number(cfg.get(key, default), f"model.{key} ({name})", lo=lo)


def _int_list(cfg, key: str, default, name: str) -> list[int]:
    from omegaconf import ListConfig

    value = cfg.get(key, default)
    items = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
        raise DlxError(f"model.{key} ({name}) must be a non-empty list of integers >= 1, got {value!r}")
    return [int(v) for v in items]


def pairs_of(q: torch.Tensor, cands: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, Lq), (B, C, Lr) -> (B*C, Lq), (B*C, Lr): every query repeated once per candidate."""
    b, c, lr = cands.shape
    return q[:, None, :].expand(b, c, q.shape[1]).reshape(b * c, -1), cands.reshape(b * c, lr)


def bag_sq_norm(tok: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of the bag sum_i weight_i e_{tok_i} (repeated tokens add up): (..., L) -> (...)."""
    same = (tok[..., :, None] == tok[..., None, :]) & (tok != 0)[..., :, None]
    return torch.einsum("...i,...ij,...j->...", weight, same.to(weight.dtype), weight)


class RandomScorer(nn.Module):
    """Every candidate scores 0; the metrics break the ties at random, so P@1 is 1/C in expectation."""

    def forward(self, q, cands):
        return torch.zeros(cands.shape[:2], device=cands.device)


class InnerProduct(nn.Module):
    """Cosine similarity of the count vectors of query and candidate over the shared vocabulary."""

    def forward(self, q, cands):
        b, c, _ = cands.shape
        one = torch.ones(q.shape, device=q.device)
        one_c = torch.ones(cands.shape, device=q.device)
        mq, mc = (q != 0).float(), (cands != 0).float()
        match = ((q[:, None, :, None] == cands[:, :, None, :]).float()
                 * mq[:, None, :, None] * mc[:, :, None, :])
        dot = match.sum((-1, -2))
        norm = (bag_sq_norm(q, one * mq)[:, None] * bag_sq_norm(cands, one_c * mc)).sqrt()
        return torch.where(norm > 0, dot / norm.clamp_min(1e-12), torch.zeros_like(dot)).reshape(b, c)


# ------------------------------------------------------------------------------------------------ PLS


def count_matrix(tok: torch.Tensor, n_cols: int):
    """(N, L) token ids -> scipy CSR (N, n_cols) counts (padding dropped)."""
    from scipy import sparse

    t = tok.cpu().numpy()
    rows = np.repeat(np.arange(t.shape[0]), t.shape[1])
    cols = t.ravel()
    keep = cols != 0
    return sparse.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(t.shape[0], n_cols))


class PLSScorer(nn.Module):
    """score = <(tfidf(x) - mean_x) W_x, (tfidf(y) - mean_y) W_y>: tf-idf with smoothed idf, each bag scaled
    to unit length, projected with scikit-learn's fitted PLSCanonical rotations (all buffers)."""

    def __init__(self, idf_x, idf_y, mean_x, mean_y, rot_x, rot_y):
        super().__init__()
        for name, v in (("idf_x", idf_x), ("idf_y", idf_y), ("rot_x", rot_x), ("rot_y", rot_y)):
            self.register_buffer(name, torch.as_tensor(np.asarray(v), dtype=torch.float32))
        # the mean's projection is a constant vector per side
        for name, mean, rot in (("shift_x", mean_x, rot_x), ("shift_y", mean_y, rot_y)):
            shift = np.asarray(mean) @ np.asarray(rot)
            self.register_buffer(name, torch.as_tensor(shift, dtype=torch.float32))

    def side(self, tok, idf, rot, shift):
        w = idf[tok] * (tok != 0)
        w = w / bag_sq_norm(tok, w).clamp_min(1e-12).sqrt()[..., None]
        return torch.einsum("...l,...lk->...k", w, rot[tok]) - shift

    def forward(self, q, cands):
        zq = self.side(q, self.idf_x, self.rot_x, self.shift_x)
        zc = self.side(cands, self.idf_y, self.rot_y, self.shift_y)
        return (zq[:, None, :] * zc).sum(-1)


def tfidf(counts, idf):
    """Rows of ``counts`` (CSR) weighted by ``idf`` and scaled to unit L2 norm (empty rows stay 0)."""
    from scipy import sparse

    x = sparse.csr_matrix(counts.multiply(idf[None, :]))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1))).ravel()
    return sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x


@register_model("pls", needs_train=True)
def build_pls(cfg, meta, train) -> nn.Module:
    """PLSCanonical(n_components) on the tf-idf vectors of (at most max_pairs) training pairs, over each
    side's ``max_features`` most frequent words (the rest get zero weight)."""
    import warnings

    from sklearn.cross_decomposition import PLSCanonical

    v = _check_rank_data(meta, "pls")
    method = str(cfg.get("method", "svd"))
    if method not in ("svd", "canonical"):
        raise DlxError(f"model.method (pls) must be svd or canonical, got {method!r}")
    k = _int(cfg, "components", 32, "pls")
    max_features = _int(cfg, "max_features", 2000, "pls")
    max_pairs = _int(cfg, "max_pairs", 20000, "pls")
    q, r = train.q, train.r
    if len(q) > max_pairs:
        keep = torch.from_numpy(np.random.default_rng(0).choice(len(q), max_pairs, replace=False))
        q, r = q[keep], r[keep]
    n = len(q)
    if k > min(n - 1, max_features):
        raise DlxError(f"model.components={k} (pls) must be below the {n} training pairs and "
                       "model.max_features")
    out = []
    for tok in (q, r):
        counts = count_matrix(tok, v)
        df = np.asarray((counts > 0).sum(0)).ravel()
        idf = np.log((1 + n) / (1 + df)) + 1.0
        idf[0] = 0.0
        cols = np.argsort(-df, kind="stable")[:max_features]
        cols = np.sort(cols[df[cols] > 0])
        out.append((idf, cols, tfidf(counts, idf)[:, cols].tocsr()))
    (idf_x, cols_x, x), (idf_y, cols_y, y) = out
    k = min(k, len(cols_x), len(cols_y))
    rot_x, rot_y = np.zeros((v, k)), np.zeros((v, k))
    if method == "svd":  # Wu et al.'s PLS for matching: the top singular pairs of the cross-covariance X^T Y
        rot_x[cols_x], rot_y[cols_y] = pls_svd(x, y, k)
    else:
        pls = PLSCanonical(n_components=k, scale=False, max_iter=_int(cfg, "max_iter", 500, "pls"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NIPALS may stop at max_iter on a component: the fit stands
            pls.fit(x.toarray(), y.toarray())
        rot_x[cols_x], rot_y[cols_y] = pls.x_rotations_, pls.y_rotations_
    mean_x, mean_y = np.zeros(v), np.zeros(v)
    mean_x[cols_x], mean_y[cols_y] = np.asarray(x.mean(0)).ravel(), np.asarray(y.mean(0)).ravel()
    return PLSScorer(idf_x, idf_y, mean_x, mean_y, rot_x, rot_y)


def pls_svd(x, y, k: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's PLSSVD(scale=False) weights (x_weights_, y_weights_: the top ``k`` singular pairs of
    the centred cross-covariance, signs fixed by svd_flip), from sparse rows: X_c^T Y_c = X^T Y - n m_x m_y^T
    is formed without densifying the (pairs x words) tf-idf matrices, which took most of its fit."""
    from scipy.linalg import svd
    from sklearn.utils.extmath import svd_flip

    n = x.shape[0]
    mx, my = np.asarray(x.mean(0)).ravel(), np.asarray(y.mean(0)).ravel()
    c = np.asarray((x.T @ y).todense()) - n * np.outer(mx, my)
    u, _, vt = svd(c, full_matrices=False)
    u, vt = svd_flip(u[:, :k], vt[:k])
    return u, vt.T


# ------------------------------------------------------------------------------------------- bilinear


def unit_bag(emb: nn.Embedding, tok: torch.Tensor) -> torch.Tensor:
    """sum of the embeddings of a text's distinct tokens / sqrt(their number): x^T E for x the text's
    binary bag scaled to unit length. (..., L) -> (..., d)."""
    mask = (tok != 0)
    first = mask.clone()
    if tok.shape[-1] > 1:  # count a repeated token once
        earlier = (tok[..., :, None] == tok[..., None, :]).tril(-1).any(-1)
        first = mask & ~earlier
    w = first.float()
    w = w / w.sum(-1, keepdim=True).clamp_min(1).sqrt()
    return torch.einsum("...l,...ld->...d", w, emb(tok))


class Bilinear(nn.Module):
    """s(x, y) = x^T L R^T y (rank ``rank``), with penalty l1 (|L|_1 + |R|_1) + l2 (|L|^2 + |R|^2)."""

    def __init__(self, vocab: int, rank: int, l1: float, l2: float, init: float):
        super().__init__()
        self.left = nn.Embedding(vocab, rank, padding_idx=0)
        self.right = nn.Embedding(vocab, rank, padding_idx=0)
        for e in (self.left, self.right):
            nn.init.normal_(e.weight, std=init)
            with torch.no_grad():
                e.weight[0].zero_()
        self.l1, self.l2 = l1, l2

    def penalty(self) -> torch.Tensor:
        w = (self.left.weight, self.right.weight)
        out = torch.zeros((), device=w[0].device)
        if self.l1:
            out = out + self.l1 * sum(p.abs().sum() for p in w)
        if self.l2:
            out = out + self.l2 * sum(p.pow(2).sum() for p in w)
        return out

    def forward(self, q, cands):
        return (unit_bag(self.left, q)[:, None, :] * unit_bag(self.right, cands)).sum(-1)


@register_model("bilinear")
def build_bilinear(cfg, meta) -> nn.Module:
    v = _check_rank_data(meta, "bilinear")
    return Bilinear(v, _int(cfg, "rank", 64, "bilinear"), _float(cfg, "l1", 0.0, "bilinear"),
                    _float(cfg, "l2", 0.0, "bilinear"), _float(cfg, "init", 0.1, "bilinear"))


class Tower(nn.Module):
    def __init__(self, vocab: int, dim: int, hidden: int, out: int):
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, dim, mode="mean", padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, tok):
        shape = tok.shape[:-1]
        return self.mlp(self.emb(tok.reshape(-1, tok.shape[-1]))).reshape(*shape, -1)


class DualEncoder(nn.Module):
    """Two towers (EmbeddingBag mean -> Linear -> ReLU -> Linear); score = dot product of their outputs."""

    def __init__(self, vocab: int, dim: int, hidden: int, out: int):
        super().__init__()
        self.query, self.response = Tower(vocab, dim, hidden, out), Tower(vocab, dim, hidden, out)

    def forward(self, q, cands):
        return (self.query(q)[:, None, :] * self.response(cands)).sum(-1)


@register_model("dual_encoder")
def build_dual_encoder(cfg, meta) -> nn.Module:
    v = _check_rank_data(meta, "dual_encoder")
    return DualEncoder(v, _int(cfg, "dim", 64, "dual_encoder"), _int(cfg, "hidden", 128, "dual_encoder"),
                       _int(cfg, "out", 64, "dual_encoder"))


@register_model("random")
def build_random(cfg, meta) -> nn.Module:
    _check_rank_data(meta, "random")
    return RandomScorer()


@register_model("inner_product")
def build_inner_product(cfg, meta) -> nn.Module:
    _check_rank_data(meta, "inner_product")
    return InnerProduct()


# ------------------------------------------------------------------------------------------- DeepMatch


def pair_documents(q: torch.Tensor, r: torch.Tensor, vocab: int):
    """Each training pair as one document over 2V side-tagged words (query word w -> column w, response
    word w -> column V + w), so a topic has a query-side and a response-side word distribution."""
    from scipy import sparse

    return sparse.hstack([count_matrix(q, vocab), count_matrix(r, vocab)]).tocsr()


def build_patches(q: torch.Tensor, r: torch.Tensor, vocab: int, resolutions: list[int], patch_size: int,
                  seed: int = 0, max_iter: int = 10, topic_model=None, method: str = "online",
                  max_docs: int | None = None, max_df: float = 1.0, alpha: float | None = None,
                  eta: float | None = None) -> list[dict]:
    """Topic models of the concatenated training pairs, one per resolution; each topic becomes a patch:
    its ``patch_size`` most probable query-side words and response-side words (ids; 0-padded when a side
    has fewer words with weight in the topic). Returns per resolution {"topics", "x" (K, S), "y" (K, S),
    "topic_word" (K, 2V) normalised}. ``topic_model(k) -> estimator`` replaces sklearn's LDA (tests)."""

    docs = pair_documents(q, r, vocab)
    df = np.asarray((docs > 0).sum(0)).ravel()
    used = (df > 0) & (df <= max_df * docs.shape[0])  # words in more than max_df of the pairs: left out
    docs = docs[:, np.flatnonzero(used)]
    cols = np.flatnonzero(used)
    if max_docs is not None and docs.shape[0] > max_docs:  # the topic model sees a seeded sample of pairs
        docs = docs[np.sort(np.random.default_rng(seed).choice(docs.shape[0], max_docs, replace=False))]
    used_x, used_y = used[:vocab], used[vocab:]
    out = []
    for k in resolutions:
        if topic_model is not None:
            components = np.asarray(topic_model(k).fit(docs).components_, dtype=np.float64)
        else:
            components = _topics(docs, k, method, max_iter, seed, alpha, eta)
        comp = np.zeros((k, 2 * vocab))
        comp[:, cols] = components
        tw = comp / comp.sum(1, keepdims=True)
        px, py = np.zeros((k, patch_size), np.int64), np.zeros((k, patch_size), np.int64)
        for t in range(k):
            for side, used_side, dest in ((tw[t, :vocab], used_x, px), (tw[t, vocab:], used_y, py)):
                w = np.where(used_side, side, -1.0)
                w[0] = -1.0
                top = np.argsort(-w, kind="stable")[:patch_size]
                top = top[w[top] > 0]
                dest[t, : len(top)] = top
        out.append({"topics": k, "x": px, "y": py, "topic_word": tw})
    return out


_TOPICS: dict[tuple, tuple] = {}  # (documents' digest, settings) -> (LDA components, fit seconds)


def _topics(docs, k: int, method: str, max_iter: int, seed: int, alpha, eta) -> np.ndarray:
    """scikit-learn LDA's (k, words) components for these documents. The fit is deterministic in its
    inputs, so a process computes it once: the ablation variants of one seed (one resolution, no
    hierarchy) share the full model's topics in an inline sweep and in ``--estimate``."""
    import hashlib

    from sklearn.decomposition import LatentDirichletAllocation

    digest = hashlib.sha1()
    for a in (docs.indptr, docs.indices, docs.data, np.asarray(docs.shape)):
        digest.update(np.ascontiguousarray(a).tobytes())
    key = (digest.hexdigest(), k, method, max_iter, seed, alpha, eta)
    if key in _TOPICS:
        components, seconds = _TOPICS[key]
        reused(seconds)
        return components
    t = time.perf_counter()
    lda = LatentDirichletAllocation(
        n_components=k, learning_method=method, max_iter=max_iter, random_state=seed,
        batch_size=min(512, docs.shape[0]), doc_topic_prior=alpha, topic_word_prior=eta)
    components = np.asarray(lda.fit(docs).components_, dtype=np.float64)
    if len(_TOPICS) >= 8:
        _TOPICS.pop(next(iter(_TOPICS)))
    _TOPICS[key] = (components, time.perf_counter() - t)
    return components


def wire(fine: dict, coarse: dict, parents: int) -> np.ndarray:
    """(K_coarse, K_fine) boolean: each fine patch feeds the ``parents`` coarse patches that share the most
    words with it (query and response sides counted together); ties, and fine patches that share no word,
    go by the cosine similarity of the two topics' word distributions."""
    def words(p, t):
        return {("x", w) for w in p["x"][t] if w} | {("y", w) for w in p["y"][t] if w}

    kf, kc = len(fine["x"]), len(coarse["x"])
    overlap = np.array([[len(words(fine, f) & words(coarse, c)) for f in range(kf)] for c in range(kc)],
                       dtype=float)
    a, b = coarse["topic_word"], fine["topic_word"]
    cos = (a @ b.T) / np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)).clip(1e-12)
    key = overlap + 0.5 * cos  # cosine in [0, 1] only breaks ties of the integer overlap
    mask = np.zeros((kc, kf), dtype=bool)
    for f in range(kf):
        mask[np.argsort(-key[:, f], kind="stable")[: min(parents, kc)], f] = True
    return mask


class MaskedLinear(nn.Module):
    """A linear layer whose weight is zero outside ``mask`` (out, in): a sparse, structured connection."""

    def __init__(self, mask: np.ndarray):
        super().__init__()
        m = torch.as_tensor(mask, dtype=torch.float32)
        self.register_buffer("mask", m)
        fan_in = m.sum(1).clamp_min(1)
        self.weight = nn.Parameter(torch.randn(m.shape) * (2.0 / fan_in)[:, None].sqrt() * m)
        self.bias = nn.Parameter(torch.zeros(m.shape[0]))

    def forward(self, x):
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class DeepMatch(nn.Module):
    """Local layer: for each patch p (every resolution) and each of its ``units`` units j, a bilinear match
    of the query's words in p with the response's words in p,
    ``z_pj = relu(x_p^T U diag(c_pj) V^T y_p + b_pj)``: x_p is the query's bag restricted to p's query-side
    words (binary, the whole text's bag scaled to unit length), y_p likewise; the word factors U, V (vocab x
    ``rank``) are shared by all patches, the mixing c_pj and bias b_pj are the unit's own. Only words that
    fall in the same patch interact. Hierarchy (resolutions fine to coarse): a coarse node's ``hidden``
    units see its own local units and the units of the fine nodes wired to it (``wire``); the coarsest
    nodes feed an MLP (``top`` hidden units) to the score. With ``hierarchy`` off the local units of all
    patches go straight to a linear output."""

    def __init__(self, vocab: int, patches: list[dict], masks: list[np.ndarray], units: int, rank: int,
                 hidden: list[int], top: int, hierarchy: bool, init: float):
        super().__init__()
        self.sizes = [len(p["x"]) for p in patches]
        # topics per resolution, finest first (travels in the checkpoint: the patch figure reads it)
        self.register_buffer("resolution_sizes", torch.tensor(self.sizes))
        self.units, self.rank, self.hierarchy = units, rank, hierarchy
        px = np.concatenate([p["x"] for p in patches])
        py = np.concatenate([p["y"] for p in patches])
        self.register_buffer("patch_x", torch.as_tensor(px))
        self.register_buffer("patch_y", torch.as_tensor(py))
        self.register_buffer("member_x", self.membership(px, vocab))
        self.register_buffer("member_y", self.membership(py, vocab))
        n = len(px)
        self.left = nn.Embedding(vocab, rank, padding_idx=0)
        self.right = nn.Embedding(vocab, rank, padding_idx=0)
        for e in (self.left, self.right):
            nn.init.normal_(e.weight, std=init)
        self.mix = nn.Parameter(torch.ones(n, units, rank) + 0.1 * torch.randn(n, units, rank))
        self.local_bias = nn.Parameter(torch.zeros(n, units))
        self.layers = nn.ModuleList()
        if hierarchy:
            width = units  # units per node of the level below
            for level in range(1, len(patches)):
                kc, h = self.sizes[level], hidden[level - 1]
                # inputs: the fine level's nodes (kf x width), then this level's local units (kc x units)
                child = np.kron(masks[level - 1], np.ones((h, width), dtype=bool))
                own = np.kron(np.eye(kc, dtype=bool), np.ones((h, units), dtype=bool))
                self.layers.append(MaskedLinear(np.concatenate([child, own], axis=1)))
                width = h
            self.head = nn.Sequential(nn.Linear(self.sizes[-1] * width, top), nn.ReLU(), nn.Linear(top, 1))
        else:
            self.head = nn.Linear(n * units, 1)

    @staticmethod
    def membership(patch_words: np.ndarray, vocab: int) -> torch.Tensor:
        """(V, P) 0/1: which patches each word belongs to (a word may be in several)."""
        table = torch.zeros(vocab, len(patch_words), dtype=torch.uint8)
        for p, words in enumerate(patch_words):
            table[torch.as_tensor(words[words > 0], dtype=torch.long), p] = 1
        return table

    def side(self, tok: torch.Tensor, emb: nn.Embedding, member: torch.Tensor) -> torch.Tensor:
        """(N, L) tokens -> (N, P, rank): each patch's share of the text's unit-length bag times the
        factors."""
        mask = tok != 0
        if tok.shape[-1] > 1:  # a repeated token counts once
            mask = mask & ~(tok[:, :, None] == tok[:, None, :]).tril(-1).any(-1)
        w = mask.float() / mask.sum(-1, keepdim=True).clamp_min(1).sqrt()
        return torch.bmm((member[tok].float() * w[..., None]).transpose(1, 2), emb(tok))

    def local(self, q: torch.Tensor, cands: torch.Tensor) -> torch.Tensor:
        """(B, C, P, units) local match units."""
        b, c, lr = cands.shape
        xq = self.side(q, self.left, self.member_x)[:, None]  # (B, 1, P, r)
        yr = self.side(cands.reshape(b * c, lr), self.right, self.member_y).reshape(b, c, -1, self.rank)
        return torch.relu(torch.einsum("bcpr,pur->bcpu", xq * yr, self.mix) + self.local_bias)

    def forward(self, q, cands):
        b, c = cands.shape[:2]
        z = self.local(q, cands)  # (B, C, P, u)
        if not self.hierarchy:
            return self.head(z.reshape(b, c, -1)).squeeze(-1)
        bounds = np.cumsum([0, *self.sizes])
        h = z[:, :, bounds[0] : bounds[1]].reshape(b, c, -1)
        for level, layer in enumerate(self.layers, start=1):
            own = z[:, :, bounds[level] : bounds[level + 1]].reshape(b, c, -1)
            h = torch.relu(layer(torch.cat([h, own], dim=-1)))
        return self.head(h).squeeze(-1)


@register_model("deepmatch", needs_train=True)
def build_deepmatch(cfg, meta, train) -> nn.Module:
    v = _check_rank_data(meta, "deepmatch")
    resolutions = sorted(_int_list(cfg, "resolutions", [60, 20], "deepmatch"), reverse=True)
    if len(set(resolutions)) != len(resolutions):
        raise DlxError(f"model.resolutions (deepmatch) must be distinct topic counts, got {resolutions}")
    hierarchy = bool(cfg.get("hierarchy", True))
    hidden = _int_list(cfg, "hidden", [4], "deepmatch")
    if hierarchy and len(resolutions) > 1 and len(hidden) not in (1, len(resolutions) - 1):
        raise DlxError(f"model.hidden (deepmatch) gives units per node of each level above the finest: one "
                       f"value or {len(resolutions) - 1}, got {hidden}")
    hidden = hidden * (len(resolutions) - 1) if len(hidden) == 1 else hidden
    patch_size = _int(cfg, "patch_size", 10, "deepmatch")
    parents = _int(cfg, "parents", 2, "deepmatch")
    if len(train) < max(resolutions):
        raise DlxError(f"deepmatch needs at least as many training pairs ({len(train)}) as topics "
                       f"(model.resolutions={resolutions})")
    max_df = _float(cfg, "lda_max_df", 1.0, "deepmatch")
    if not 0 < max_df <= 1:
        raise DlxError(f"model.lda_max_df (deepmatch) must be in (0, 1], got {max_df}")
    method = str(cfg.get("lda_method", "online"))
    if method not in ("online", "batch"):
        raise DlxError(f"model.lda_method (deepmatch) must be online or batch, got {method!r}")
    max_docs = cfg.get("lda_pairs")
    patches = build_patches(train.q, train.r, v, resolutions, patch_size, int(cfg.get("lda_seed", 0)),
                            _int(cfg, "lda_iter", 3, "deepmatch"), method=method,
                            max_docs=None if max_docs is None else _int(cfg, "lda_pairs", 1, "deepmatch"),
                            max_df=max_df)
    masks = [wire(patches[i], patches[i + 1], parents) for i in range(len(patches) - 1)]
    return DeepMatch(v, patches, masks, _int(cfg, "units", 2, "deepmatch"),
                     _int(cfg, "rank", 32, "deepmatch"),
                     hidden, _int(cfg, "top", 32, "deepmatch"), hierarchy,
                     _float(cfg, "init", 0.1, "deepmatch"))

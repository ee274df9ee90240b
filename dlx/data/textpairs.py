"""``textpairs``: short-text pairs (a query and its response) for matching, as a ``rank`` dataset.

Two sources, one format:

* **Embedded default** (``data.root`` null): a seeded synthetic *two-vocabulary topic* corpus, built so
  that the premise of DeepMatch (Lu & Li, NIPS 2013) holds: queries and responses are written in two
  *disjoint* vocabularies (``q0001``... and ``r0001``...; think questions and answers in two languages),
  so no word is shared across a pair and only learned cross-vocabulary associations can match them.

  The world (all drawn from ``data.seed``): a latent topic is a (domain, aspect) pair, ``domains`` x
  ``aspects`` of them per side. Each domain and each aspect owns a core of ``domain_words`` /
  ``aspect_words`` words of its side's vocabulary (cores drawn at random, so they overlap: a word may
  belong to several) with Zipf weights ``1/rank**zipf``. The map from query topics to response topics is
  sparse and *contextual*: query domain d goes to one response domain, and query aspect f in domain d to
  ``links`` response aspects (Dirichlet weights) drawn for that domain (``context``: the fraction of domains
  with their own aspect map; the rest share one), so the right response aspect depends on the pair of
  query words (domain word, aspect word), not on either alone. Aspects differ in popularity (Zipf exponent
  ``popularity``). A pair: one domain and 1..``max_topics`` aspects with Dirichlet(1) weights; a query of
  ``min_len``..``max_len`` tokens, each a *noise* word with probability ``noise`` (a corpus-wide Zipf
  background over the side's vocabulary, like function words) and otherwise a word of one of its topics,
  from the domain's core with probability ``domain_share`` and else from the aspect's; the response follows
  the map (each query topic becomes one linked response topic) and is drawn the same way on the response
  side (``response_domain_share``: 0 means a response names only its aspects). ``pairs`` pairs in all,
  every query distinct; ``test_queries`` of them are held out.

  What the default plants (``pairing: linked``), and so what DeepMatch's patches can exploit: *local
  cross-vocabulary topic structure*. A query's topics decide its response's topics through the sparse map,
  so the query-word x response-word co-occurrence of the training pairs is block-structured (a query
  topic's core words co-occur with its linked response aspect's core words, and with little else): a topic
  model on the concatenated pairs can find those blocks as patches, and a local bilinear match inside a
  patch scores a candidate.

  **The negative control** (``pairing: shuffled``, ``dlx reproduce deepmatch --controls``): the same world,
  the same draws, the same query texts and the same response texts — every side's word, length, topic and
  noise statistics are exactly the default's — but the responses are dealt to the queries by a seeded
  random derangement (every query gets the response written for another query; from
  ``seed`` alone, after the default's draws, so the texts are byte-identical to the default's). A response's
  topics are then independent of its query's: the co-occurrence of the pairs has no block structure left
  (its query-topic x response-topic table is the product of its margins, up to sampling noise), so patches
  have nothing local to match and no scorer can beat chance, 1/(1 + ``test_negatives``). The pipeline runs
  unchanged (topic models, patches and every model train as on the default); ``links`` (the true map) is
  None there.

* **Real files** (``data.root``): UTF-8 TSV lines ``text_left<TAB>text_right[<TAB>label]``. ``root`` is a
  ``.tsv`` file, or a folder holding ``pairs.tsv`` (split by query here, ``test_fraction``) or
  ``train.tsv`` and ``test.tsv`` (the split given; test pairs whose query also occurs in train are
  dropped and counted). Texts are tokenised by whitespace (``tokenize: word``) or by character
  (``tokenize: char``, for Chinese text such as Weibo; whitespace dropped), lower-cased with
  ``lowercase``. A row whose label is 0 is not a pair: it is an explicit
  negative of its query, used as one of that query's test candidates (before random ones); any other
  label, or none, marks a matching pair.

Either way: one vocabulary for both sides (so a word shared by a query and a response has one id, which
is what the inner-product baseline needs), built on the *training* pairs: tokens seen at least
``min_count`` times, the ``max_vocab`` most frequent (ties by first appearance); unseen tokens are
dropped and texts cut to ``truncate`` tokens. Id 0 pads. Splits are by query: no query is in both training
and test.

Batches are dicts: ``q`` (B, Lq) token ids, ``cands`` (B, C, Lr) candidate responses, ``label`` (B, C)
(1 for the true response), ``group`` (B,) (one ranking group per row). A training batch holds each pair's
true response and ``negatives`` responses of *other* queries drawn from the ``generator`` handed to
``batches`` (so a resumed run redraws the same ones); a test row holds a test pair's true response and
``test_negatives`` other test responses, drawn once from ``data.seed`` (P@1 of a random scorer is
1/(1 + test_negatives)). ``data.n_train`` keeps a seeded subset of the training pairs (``subset_seed``;
nested: a smaller subset is inside a larger one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlx.data.bundle import DataBundle, Meta
from dlx.data.prep import opt
from dlx.data.registry import register_data
from dlx.errors import DlxError

PAD = 0
TOKENIZERS = ("word", "char")


# ----------------------------------------------------------------------------------------------- splits


def _other_query(qid: np.ndarray, n_neg: int, rng_draw, pool_qid: np.ndarray | None = None) -> np.ndarray:
    """For each row i, ``n_neg`` indices j into the pool (default: the rows themselves) with
    pool_qid[j] != qid[i]; ``rng_draw(shape) -> int64 array`` draws uniform indices into the pool."""
    pool_qid = qid if pool_qid is None else pool_qid
    idx = rng_draw((len(qid), n_neg))
    bad = pool_qid[idx] == qid[:, None]
    for _ in range(100):  # redraw the clashes; with more than one query in the pool this ends fast
        if not bad.any():
            return idx
        idx[bad] = rng_draw((int(bad.sum()),))
        bad = pool_qid[idx] == qid[:, None]
    # a pathological pool (almost every response belongs to the row's query): scan deterministically
    for i, j in zip(*np.nonzero(bad), strict=True):
        others = np.flatnonzero(pool_qid != qid[i])
        idx[i, j] = others[(idx[i, j] + j) % len(others)]
    return idx


class PairSplit:
    """Training pairs: (query, true response) rows; each batch adds ``negatives`` sampled responses of
    other queries. Without a generator (evaluation of the training split) the negatives come from a
    fixed seed, so the training metrics are the same at every evaluation."""

    def __init__(self, q: torch.Tensor, r: torch.Tensor, qid: torch.Tensor, negatives: int, seed: int = 0):
        self.q, self.r, self.qid = q, r, qid
        self.negatives, self.seed = int(negatives), int(seed)
        self._qid_np = qid.cpu().numpy()

    def __len__(self) -> int:
        return int(self.q.shape[0])

    def to(self, device) -> PairSplit:
        return PairSplit(self.q.to(device), self.r.to(device), self.qid.to(device), self.negatives, self.seed)

    def take(self, index) -> PairSplit:
        index = torch.as_tensor(index, dtype=torch.long)
        return PairSplit(self.q[index], self.r[index], self.qid[index], self.negatives, self.seed)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        n = len(self)
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed + 7919)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        dev = self.q.device
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            neg = _other_query(self._qid_np[idx.numpy()], self.negatives,
                               lambda shape: torch.randint(0, n, shape, generator=generator).numpy(),
                               self._qid_np)
            neg = torch.from_numpy(neg).to(dev)
            idx = idx.to(dev)
            cands = torch.cat([self.r[idx][:, None, :], self.r[neg]], dim=1)
            label = torch.zeros(cands.shape[:2], dtype=torch.long, device=dev)
            label[:, 0] = 1
            yield {"q": self.q[idx], "cands": cands, "label": label, "group": idx}


class GroupSplit:
    """Ranking groups fixed at build time: a query, its candidates and their labels, one row each."""

    def __init__(self, q: torch.Tensor, cands: torch.Tensor, label: torch.Tensor):
        self.q, self.cands, self.label = q, cands, label

    def __len__(self) -> int:
        return int(self.q.shape[0])

    def to(self, device) -> GroupSplit:
        return GroupSplit(self.q.to(device), self.cands.to(device), self.label.to(device))

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.q.device)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            yield {"q": self.q[idx], "cands": self.cands[idx], "label": self.label[idx], "group": idx}


# ----------------------------------------------------------------------------------------- the corpus


@dataclass
class Corpus:
    """Tokenised pairs: ``left``/``right`` token lists, ``qid`` (equal queries share one), ``label``
    (1 = a matching pair, 0 = an explicit negative), and for synthetic data each word's dominant topic."""

    left: list[list[str]]
    right: list[list[str]]
    qid: np.ndarray
    label: np.ndarray
    word_topic: dict | None = None  # synthetic only: word -> its dominant true topic ("q7", "r12")
    links: np.ndarray | None = None  # synthetic only: the true query-topic -> response-topic map (None:
    # pairing=shuffled, where there is none)


def zipf_weights(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def synthetic(cfg) -> tuple[Corpus, np.ndarray]:
    """The two-vocabulary topic corpus; returns it and the indices of its test pairs."""
    from dlx.config import number

    def get(key, default, lo=None, hi=None, integer=True):
        return number(opt(cfg, key, default), f"data.{key}", lo=lo, hi=hi, integer=integer)

    n, n_test = get("pairs", 12000, lo=3), get("test_queries", 1000, lo=2)
    vocab = get("vocab_size", 2000, lo=1)
    n_dom, n_asp = get("domains", 4, lo=1), get("aspects", 12, lo=1)
    dw, aw = get("domain_words", 60, lo=1, hi=vocab), get("aspect_words", 30, lo=1, hi=vocab)
    share = {"q": get("domain_share", 0.4, lo=0, hi=1, integer=False),
             "r": get("response_domain_share", 0.0, lo=0, hi=1, integer=False)}
    context = get("context", 1.0, lo=0, hi=1, integer=False)
    links = get("links", 1, lo=1, hi=n_asp)
    max_topics = get("max_topics", 3, lo=1, hi=n_asp)
    lo, hi = get("min_len", 4, lo=1), get("max_len", 20, lo=1)
    noise = get("noise", 0.3, lo=0, hi=1, integer=False)
    s, pop = get("zipf", 1.0, lo=0, integer=False), get("popularity", 0.5, lo=0, integer=False)
    if n_test >= n or lo > hi or noise >= 1:
        raise DlxError(f"data.test_queries must be below data.pairs, data.min_len <= data.max_len and "
                       f"data.noise < 1; got test_queries={n_test} pairs={n} min_len={lo} max_len={hi} "
                       f"noise={noise}")
    rng = np.random.default_rng(int(opt(cfg, "seed", 0)))
    k = n_dom * n_asp  # latent topics per side: (domain, aspect)
    width = len(str(vocab - 1))
    names = {side: np.array([f"{side}{i:0{width}d}" for i in range(vocab)]) for side in "qr"}
    dom_core = {side: np.stack([rng.choice(vocab, dw, replace=False) for _ in range(n_dom)]) for side in "qr"}
    asp_core = {side: np.stack([rng.choice(vocab, aw, replace=False) for _ in range(n_asp)]) for side in "qr"}
    dom_p, asp_p = zipf_weights(dw, s), zipf_weights(aw, s)
    background = {side: rng.permutation(vocab) for side in "qr"}  # each word's rank as a noise word
    bg_p = zipf_weights(vocab, s)
    # the map: query domain d -> response domain perm[d]; query aspect f in domain d -> `links` response
    # aspects, drawn for (d, f) in a domain with a context-specific map, else from one shared aspect map
    perm = rng.permutation(n_dom)
    def aspect_map() -> np.ndarray:
        """(F, links): a permutation of the aspects as the first link, other distinct aspects after it."""
        first = rng.permutation(n_asp)
        rest = [rng.choice(np.delete(np.arange(n_asp), first[f]), links - 1, replace=False)
                for f in range(n_asp)]
        return np.concatenate([first[:, None], np.array(rest, dtype=np.int64).reshape(n_asp, links - 1)], 1)

    shared = aspect_map()
    own = rng.random(n_dom) < context
    link_asp = np.stack([aspect_map() if own[d] else shared for d in range(n_dom)])  # (D, F, links)
    link_w = rng.dirichlet(np.ones(links), size=(n_dom, n_asp))
    asp_pop = zipf_weights(n_asp, pop)[rng.permutation(n_asp)]

    def draw(p_rows: np.ndarray) -> np.ndarray:
        """One index per row of the probability rows ``p_rows`` (inverse CDF)."""
        u = rng.random(len(p_rows))[:, None]
        return np.minimum((np.cumsum(p_rows, axis=1) < u).sum(1), p_rows.shape[1] - 1)

    # each pair: one domain (the context of the whole text) and m distinct aspects by popularity
    # (Gumbel top-m) with Dirichlet(1) weights; its topics are (domain, aspect_i)
    m = rng.integers(1, max_topics + 1, size=n)
    qa = np.argsort(-(np.log(asp_pop)[None, :] + rng.gumbel(size=(n, n_asp))), axis=1)[:, :max_topics]
    qd = np.repeat(rng.integers(0, n_dom, size=n)[:, None], max_topics, axis=1)
    w = rng.exponential(size=(n, max_topics)) * (np.arange(max_topics)[None, :] < m[:, None])
    w /= w.sum(1, keepdims=True)
    pick = draw(link_w[qd, qa].reshape(-1, links)).reshape(n, max_topics)
    rd, ra = perm[qd], link_asp[qd, qa, pick]  # each query topic's response topic

    def texts(side: str, dom: np.ndarray, asp: np.ndarray) -> list[list[str]]:
        length = rng.integers(lo, hi + 1, size=n)
        owner = np.repeat(np.arange(n), length)
        z = draw(w[owner])
        d, a = dom[owner, z], asp[owner, z]
        from_dom = rng.random(len(owner)) < share[side]
        words = np.where(from_dom, dom_core[side][d, rng.choice(dw, size=len(owner), p=dom_p)],
                         asp_core[side][a, rng.choice(aw, size=len(owner), p=asp_p)])
        is_noise = rng.random(len(owner)) < noise
        words[is_noise] = background[side][rng.choice(vocab, size=int(is_noise.sum()), p=bg_p)]
        return [list(x) for x in np.split(names[side][words], np.cumsum(length)[:-1])]

    left, right = texts("q", qd, qa), texts("r", rd, ra)
    # a word's dominant core (for the patch figure): the domain or aspect in whose core it weighs most
    word_topic = {}
    for side in "qr":
        best = np.zeros(vocab)
        for tag, cores, p in (("D", dom_core[side], dom_p * share[side]),
                              ("A", asp_core[side], asp_p * (1 - share[side]))):
            for c, core in enumerate(cores):
                for rank, wid in enumerate(core):
                    if p[rank] > best[wid]:
                        best[wid], word_topic[names[side][wid]] = p[rank], f"{side}{tag}{c}"
    lmap = np.zeros((k, k))  # query topic d*F + f -> response topic perm[d]*F + a
    for d in range(n_dom):
        for f in range(n_asp):
            for j in range(links):
                lmap[d * n_asp + f, perm[d] * n_asp + link_asp[d, f, j]] += link_w[d, f, j]
    test = np.sort(rng.choice(n, size=n_test, replace=False))
    if pairing(cfg) == "shuffled":  # the control: deal the same responses to other queries (a derangement)
        order = np.random.default_rng([int(opt(cfg, "seed", 0)), 1]).permutation(n)
        dealt = [None] * n
        for i, j in zip(order, np.roll(order, -1), strict=True):
            dealt[i] = right[j]
        right, lmap = dealt, None
    return Corpus(left, right, np.arange(n), np.ones(n, dtype=np.int64), word_topic, lmap), test


PAIRINGS = ("linked", "shuffled")


def pairing(cfg) -> str:
    """``data.pairing``: linked (the default world) or shuffled (the negative control), checked."""
    got = str(opt(cfg, "pairing", "linked"))
    if got not in PAIRINGS:
        raise DlxError(f"data.pairing must be one of {', '.join(PAIRINGS)}, got {got!r}")
    if got != "linked" and opt(cfg, "root") is not None:
        raise DlxError("data.pairing=shuffled is the synthetic corpus's negative control; data.root files "
                       "are read as they are (leave data.pairing=linked)")
    return got


def tokenizer(kind: str, lowercase: bool):
    if kind not in TOKENIZERS:
        raise DlxError(f"data.tokenize must be one of {', '.join(TOKENIZERS)}, got {kind!r}")

    def tok(text: str) -> list[str]:
        text = text.lower() if lowercase else text
        return text.split() if kind == "word" else [c for c in text if not c.isspace()]

    return tok


def read_tsv(path: Path, tok) -> tuple[list, list, list, list]:
    """(left tokens, right tokens, left texts, labels) of one TSV file; a malformed line is one error."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DlxError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DlxError(f"{path}:{line}: not UTF-8 text") from None
    left, right, queries, labels = [], [], [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) not in (2, 3):
            what = "no tab" if len(cols) == 1 else f"{len(cols)} columns"
            raise DlxError(f"{path}:{i}: expected text_left<TAB>text_right[<TAB>label], got {what}")
        label = 1
        if len(cols) == 3:
            try:
                label = int(float(cols[2].strip()))
            except ValueError:
                raise DlxError(f"{path}:{i}: label must be a number, got {cols[2].strip()[:30]!r}") from None
        a, b = tok(cols[0]), tok(cols[1])
        if not a or not b:
            raise DlxError(f"{path}:{i}: empty {'text_left' if not a else 'text_right'}")
        left.append(a), right.append(b), queries.append(" ".join(a)), labels.append(1 if label != 0 else 0)
    if not left:
        raise DlxError(f"{path} holds no pairs (expected text_left<TAB>text_right[<TAB>label] lines)")
    return left, right, queries, labels


def from_files(cfg) -> tuple[Corpus, np.ndarray]:
    root = Path(str(opt(cfg, "root"))).expanduser()
    tok = tokenizer(str(opt(cfg, "tokenize", "word")), bool(opt(cfg, "lowercase", True)))
    if root.is_dir():
        if (root / "train.tsv").is_file() and (root / "test.tsv").is_file():
            files = [root / "train.tsv", root / "test.tsv"]
        elif (root / "pairs.tsv").is_file():
            files = [root / "pairs.tsv"]
        else:
            raise DlxError(f"data.root {root} holds neither pairs.tsv nor train.tsv and test.tsv")
    elif root.is_file():
        files = [root]
    else:
        raise DlxError(f"data.root {root} does not exist (give a .tsv file or a folder with pairs.tsv)")
    parts = [read_tsv(f, tok) for f in files]
    left = [x for p in parts for x in p[0]]
    right = [x for p in parts for x in p[1]]
    queries = [x for p in parts for x in p[2]]
    label = np.array([x for p in parts for x in p[3]], dtype=np.int64)
    ids: dict[str, int] = {}
    qid = np.array([ids.setdefault(t, len(ids)) for t in queries], dtype=np.int64)
    if len(files) == 2:
        n_tr = len(parts[0][0])
        test = np.arange(n_tr, len(left))
        seen = set(qid[:n_tr].tolist())
        dup = np.isin(qid[test], list(seen))
        return Corpus(left, right, qid, label), test[~dup]
    frac = float(opt(cfg, "test_fraction", 0.1))
    if not 0.0 < frac < 1.0:
        raise DlxError(f"data.test_fraction must be in (0, 1), got {frac}")
    uq = np.unique(qid[label > 0])
    n_test_q = int(round(frac * len(uq)))
    if n_test_q < 1 or n_test_q >= len(uq):
        raise DlxError(f"{files[0]}: {len(uq)} distinct queries cannot be split by data.test_fraction={frac} "
                       "into non-empty training and test sets")
    test_q = np.random.default_rng(int(opt(cfg, "split_seed", 0))).choice(uq, size=n_test_q, replace=False)
    return Corpus(left, right, qid, label), np.flatnonzero(np.isin(qid, test_q))


# ------------------------------------------------------------------------------------------ the bundle


def build_vocab(texts, min_count: int, max_size: int | None) -> list[str]:
    """Tokens seen >= min_count times in ``texts``, the ``max_size`` most frequent (ties: first seen)."""
    counts = Counter(t for text in texts for t in text)
    kept = [w for w, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_count]  # stable sort
    return kept[:max_size] if max_size else kept


def encode(texts, index: dict, max_len: int) -> torch.Tensor:
    """Token lists -> (N, L) ids (unknown tokens dropped, 0-padded), L the longest text (>= 1)."""
    ids = [[index[t] for t in text if t in index][:max_len] for text in texts]
    width = max(1, max((len(x) for x in ids), default=1))
    out = np.zeros((len(ids), width), dtype=np.int64)
    for i, x in enumerate(ids):
        out[i, : len(x)] = x
    return torch.from_numpy(out)


def check_settings(cfg) -> dict:
    """Every setting of the builder, checked before any work (one line each)."""
    from dlx.config import number

    s = {"negatives": number(opt(cfg, "negatives", 4), "data.negatives", lo=1, integer=True),
         "test_negatives": number(opt(cfg, "test_negatives", 4), "data.test_negatives (N)", lo=1,
                                  integer=True),
         "min_count": number(opt(cfg, "min_count", 1), "data.min_count", lo=1, integer=True),
         "truncate": number(opt(cfg, "truncate", 50), "data.truncate", lo=1, integer=True)}
    mv = opt(cfg, "max_vocab")
    s["max_vocab"] = None if mv is None else number(mv, "data.max_vocab", lo=1, integer=True)
    if opt(cfg, "n_train") is not None:
        s["n_train"] = number(opt(cfg, "n_train"), "data.n_train", lo=2, integer=True)
    if float(opt(cfg, "label_noise", 0.0)) != 0.0 or opt(cfg, "augment", False):
        raise DlxError("data.label_noise and data.augment are for classification images; textpairs has "
                       "neither")
    s["val_fraction"] = number(opt(cfg, "val_fraction", 0.0), "data.val_fraction", lo=0.0, hi=1.0,
                               closed_hi=False)
    tokenizer(str(opt(cfg, "tokenize", "word")), True)
    s["pairing"] = pairing(cfg)
    return s


@register_data("textpairs", root="optional")
def build(cfg) -> DataBundle:
    s = check_settings(cfg)
    corpus, test = from_files(cfg) if opt(cfg, "root") is not None else synthetic(cfg)
    n = len(corpus.left)
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    pos = corpus.label > 0
    train = np.flatnonzero(~is_test & pos)
    test_pairs = np.flatnonzero(is_test & pos)
    # queries of explicit negatives that sit in training are simply not used (training negatives are sampled)
    train = train[~np.isin(corpus.qid[train], corpus.qid[test_pairs])]  # by query, whatever the files say
    val_pairs = np.zeros(0, dtype=np.int64)
    if s["val_fraction"] > 0:  # held out by query like test, before any training subset
        train, val_pairs = hold_out(train, corpus.qid, s["val_fraction"], int(opt(cfg, "split_seed", 0)))
    if s.get("n_train") is not None:
        if s["n_train"] > len(train):
            raise DlxError(f"data.n_train={s['n_train']} is more than the {len(train)} training pairs")
        perm = np.random.default_rng(int(opt(cfg, "subset_seed", 0))).permutation(len(train))
        train = np.sort(train[perm[: s["n_train"]]])  # nested: a prefix of one seeded permutation
    if len(test_pairs) == 0:
        raise DlxError("no test pairs (every test line's query also occurs in training, or test.tsv is "
                       "empty)")
    n_train_q = len(np.unique(corpus.qid[train]))
    if s["negatives"] >= len(train) or n_train_q < 2:
        raise DlxError(f"data.negatives={s['negatives']} needs more training responses of other queries: "
                       f"there are {len(train)} training pairs of {n_train_q} queries")
    n_test_q = len(np.unique(corpus.qid[test_pairs]))
    if s["test_negatives"] > len(test_pairs) - 1 or n_test_q < 2:
        raise DlxError(f"data.test_negatives={s['test_negatives']} (N) is more than the other test responses "
                       f"available: {len(test_pairs)} test pairs of {n_test_q} queries")
    n_val_q = len(np.unique(corpus.qid[val_pairs]))
    if len(val_pairs) and (s["test_negatives"] > len(val_pairs) - 1 or n_val_q < 2):
        raise DlxError(f"data.val_fraction={s['val_fraction']} holds out {len(val_pairs)} pairs of {n_val_q} "
                       f"queries: too few to rank each among data.test_negatives={s['test_negatives']} "
                       "others")
    vocab = build_vocab([corpus.left[i] for i in train] + [corpus.right[i] for i in train],
                        s["min_count"], s["max_vocab"])
    if not vocab:
        raise DlxError(f"the vocabulary is empty after filtering (data.min_count={s['min_count']}, "
                       f"data.max_vocab={s['max_vocab']}): no training token is frequent enough")
    index = {w: i + 1 for i, w in enumerate(vocab)}
    max_len = s["truncate"]
    q_tr, r_tr = encode([corpus.left[i] for i in train], index, max_len), \
        encode([corpus.right[i] for i in train], index, max_len)
    seed = int(opt(cfg, "seed", 0))
    rng = np.random.default_rng(seed + 1)
    # test groups: the pair's true response, the query's explicit negatives, then random other responses
    explicit: dict[int, list[int]] = {}
    for i in np.flatnonzero(is_test & ~pos):
        explicit.setdefault(int(corpus.qid[i]), []).append(int(i))
    tq = corpus.qid[test_pairs]
    neg = test_pairs[_other_query(tq, s["test_negatives"],
                                  lambda shape: rng.integers(0, len(test_pairs), shape))]
    n_explicit = 0
    for row, i in enumerate(test_pairs):
        ex = explicit.get(int(corpus.qid[i]), [])[: s["test_negatives"]]
        neg[row, : len(ex)] = ex
        n_explicit += len(ex)
    test_split = groups(corpus, test_pairs, neg, index, max_len)
    val_split = None
    if len(val_pairs):  # the same protocol as test, among other held-out training responses (its own draws)
        vrng = np.random.default_rng(seed + 2)
        vq = corpus.qid[val_pairs]
        vneg = val_pairs[_other_query(vq, s["test_negatives"], lambda shape: vrng.integers(0, len(val_pairs),
                                                                                            shape))]
        val_split = groups(corpus, val_pairs, vneg, index, max_len)
    train_split = PairSplit(q_tr, r_tr, torch.from_numpy(corpus.qid[train]), s["negatives"], seed)
    left_ids = sorted({index[t] for i in train for t in corpus.left[i] if t in index})
    right_ids = sorted({index[t] for i in train for t in corpus.right[i] if t in index})
    source = "synthetic" if opt(cfg, "root") is None else str(opt(cfg, "root"))
    meta = Meta("textpairs", "rank", (int(q_tr.shape[1]),), num_outputs=1,
                extra={"vocab": ["<pad>", *vocab], "vocab_size": len(vocab) + 1, "left_ids": left_ids,
                       "right_ids": right_ids, "candidates": 1 + s["test_negatives"],
                       "negatives": s["negatives"], "source": source})
    notes = {"train_pairs": len(train), "train_queries": n_train_q, "test_pairs": len(test_pairs),
             "test_queries": n_test_q, "val_pairs": len(val_pairs), "val_queries": n_val_q,
             "explicit_negatives": n_explicit, "vocab_size": len(vocab),
             "shared_words": len(set(left_ids) & set(right_ids)), "source": source}
    if corpus.word_topic is not None:
        notes["word_topic"] = corpus.word_topic
        notes["links"] = corpus.links
    return DataBundle(train_split, test_split, val_split, meta, notes=notes)


def hold_out(pairs: np.ndarray, qid: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): a seeded ``fraction`` of the distinct queries of ``pairs`` and all their pairs."""
    uq = np.unique(qid[pairs])
    n = int(round(fraction * len(uq)))
    if n < 1 or n >= len(uq):
        raise DlxError(f"data.val_fraction={fraction} cannot split the {len(uq)} training queries into "
                       "non-empty training and validation sets")
    held = np.random.default_rng(seed + 1).choice(uq, size=n, replace=False)
    out = np.isin(qid[pairs], held)
    return pairs[~out], pairs[out]


def groups(corpus, pairs: np.ndarray, neg: np.ndarray, index: dict, max_len: int) -> GroupSplit:
    """Ranking groups: each pair's query, its true response first, then the ``neg`` responses."""
    cand_ids = np.concatenate([pairs[:, None], neg], axis=1)
    cands = encode([corpus.right[i] for i in cand_ids.ravel()], index, max_len)
    cands = cands.reshape(len(pairs), cand_ids.shape[1], -1)
    label = torch.zeros(cands.shape[:2], dtype=torch.long)
    label[:, 0] = 1
    return GroupSplit(encode([corpus.left[i] for i in pairs], index, max_len), cands, label)

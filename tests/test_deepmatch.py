"""deepmatch: the rank task (per-negative hinge, P@1 and MRR over groups with ties), the textpairs data (the
synthetic two-vocabulary corpus, the TSV loader on small files in exactly the documented format, malformed
input as one line), the matching models (inner product, PLS, DeepMatch's patches and wiring), the claims on
synthetic tables, bad input via the CLI, and a tiny end-to-end `dlx reproduce deepmatch`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dlx.config import compose
from dlx.data import build_data
from dlx.data import textpairs as T
from dlx.errors import DlxError
from dlx.models import matching as M
from dlx.tasks.rank import hinge_terms

# ------------------------------------------------------------------------------------------- the task


def rank_task():
    from dlx.tasks import build_task

    cfg = compose("train", ["task=rank", "data=textpairs"])
    return build_task(cfg.task, type("Meta", (), {"task": "rank", "name": "textpairs"})())


def test_hinge_is_one_term_per_negative_not_the_average_negative():
    s = torch.tensor([[2.0, 1.5, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    label = torch.tensor([[1, 0, 0, 0], [0, 0, 1, 0]])
    h = hinge_terms(s, label)
    np.testing.assert_allclose(h.numpy(), [[0.5, 0.0, 2.0], [1.0, 1.0, 1.0]])
    # the averaged-negative hinge would give max(0, 1 - 2 + 1.5) = 0.5 for the first row, not 2.5 / 3
    assert h[0].mean().item() == pytest.approx(2.5 / 3)
    with pytest.raises(RuntimeError, match="exactly one true candidate"):
        hinge_terms(s, torch.tensor([[1, 1, 0, 0], [0, 0, 1, 0]]))


def test_rank_metrics_over_groups_break_ties_at_random():
    task = rank_task()
    # group 0: the true item strictly first; group 1: the true item second; group 2: all four tied
    score = torch.tensor([3.0, 1.0, 0.0, 0.0, 2.0, 1.0, 0.0, -1.0, 5.0, 5.0, 5.0, 5.0])
    label = torch.tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])
    group = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    p1, rr = [], []
    for seed in range(400):
        task.cfg = OmegaConf.create({"tie_seed": seed, "margin": 1.0})
        out = task.reduce({"score": score.numpy(), "label": label.numpy(), "group": group.numpy(), "n": 3.0,
                           "loss": 0.0})
        p1.append(out["p_at_1"])
        rr.append(out["mrr"])
    # groups 0 and 1 are fixed (1 and 0 for P@1; 1 and 1/2 for MRR); the tied group is 1/4 and 25/48 on
    # average
    assert set(np.round(np.array(p1) * 3, 6)) <= {1.0, 2.0}
    assert np.mean(p1) == pytest.approx((1 + 0 + 0.25) / 3, abs=0.03)
    assert np.mean(rr) == pytest.approx((1 + 0.5 + (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4) / 3, abs=0.03)
    # input order never decides a tie: a constant scorer with the true response first in every group (as the
    # test split stores it) gets chance, 1/5, not 1
    task.cfg = OmegaConf.create({"tie_seed": 0, "margin": 1.0})
    lab = np.tile([1, 0, 0, 0, 0], 400)
    a = task.reduce({"score": np.zeros(2000), "label": lab, "group": np.repeat(np.arange(400), 5), "n": 400.0,
                     "loss": 0.0})
    assert a["p_at_1"] == pytest.approx(0.2, abs=0.06)


def test_tie_break_follows_the_run_seed_unless_set():
    from dlx.tasks import build_task

    meta = type("Meta", (), {"task": "rank", "name": "textpairs"})()
    got = []
    for over in (["seed=0"], ["seed=1"], ["seed=2"], ["seed=2", "task.tie_seed=0"]):
        cfg = compose("train", ["task=rank", "data=textpairs", *over])
        task = build_task(cfg.task, meta)
        lab = np.tile([1, 0, 0, 0, 0], 400)
        got.append(task.reduce({"score": np.zeros(2000), "label": lab, "group": np.repeat(np.arange(400), 5),
                                "n": 400.0, "loss": 0.0})["p_at_1"])
    assert compose("deepmatch", ["seed=3"]).task.tie_seed == 3
    # a constant scorer: chance on every seed, but a different draw on each (a spread over seeds); an explicit
    # task.tie_seed fixes the draw whatever the run's seed
    assert len(set(got[:3])) == 3 and all(abs(v - 0.2) < 0.06 for v in got) and got[3] == got[0]


# -------------------------------------------------------------------------------------------- the data


def data_cfg(**kw):
    over = [f"data.{k}={'null' if v is None else v}" for k, v in kw.items()]
    return compose("train", ["task=rank", "data=textpairs", *over]).data


SMALL = dict(pairs=400, test_queries=60, vocab_size=120, domains=2, aspects=4, domain_words=20,
             aspect_words=10, test_negatives=4)


def test_synthetic_corpus_has_disjoint_vocabularies_and_is_seeded():
    a = build_data(data_cfg(**SMALL), device="cpu")
    b = build_data(data_cfg(**SMALL), device="cpu")
    c = build_data(data_cfg(**SMALL, seed=1), device="cpu")
    assert a.notes["shared_words"] == 0 and a.notes["train_pairs"] == 340 and a.notes["test_pairs"] == 60
    vocab = a.meta.extra["vocab"]
    assert all(vocab[i].startswith("q") for i in a.meta.extra["left_ids"])
    assert all(vocab[i].startswith("r") for i in a.meta.extra["right_ids"])
    assert torch.equal(a.test.cands, b.test.cands) and not torch.equal(a.test.cands, c.test.cands)
    assert a.test.cands.shape[:2] == (60, 5) and (a.test.label[:, 0] == 1).all()
    lengths = (a.train.q != 0).sum(1)
    assert lengths.min() >= 1 and lengths.max() <= 20
    # the true map is sparse: each query topic links to `links` response topics
    assert ((a.notes["links"] > 0).sum(1) == 1).all()
    # training batches: the true response first, then negatives of other queries
    batch = next(a.train.batches(32, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert batch["cands"].shape[1] == 1 + 4 and (batch["label"][:, 0] == 1).all()


def topic_mi(corpus) -> float:
    """Mutual information (nats) of the true core of a query word and of a response word, over every
    (query word, response word) pair of every pair: the corpus's cross-vocabulary topic structure."""
    wt = corpus.word_topic
    qt = sorted({v for k, v in wt.items() if k.startswith("q")})
    rt = sorted({v for k, v in wt.items() if k.startswith("r")})
    c = np.zeros((len(qt), len(rt)))
    for a, b in zip(corpus.left, corpus.right, strict=True):
        x = np.bincount([qt.index(wt[w]) for w in a if w in wt], minlength=len(qt))
        y = np.bincount([rt.index(wt[w]) for w in b if w in wt], minlength=len(rt))
        c += np.outer(x, y)
    p = c / c.sum()
    indep = p.sum(1, keepdims=True) @ p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / indep[nz])).sum())


def test_control_keeps_the_texts_and_removes_the_cross_vocabulary_structure():
    small = {**SMALL, "pairs": 1500, "test_queries": 200}
    linked, test = T.synthetic(data_cfg(**small))
    shuffled, test_c = T.synthetic(data_cfg(**small, pairing="shuffled"))
    # the same world and draws: the same query texts in the same places, the same multiset of response texts
    # (so every word, length, topic and noise statistic of each side), the same test split and word cores
    assert shuffled.left == linked.left and np.array_equal(test, test_c)
    assert sorted(map(tuple, shuffled.right)) == sorted(map(tuple, linked.right))
    assert shuffled.word_topic == linked.word_topic and shuffled.links is None
    # ... but every query now holds another query's response (a derangement, seeded by data.seed)
    assert not any(a == b for a, b in zip(shuffled.right, linked.right, strict=True))
    again, _ = T.synthetic(data_cfg(**small, pairing="shuffled"))
    assert again.right == shuffled.right
    # the premise removed: the query-topic x response-topic dependence is gone (sampling noise only)
    assert topic_mi(linked) > 0.05 > 0.005 > topic_mi(shuffled)
    # the pipeline still builds it, and refuses the switch on real files
    d = build_data(data_cfg(**SMALL, pairing="shuffled"), device="cpu")
    assert d.notes["shared_words"] == 0 and d.test.cands.shape[:2] == (60, 5)
    with pytest.raises(DlxError, match="data.pairing"):
        build_data(data_cfg(**SMALL, pairing="random"), device="cpu")
    with pytest.raises(DlxError, match="data.pairing=shuffled"):
        build_data(data_cfg(root="/tmp", pairing="shuffled"), device="cpu")


def test_the_control_is_registered():
    from dlx.registry import get

    exp = get("deepmatch")
    assert exp.control == ("data.pairing=shuffled",) and "no query-topic" in exp.control_note
    cfg = compose("deepmatch", list(exp.control))
    assert cfg.data.pairing == "shuffled"


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_tsv_loader_splits_by_query_and_uses_explicit_negatives(tmp_path):
    lines = [f"how do i cook rice {i % 7}\tboil it slowly {i}" for i in range(40)]
    lines += ["how do i cook rice 0\tplay football\t0", "how do i cook rice 0\tboil it slowly 0\t1"]
    write(tmp_path / "pairs.tsv", lines)
    d = build_data(data_cfg(root=str(tmp_path), test_fraction=0.3, test_negatives=2, negatives=2),
                   device="cpu")
    vocab = d.meta.extra["vocab"]
    # 7 distinct queries, 2 held out by query: no test query appears among the training queries
    train_q = {" ".join(vocab[t] for t in row if t) for row in d.train.q.tolist()}
    test_q = {" ".join(vocab[t] for t in row if t) for row in d.test.q.tolist()}
    assert d.notes["test_queries"] == 2 and not train_q & test_q
    assert d.meta.extra["candidates"] == 3
    if "how do i cook rice 0" in test_q:  # its explicit negative (label 0) is one of its candidates
        assert d.notes["explicit_negatives"] >= 1
    # training negatives are responses of *other* queries (each query here has about 6 responses)
    own: dict = {}
    for qrow, rrow in zip(d.train.q.tolist(), d.train.r.tolist(), strict=True):
        own.setdefault(tuple(qrow), set()).add(tuple(rrow))
    for batch in d.train.batches(8, shuffle=True, generator=torch.Generator().manual_seed(1)):
        for qrow, cands in zip(batch["q"].tolist(), batch["cands"].tolist(), strict=True):
            assert tuple(cands[0]) in own[tuple(qrow)]
            assert not any(tuple(c) in own[tuple(qrow)] for c in cands[1:])
    # the vocabulary is built on training pairs only, and a word shared by both sides has one id
    write(tmp_path / "train.tsv", ["a b c\tc d", "b c\td e", "x y\te f"])
    write(tmp_path / "test.tsv", ["a b\tc zz", "x\td e", "a b c\tc d"])  # the last repeats a train query
    (tmp_path / "pairs.tsv").unlink()
    d = build_data(data_cfg(root=str(tmp_path), test_negatives=1, negatives=1), device="cpu")
    assert d.notes["test_pairs"] == 2 and "zz" not in d.meta.extra["vocab"]
    assert d.notes["shared_words"] == 1  # "c" on both sides


def test_a_validation_split_is_held_out_by_query_and_ranked_like_test(tmp_path):
    """data.val_fraction: a seeded share of the training queries, with all their pairs, ranked among other
    held-out responses as test is; the test split and its candidates do not move."""
    # 30 queries, each a distinct pair of common words, so a held-out query's words stay in the vocabulary
    lines = [f"w{i % 30 % 6} v{i % 30 // 6}\tanswer {i} words" for i in range(120)]
    write(tmp_path / "pairs.tsv", lines)
    base = dict(root=str(tmp_path), test_fraction=0.2, test_negatives=2, negatives=2)
    plain = build_data(data_cfg(**base), device="cpu")
    d = build_data(data_cfg(**base, val_fraction=0.25), device="cpu")
    assert plain.val is None and d.val is not None
    vocab = d.meta.extra["vocab"]

    def queries(q, words=vocab):
        return {" ".join(words[t] for t in row if t) for row in q.tolist()}

    assert queries(plain.test.q, plain.meta.extra["vocab"]) == queries(d.test.q)  # the same test queries

    val_q, train_q, test_q = queries(d.val.q), queries(d.train.q), queries(d.test.q)
    assert len(val_q) == d.notes["val_queries"] == 6  # 25% of the 24 training queries
    assert not val_q & train_q and not val_q & test_q
    assert d.notes["val_pairs"] + d.notes["train_pairs"] == plain.notes["train_pairs"]
    assert d.val.cands.shape[1] == 3 and (d.val.label[:, 0] == 1).all()
    with pytest.raises(DlxError, match="val_fraction"):
        build_data(data_cfg(**base, val_fraction=0.99), device="cpu")


def test_char_tokenizer_for_chinese_text(tmp_path):
    write(tmp_path / "w.tsv", [f"今天天气很好{i}\t是的 很好{i}" for i in range(12)])
    d = build_data(data_cfg(root=str(tmp_path / "w.tsv"), tokenize="char", test_fraction=0.25,
                            test_negatives=2, negatives=2), device="cpu")
    assert "天" in d.meta.extra["vocab"] and "今天" not in d.meta.extra["vocab"]
    assert " " not in d.meta.extra["vocab"]


@pytest.mark.parametrize("lines, needle", [
    (["a b\tc d", "a b c d", "e\tf"], "bad.tsv:2: expected text_left<TAB>text_right[<TAB>label], got no tab"),
    (["a\tb\tc\td"], "bad.tsv:1: expected text_left<TAB>text_right[<TAB>label], got 4 columns"),
    (["a\tb\tyes"], "bad.tsv:1: label must be a number"),
    (["a\t  "], "bad.tsv:1: empty text_right"),
    ([], "holds no pairs"),
])
def test_malformed_tsv_is_one_clear_error(tmp_path, lines, needle):
    write(tmp_path / "bad.tsv", lines)
    with pytest.raises(DlxError) as err:
        build_data(data_cfg(root=str(tmp_path / "bad.tsv"), test_negatives=1, negatives=1), device="cpu")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_non_utf8_and_impossible_settings(tmp_path):
    (tmp_path / "latin.tsv").write_bytes("ok\tfine\ncaf\xe9\tau lait\n".encode("latin-1"))
    with pytest.raises(DlxError, match="latin.tsv:2: not UTF-8"):
        build_data(data_cfg(root=str(tmp_path / "latin.tsv")), device="cpu")
    write(tmp_path / "p.tsv", [f"q{i}\tr{i}" for i in range(20)])
    root = str(tmp_path / "p.tsv")
    with pytest.raises(DlxError, match="vocabulary is empty"):
        build_data(data_cfg(root=root, min_count=5, negatives=1, test_negatives=1, test_fraction=0.5), "cpu")
    with pytest.raises(DlxError, match=r"data.test_negatives=5 \(N\) is more than the other test responses"):
        build_data(data_cfg(root=root, test_negatives=5, negatives=1, test_fraction=0.2), device="cpu")
    with pytest.raises(DlxError, match="data.test_negatives"):
        build_data(data_cfg(test_negatives=0), device="cpu")
    with pytest.raises(DlxError, match="data.tokenize"):
        build_data(data_cfg(root=root, tokenize="bpe"), device="cpu")


# ------------------------------------------------------------------------------------------ the models


def test_inner_product_is_cosine_and_zero_across_disjoint_vocabularies():
    ip = M.InnerProduct()
    q = torch.tensor([[1, 2, 2, 0]])
    cands = torch.tensor([[[2, 3, 0], [1, 2, 0], [4, 5, 6]]])
    s = ip(q, cands)[0].numpy()
    x = np.array([1, 2, 0, 0, 0, 0])  # counts of words 1..6
    for j, y in enumerate([[0, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]]):
        y = np.array(y)
        assert s[j] == pytest.approx(x @ y / np.linalg.norm(x) / np.linalg.norm(y), abs=1e-6)
    assert s[2] == 0.0


def test_pls_learns_a_cross_vocabulary_map():
    # query word i (1..4) always answered by response word 10 + i: PLS should rank the true response first
    rng = np.random.default_rng(0)
    qs = rng.integers(1, 5, size=200)
    train = T.PairSplit(torch.tensor(qs)[:, None], torch.tensor(qs + 10)[:, None], torch.arange(200), 1)
    meta = type("Meta", (), {"task": "rank", "name": "textpairs", "extra": {"vocab_size": 20}})()
    for method in ("svd", "canonical"):
        model = M.build_pls(OmegaConf.create({"components": 3, "method": method}), meta, train)
        s = model(torch.tensor([[1], [3]]), torch.tensor([[[11], [12], [13]], [[11], [12], [13]]]))
        assert s.argmax(1).tolist() == [0, 2], method


def test_patches_from_a_tiny_corpus_pair_the_cooccurring_words():
    # two topics with disjoint words: queries {1, 2} answered by {3, 4}; queries {5, 6} answered by {7, 8}
    rows = [([1, 2, 1], [3, 4]), ([2, 1], [4, 3, 4]), ([5, 6], [7, 8]), ([6, 5, 6], [8, 7])] * 25
    q = T.encode([[str(w) for w in a] for a, _ in rows], {str(i): i for i in range(1, 9)}, 10)
    r = T.encode([[str(w) for w in b] for _, b in rows], {str(i): i for i in range(1, 9)}, 10)
    patches = M.build_patches(q, r, 9, [2], patch_size=3, max_iter=30, method="batch")
    (p,) = patches
    got = {(frozenset(p["x"][t][p["x"][t] > 0].tolist()), frozenset(p["y"][t][p["y"][t] > 0].tolist()))
           for t in range(2)}
    # each topic's top words: its own two query words and two response words (the third slot stays padding
    # or holds a low-weight word of the other topic)
    assert any({1, 2} <= set(x) and {3, 4} <= set(y) for x, y in got)
    assert any({5, 6} <= set(x) and {7, 8} <= set(y) for x, y in got)
    assert p["x"].shape == (2, 3) and (p["x"][:, :2] > 0).all()


def test_wiring_feeds_each_fine_patch_to_the_coarse_patches_sharing_most_words():
    fine = {"x": np.array([[1, 2], [3, 4], [5, 6]]), "y": np.array([[11, 12], [13, 14], [15, 16]]),
            "topic_word": np.eye(3, 20)}
    coarse = {"x": np.array([[1, 2, 3], [5, 6, 0]]), "y": np.array([[11, 13, 0], [15, 16, 12]]),
              "topic_word": np.eye(2, 20)}
    mask = M.wire(fine, coarse, parents=1)
    # fine 0 shares {1, 2, 11} with coarse 0 and {12} with coarse 1; fine 2 shares 4 words with coarse 1
    assert mask.tolist() == [[True, True, False], [False, False, True]]
    assert M.wire(fine, coarse, parents=2).all()


def test_deepmatch_scores_candidates_and_ablations_change_the_wiring():
    rows = [([1, 2], [3, 4]), ([5, 6], [7, 8])] * 30
    q = T.encode([[str(w) for w in a] for a, _ in rows], {str(i): i for i in range(1, 9)}, 5)
    r = T.encode([[str(w) for w in b] for _, b in rows], {str(i): i for i in range(1, 9)}, 5)
    train = T.PairSplit(q, r, torch.arange(len(rows)) % 2, 1)
    meta = type("Meta", (), {"task": "rank", "name": "textpairs", "extra": {"vocab_size": 9}})()
    base = {"resolutions": [4, 2], "patch_size": 3, "units": 2, "rank": 4, "hidden": [3], "top": 5,
            "lda_iter": 5}
    full = M.build_deepmatch(OmegaConf.create(base), meta, train)
    flat = M.build_deepmatch(OmegaConf.create({**base, "hierarchy": False}), meta, train)
    one = M.build_deepmatch(OmegaConf.create({**base, "resolutions": [4]}), meta, train)
    cands = torch.stack([r[:3], r[1:4]])
    for model in (full, flat, one):
        assert model(q[:2], cands).shape == (2, 3)
    assert full.resolution_sizes.tolist() == [4, 2] and len(full.layers) == 1
    assert len(flat.layers) == 0 and one.resolution_sizes.tolist() == [4]
    # the sparse layer: each coarse node's units see only their wired fine nodes and their own local units
    mask = full.layers[0].mask
    assert mask.shape == (2 * 3, 4 * 2 + 2 * 2) and 0 < mask.mean() < 1
    with pytest.raises(DlxError, match="model.resolutions"):
        M.build_deepmatch(OmegaConf.create({**base, "resolutions": [4, 4]}), meta, train)
    with pytest.raises(DlxError, match="model.hidden"):
        M.build_deepmatch(OmegaConf.create({**base, "resolutions": [4, 3, 2], "hidden": [3, 3, 3]}), meta,
                          train)


# ----------------------------------------------------------------------------------------- the claims


def table_of(values: dict):
    from dlx.papers.deepmatch.analysis import summarize

    rows = [{"model": m.split("/")[0], "variant": (m.split("/") + ["full"])[1], "seed": i, "n_train": 1000,
             "curve": False, "status": "completed", "test_p_at_1": v, "test_mrr": v, "setup_s": 1.0,
             "train_s": 2.0} for m, vs in values.items() for i, v in enumerate(vs)]
    return summarize(pd.DataFrame(rows))


def test_tables_summarize_seeds_and_keep_per_seed_values_for_the_claims():
    from dlx.papers.deepmatch.analysis import per_seed

    paper_like = {"random": [0.10], "inner_product": [0.11], "pls": [0.30], "bilinear": [0.34, 0.36],
                  "dual_encoder": [0.40, 0.40], "deepmatch": [0.44, 0.46], "deepmatch/one_resolution": [0.41],
                  "deepmatch/no_hierarchy": [0.43]}
    table = table_of(paper_like)
    assert list(table.model[:6]) == ["random", "inner_product", "pls", "bilinear", "dual_encoder",
                                     "deepmatch"]
    row = table[(table.model == "bilinear")].iloc[0]
    assert row.p_at_1 == pytest.approx(0.35) and row.p_at_1_std == pytest.approx(np.std([0.34, 0.36], ddof=1))
    rows = [{"model": m.split("/")[0], "variant": (m.split("/") + ["full"])[1], "seed": i, "n_train": 1000,
             "curve": False, "status": "completed", "test_p_at_1": v, "test_mrr": v}
            for m, vs in paper_like.items() for i, v in enumerate(vs)]
    rows.append({**rows[-1], "curve": True, "n_train": 100})  # curve children are not the table's
    rows.append({**rows[0], "status": "failed", "seed": 5})
    seeds = per_seed(pd.DataFrame(rows))
    assert len(seeds) == 11 and list(seeds.columns) == ["model", "variant", "seed", "p_at_1", "mrr"]
    assert seeds[seeds.model == "bilinear"].set_index("seed").p_at_1.to_dict() == {0: 0.34, 1: 0.36}


# ---------------------------------------------------------------------------------------------- the CLI

TINY = ["data.pairs=500", "data.test_queries=80", "data.vocab_size=150", "data.domains=2", "data.aspects=4",
        "data.test_negatives=4", "deepmatch.settings.deepmatch.resolutions=[6,3]",
        "deepmatch.settings.deepmatch.lda_pairs=null", "deepmatch.settings.deepmatch.rank=8",
        "deepmatch.settings.bilinear.rank=8", "deepmatch.settings.dual_encoder.dim=8",
        "deepmatch.settings.pls.components=4", "trainer.epochs=1", "trainer.eval_every=1",
        "deepmatch.seeds=[0]", "deepmatch.curve.n_train=[150]", "deepmatch.curve.seeds=[0]",
        "deepmatch.curve.models=[bilinear,deepmatch]", "launcher=inline", "trainer.threads=1"]


def test_tiny_reproduce_end_to_end(run_cli, tmp_path):
    rc, out, err = run_cli("reproduce", "deepmatch", *TINY, "--out", str(tmp_path), "--name", "d")
    assert rc == 0, err
    assert "deepmatch: " in out and "claims hold" in out and "deepmatch_wins" in out
    d = tmp_path / "reproduce" / "d"
    res = pd.read_csv(d / "results.csv")
    # 6 models x 1 seed, 2 ablations, 2 curve children
    assert len(res) == 3 + 3 + 2 + 2 and (res.status == "completed").all()
    assert res.test_p_at_1.between(0, 1).all() and set(res[res.curve].n_train) == {150}
    table = pd.read_csv(d / "table.csv")
    assert len(table) == 8 and set(table.variant) == {"full", "one_resolution", "no_hierarchy"}
    assert (table.runs == 1).all() and table.p_at_1_std.isna().all()  # one seed: no spread
    dm = res[(res.model == "deepmatch") & (res.variant == "full") & ~res.curve]
    assert table[(table.model == "deepmatch") & (table.variant == "full")].p_at_1.iloc[0] == pytest.approx(
        dm.test_p_at_1.mean())
    # on disjoint vocabularies inner product scores every candidate 0: chance, exactly like random on the same
    # seed (the same tie-break)
    ip = table[table.model == "inner_product"].p_at_1.iloc[0]
    assert ip == table[table.model == "random"].p_at_1.iloc[0]
    curve = pd.read_csv(d / "learning.csv")
    assert set(curve.model) == {"bilinear", "deepmatch"} and sorted(set(curve.n_train)) == [150, 420]
    patches = pd.read_csv(d / "patches.csv")
    assert list(patches.resolution.unique()) == [6, 3] and patches.query_words.str.startswith("q").all()
    assert patches.response_words.str.startswith("r").all() and patches.usage.notna().sum() == 6
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["kind"] == "deepmatch" and summary["candidates"] == 5
    ids = [c["id"] for c in summary["claims"]]
    assert ids == ["deepmatch_wins", "inner_product_chance", "pls_above_inner_product",
                   "bilinear_above_inner_product", "ablation_one_resolution", "ablation_no_hierarchy",
                   "dual_encoder"]
    # one seed: every claim is a comparison over seeds, so none has an interval
    assert all(c["verdict"] == "inconclusive" and c["ci"] is None and "fewer than two" in c["why"]
               for c in summary["claims"])
    for png in ("table.png", "learning.png", "patches.png"):
        assert (d / png).stat().st_size > 1000, png
    (d / "patches.png").unlink()
    assert run_cli("plot", str(d))[0] == 0 and (d / "patches.png").is_file()


@pytest.mark.parametrize("override, needle", [
    ("deepmatch.models=[random,bm25]", "unknown model 'bm25' in deepmatch.models"),
    ("data.test_negatives=0", "data.test_negatives (N)"),
    ("model.resolutions=[8,3]", "deepmatch.settings.<model>.resolutions"),
    ("model=bilinear", "deepmatch.models"),
    ("deepmatch.ablation=[shallow]", "unknown ablation variant 'shallow'"),
    ("deepmatch.curve.n_train=[999999]", "deepmatch.curve.n_train"),
    ("experiment=deepmatch_paper", "data.root"),
    ("data.root=/nonexistent/pairs.tsv", "does not exist"),
    ("task=classify", "task=rank"),
])
def test_bad_input_is_one_line(run_cli, tmp_path, override, needle):
    rc, _, err = run_cli("reproduce", "deepmatch", *TINY, override, "--out", str(tmp_path))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.rglob("runs/*/summary.json"))  # refused before any child ran


def test_bad_files_via_the_cli_are_exit_2(run_cli, tmp_path):
    write(tmp_path / "pairs.tsv", ["a\tb", "c d e", "f\tg"])
    rc, _, err = run_cli("train", "task=rank", "data=textpairs", "model=bilinear", f"data.root={tmp_path}",
                         "trainer=quick", "--out", str(tmp_path / "o"))
    assert rc == 2 and "pairs.tsv:2:" in err and "no tab" in err and len(err.strip().splitlines()) == 1, err
    write(tmp_path / "pairs.tsv", [f"q{i}\tr{i}" for i in range(6)])
    rc, _, err = run_cli("train", "task=rank", "data=textpairs", "model=bilinear", f"data.root={tmp_path}",
                         "data.negatives=9", "data.test_negatives=1", "data.test_fraction=0.4",
                         "trainer=quick",
                         "--out", str(tmp_path / "o"))
    assert rc == 2 and "data.negatives=9" in err and len(err.strip().splitlines()) == 1, err
    rc, _, err = run_cli("train", "task=classify", "data=digits", "model=deepmatch", "trainer=quick",
                         "--out", str(tmp_path / "o"))
    assert rc == 2 and "scores text pairs" in err, err


def test_presets_compose():
    cpu = compose("deepmatch")
    assert cpu.data.name == "textpairs" and cpu.task.name == "rank" and cpu.data.test_negatives == 9
    assert list(cpu.deepmatch.seeds) == [0, 1, 2] and cpu.sweep.workers == 2
    assert list(cpu.deepmatch.fixed_models) == []  # the fixed scorers run on every seed (tie-break spread)
    assert cpu.data.pairing == "linked"
    assert set(cpu.deepmatch.rules) == {"margin", "chance_band", "order_margin"}
    paper = compose("deepmatch", ["experiment=deepmatch_paper"])
    assert paper.deepmatch.needs_root and paper.data.tokenize == "char" and paper.data.test_negatives == 4
    assert paper.data.negatives == 10
    assert list(paper.deepmatch.settings.deepmatch.resolutions) == [400, 100, 25]


def test_paper_preset_end_to_end_on_a_tiny_real_file(run_cli, tmp_path):
    # a Weibo-like corpus in the documented format: Chinese text, one character per token
    topics = [("天气", "晴雨"), ("足球", "进球"), ("电影", "好看")]
    lines = [f"{topics[i % 3][0]}怎么样{i}\t{topics[i % 3][1]}啊{i % 5}" for i in range(90)]
    write(tmp_path / "pairs.tsv", lines)
    rc, out, err = run_cli("reproduce", "deepmatch", "experiment=deepmatch_paper", f"data.root={tmp_path}",
                           "data.min_count=1", "data.test_fraction=0.2", "data.negatives=2",
                           *[f"deepmatch.settings.deepmatch.{kv}" for kv in
                             ("resolutions=[4,2]", "rank=4", "lda_pairs=null", "lda_iter=2", "patch_size=5")],
                           "deepmatch.settings.pls.components=3",
                           "deepmatch.models=[random,pls,deepmatch]", "deepmatch.seeds=[0]",
                           "deepmatch.ablation=[]", "deepmatch.curve.n_train=[]", "trainer.epochs=1",
                           "launcher=inline", "trainer.threads=1", "--out", str(tmp_path / "out"),
                           "--name", "p")
    assert rc == 0, err
    d = tmp_path / "out" / "reproduce" / "p"
    res = pd.read_csv(d / "results.csv")
    assert list(res.model) == ["random", "pls", "deepmatch"] and (res.status == "completed").all()
    summary = json.loads((d / "summary.json").read_text())
    assert summary["source"] == str(tmp_path) and summary["candidates"] == 5
    claims = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert claims["inner_product_chance"] == "not shown" and claims["deepmatch_wins"] == "inconclusive"
    patches = pd.read_csv(d / "patches.csv")
    assert "query_cores" not in patches  # the true cores exist only for the synthetic corpus
    assert (d / "patches.png").is_file() and not (d / "learning.png").exists()


def test_a_model_can_have_its_own_learning_rate():
    """deepmatch.settings.<model>.optimizer.lr: a tuned lr for one model's children only (the CPU preset
    ships each model's tuned lr); a preset without one gives the model the shared optimizer.lr."""
    from dlx.papers.deepmatch.experiment import children

    def lr_of(cfg, model):
        kid = next(c for c in children(cfg) if c.params["model"] == model)
        return [o for o in kid.overrides if o.startswith("optimizer.lr=")]

    cfg = compose("deepmatch", ["deepmatch.settings.bilinear.optimizer.lr=0.004"])
    assert lr_of(cfg, "bilinear") == ["optimizer.lr=0.004"]
    assert lr_of(cfg, "dual_encoder") == [f"optimizer.lr={cfg.deepmatch.settings.dual_encoder.optimizer.lr}"]
    assert cfg.deepmatch.settings.dual_encoder.optimizer.lr != cfg.optimizer.lr
    paper = compose("deepmatch", ["experiment=deepmatch_paper"])
    assert lr_of(paper, "deepmatch") == [f"optimizer.lr={paper.optimizer.lr}"]

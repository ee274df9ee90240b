"""dlx.metrics against independent references: scikit-learn, plain per-group Python loops, closed forms
and small cases worked by hand."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import label_ranking_average_precision_score, mean_pinball_loss, roc_auc_score

from dlx.errors import DlxError
from dlx.metrics import asimov_z, auc, mrr, perplexity, precision_at_k, quantile_loss, rmse

# ---------------------------------------------------------------- references (plain Python, no numpy tricks)


def ref_groups(scores, labels, groups):
    """{group: [(score, label), ...]} in input order."""
    out = defaultdict(list)
    for s, y, g in zip(scores, labels, groups, strict=True):
        out[g].append((float(s), float(y)))
    return out


def ref_precision_at_k(scores, labels, groups, k):
    """P@k for distinct scores within each group (no tie-breaking needed)."""
    vals = []
    for items in ref_groups(scores, labels, groups).values():
        top = sorted(items, key=lambda t: -t[0])[:k]
        vals.append(sum(y > 0 for _, y in top) / min(k, len(items)))
    return sum(vals) / len(vals)


def ref_mrr(scores, labels, groups):
    """MRR for distinct scores within each group."""
    vals = []
    for items in ref_groups(scores, labels, groups).values():
        ranked = sorted(items, key=lambda t: -t[0])
        vals.append(next((1 / r for r, (_, y) in enumerate(ranked, 1) if y > 0), 0.0))
    return sum(vals) / len(vals)


def ref_auc(y, s):
    """Mann-Whitney: P(score of a positive > score of a negative), ties count 1/2."""
    pos = [b for a, b in zip(y, s, strict=True) if a == 1]
    neg = [b for a, b in zip(y, s, strict=True) if a == 0]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def random_ranking(rng, n, n_groups):
    """Distinct scores, 0/1 labels, integer groups shuffled (non-contiguous)."""
    scores = rng.permutation(n).astype(float) / n
    labels = rng.integers(0, 2, n)
    groups = rng.integers(0, n_groups, n)
    return scores, labels, groups


# ---------------------------------------------------------------- import hygiene


def test_import_is_light():
    code = ("import sys, dlx.metrics; heavy = {'torch', 'pandas', 'matplotlib', 'sklearn'} & set(sys.modules)"
            "; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_return_python_float():
    y, s = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.3, 0.2], dtype=np.float32)
    values = [auc(y, s), precision_at_k(s, y, [0, 0, 1, 1]), mrr(s, y, [0, 0, 1, 1]), rmse(y, s),
              quantile_loss(y, s, 0.5), asimov_z(np.float32(3), np.int64(10), np.float64(1)),
              perplexity(np.float32(3.0), np.int64(2))]
    assert all(type(v) is float for v in values)


# ---------------------------------------------------------------- auc


def test_auc_hand_case():
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    assert auc([False, True, True], [0.9, 0.1, 0.2]) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=40))
def test_auc_matches_sklearn_and_mann_whitney(pairs):
    y = [a for a, _ in pairs]
    s = [b / 5 for _, b in pairs]  # coarse scores: plenty of ties
    if len(set(y)) < 2:
        with pytest.raises(DlxError, match="one class"):
            auc(y, s)
        return
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert auc(y, s) == pytest.approx(ref_auc(y, s))


def test_auc_accepts_tensors():
    torch = pytest.importorskip("torch")
    y = torch.tensor([0, 1, 1, 0])
    s = torch.tensor([0.2, 0.7, 0.1, 0.05], requires_grad=True)
    assert auc(y, s) == pytest.approx(roc_auc_score([0, 1, 1, 0], [0.2, 0.7, 0.1, 0.05]))
    assert auc(y, s.to(torch.bfloat16)) == pytest.approx(0.75)


@pytest.mark.parametrize("y, s, match", [
    ([1, 1, 1], [0.1, 0.2, 0.3], "only one class"),
    ([0, 1, 2], [0.1, 0.2, 0.3], "3 classes"),
    ([], [], "empty"),
    ([0, 1], [0.1, 0.2, 0.3], "length mismatch"),
    ([[0, 1], [1, 0]], [[0.1, 0.2], [0.3, 0.4]], "1-D"),
    ([0, 1], [[0.1], [0.2]], "1-D"),
    ([0, 1], [0.1, float("nan")], "NaN"),
    ([0, 1], ["a", "b"], "numeric"),
])
def test_auc_bad_input(y, s, match):
    with pytest.raises(DlxError, match=match):
        auc(y, s)


def test_auc_one_class_message_is_one_line():
    with pytest.raises(DlxError) as err:
        auc([0, 0], [0.3, 0.4])
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- precision_at_k


def test_precision_at_k_hand_case():
    scores = [0.9, 0.8, 0.1, 0.5, 0.7, 0.3, 0.2]
    labels = [0, 1, 1, 1, 0, 0, 0]
    groups = ["q1", "q1", "q1", "q2", "q2", "q3", "q3"]
    # q1 ranked 0.9(0) 0.8(1) 0.1(1); q2: 0.7(0) 0.5(1); q3 has nothing relevant
    assert precision_at_k(scores, labels, groups, k=1) == pytest.approx((0 + 0 + 0) / 3)
    assert precision_at_k(scores, labels, groups, k=2) == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert precision_at_k(scores, labels, groups, k=3) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)


def test_precision_at_k_group_smaller_than_k():
    # group 0 (2 items, 1 relevant) -> 1/2; group 1 (3 items, all relevant) -> 3/3; group 2 (1 item) -> 1/1
    scores, labels, groups = [3, 1, 5, 4, 2, 7], [0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 2]
    assert precision_at_k(scores, labels, groups, k=10) == pytest.approx((0.5 + 1 + 1) / 3)
    assert precision_at_k(scores, labels, groups, k=3) == pytest.approx((0.5 + 1 + 1) / 3)


def test_precision_at_k_non_contiguous_string_groups():
    groups = ["b", "a", "b", "c", "a", "b", "c"]
    scores = [0.1, 0.9, 0.8, 0.5, 0.2, 0.3, 0.6]
    labels = [1, 0, 1, 1, 1, 0, 0]
    # a: 0.9(0) 0.2(1) -> 0; b: 0.8(1) 0.3(0) 0.1(1) -> 1; c: 0.6(0) 0.5(1) -> 0
    assert precision_at_k(scores, labels, groups, k=1) == pytest.approx(1 / 3)
    assert ref_precision_at_k(scores, labels, groups, 1) == pytest.approx(1 / 3)
    # the same with integer, tuple and mixed labels for the groups
    as_int = [{"a": 7, "b": -2, "c": 10**12}[g] for g in groups]
    as_tuple = [(g, 1) for g in groups]
    mixed = [{"a": None, "b": 3, "c": "c"}[g] for g in groups]
    for g in (as_int, as_tuple, mixed, np.array(groups, dtype=object)):
        assert precision_at_k(scores, labels, g, k=1) == pytest.approx(1 / 3)


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_precision_at_k_matches_loop_on_random_data(k):
    rng = np.random.default_rng(k)
    scores, labels, groups = random_ranking(rng, 500, 60)
    expected = ref_precision_at_k(scores, labels, groups, k)
    assert precision_at_k(scores, labels, groups, k=k) == pytest.approx(expected)


def test_precision_at_k_graded_labels_count_when_positive():
    # relevance > 0 counts, whatever its size; 0 and negatives do not
    assert precision_at_k([3, 2, 1], [2.5, -1, 0], [0, 0, 0], k=2) == pytest.approx(1 / 2)
    assert precision_at_k([3, 2, 1], [True, True, False], [0, 0, 0], k=2) == 1.0


def test_ties_broken_at_random_not_by_input_order():
    # 200 groups of 4 all-equal scores, the relevant item FIRST (or last) in every group: an input-order
    # tie-break would give P@1 = 1.0 (or 0.0) and MRR = 1.0 (or 0.25); a random one about 1/4 and H_4/4.
    n_groups, size = 200, 4
    groups = np.repeat(np.arange(n_groups), size)
    scores = np.zeros(n_groups * size)
    first = np.tile([1, 0, 0, 0], n_groups)
    last = np.tile([0, 0, 0, 1], n_groups)
    expected_mrr = (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    for labels in (first, last):
        assert abs(precision_at_k(scores, labels, groups, k=1) - 0.25) < 0.1
        assert abs(mrr(scores, labels, groups) - expected_mrr) < 0.1
        assert precision_at_k(scores, labels, groups, k=4) == 0.25  # the whole group: no randomness left


def test_ties_average_over_seeds_to_chance():
    scores, labels, groups = [1.0] * 5, [1, 0, 1, 0, 0], ["g"] * 5
    p = [precision_at_k(scores, labels, groups, k=1, seed=seed) for seed in range(400)]
    assert set(p) == {0.0, 1.0}  # one seed ranks one item first: it is relevant or not
    assert abs(np.mean(p) - 2 / 5) < 0.08
    p2 = [precision_at_k(scores, labels, groups, k=2, seed=seed) for seed in range(400)]
    assert set(p2) <= {0.0, 0.5, 1.0} and abs(np.mean(p2) - 2 / 5) < 0.08
    r = [mrr(scores, labels, groups, seed=seed) for seed in range(400)]
    # first relevant of 2 among 5 in a random order: rank 1..4 with prob 8/20, 6/20, 4/20, 2/20
    assert abs(np.mean(r) - (8 / 1 + 6 / 2 + 4 / 3 + 2 / 4) / 20) < 0.05


def test_ties_only_within_a_tied_block():
    # the untied top item always wins; only the tied tail is shuffled
    for seed in range(20):
        assert precision_at_k([2, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0], k=1, seed=seed) == 1.0
        assert precision_at_k([2, 1, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0], k=1, seed=seed) == 0.0
        assert precision_at_k([2, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 0], k=2, seed=seed) == 0.5


def test_seeded_and_reproducible():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(100), 5)
    scores = rng.integers(0, 2, 500).astype(float)  # heavy ties
    labels = rng.integers(0, 2, 500)
    a = precision_at_k(scores, labels, groups, k=2, seed=3)
    assert a == precision_at_k(scores, labels, groups, k=2, seed=3)
    assert len({precision_at_k(scores, labels, groups, k=2, seed=s) for s in range(10)}) > 1
    assert mrr(scores, labels, groups, seed=3) == mrr(scores, labels, groups, seed=3)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 8), st.integers(1, 4))
def test_distinct_scores_invariant_to_row_order(seed, n, n_groups, k):
    rng = np.random.default_rng(seed)
    scores, labels, groups = random_ranking(rng, n, n_groups)
    perm = rng.permutation(n)
    p = precision_at_k(scores, labels, groups, k=k, seed=seed)
    assert p == pytest.approx(precision_at_k(scores[perm], labels[perm], groups[perm], k=k, seed=seed + 1))
    assert p == pytest.approx(ref_precision_at_k(scores, labels, groups, k))
    m = mrr(scores, labels, groups, seed=seed)
    assert m == pytest.approx(mrr(scores[perm], labels[perm], groups[perm], seed=seed + 1))
    assert m == pytest.approx(ref_mrr(scores, labels, groups))


def test_precision_at_k_accepts_tensors():
    torch = pytest.importorskip("torch")
    scores = torch.tensor([0.9, 0.1, 0.8, 0.3], requires_grad=True)
    labels, groups = torch.tensor([1, 0, 0, 1]), torch.tensor([5, 5, 9, 9])
    assert precision_at_k(scores, labels, groups) == 0.5
    assert mrr(scores, labels, groups) == pytest.approx((1 + 1 / 2) / 2)


@pytest.mark.parametrize("k", [0, -1, 1.5, 2.0, True, "2", None])
def test_precision_at_k_bad_k(k):
    with pytest.raises(DlxError, match="k must be an integer >= 1"):
        precision_at_k([1, 2], [0, 1], [0, 0], k=k)


def test_precision_at_k_numpy_int_k():
    assert precision_at_k([1, 2], [0, 1], [0, 0], k=np.int64(1)) == 1.0


@pytest.mark.parametrize("fn", [precision_at_k, mrr])
@pytest.mark.parametrize("scores, labels, groups, match", [
    ([], [], [], "empty"),
    ([1, 2], [0, 1], [0], "length mismatch"),
    ([1, 2], [0], [0, 0], "length mismatch"),
    ([1, float("nan")], [0, 1], [0, 0], "NaN"),
    ([[1, 2]], [[0, 1]], [[0, 0]], "1-D"),
    ([1, 2], [0, 1], [0.0, float("nan")], "NaN"),
    ([1, 2], ["x", "y"], [0, 0], "numeric"),
    ([1, 2], [0, 1], [[1], [2, 3]], "hashable"),
])
def test_ranking_bad_input(fn, scores, labels, groups, match):
    with pytest.raises(DlxError, match=match):
        fn(scores, labels, groups)


# ---------------------------------------------------------------- mrr


def test_mrr_hand_case():
    scores = [0.9, 0.8, 0.1, 0.5, 0.7, 0.3, 0.2, 0.4]
    labels = [0, 0, 1, 1, 0, 0, 0, 1]
    groups = ["q1", "q1", "q1", "q2", "q2", "q3", "q3", "q1"]
    # q1: 0.9(0) 0.8(0) 0.4(1) 0.1(1) -> 1/3; q2: 0.7(0) 0.5(1) -> 1/2; q3: none -> 0
    assert mrr(scores, labels, groups) == pytest.approx((1 / 3 + 1 / 2 + 0) / 3)


def test_mrr_matches_sklearn_lrap_with_one_relevant_per_group():
    # with exactly one relevant item per group, label-ranking average precision is 1/rank
    rng = np.random.default_rng(1)
    n_groups, size = 50, 6
    score_matrix = rng.random((n_groups, size))
    label_matrix = np.zeros((n_groups, size), dtype=int)
    label_matrix[np.arange(n_groups), rng.integers(0, size, n_groups)] = 1
    groups = np.repeat(np.arange(n_groups), size)
    perm = rng.permutation(n_groups * size)  # and rows shuffled, so groups are not contiguous
    got = mrr(score_matrix.ravel()[perm], label_matrix.ravel()[perm], groups[perm])
    assert got == pytest.approx(label_ranking_average_precision_score(label_matrix, score_matrix))


def test_mrr_matches_loop_on_random_data():
    rng = np.random.default_rng(2)
    scores, labels, groups = random_ranking(rng, 400, 70)
    groups = np.array([f"user-{g}" for g in groups])
    assert mrr(scores, labels, groups) == pytest.approx(ref_mrr(scores, labels, groups))


def test_mrr_no_relevant_anywhere_is_zero():
    assert mrr([1, 2, 3], [0, 0, 0], [0, 1, 1]) == 0.0
    assert precision_at_k([1, 2, 3], [0, 0, 0], [0, 1, 1], k=2) == 0.0


# ---------------------------------------------------------------- rmse


def test_rmse_hand_case_and_sklearn():
    from sklearn.metrics import mean_squared_error

    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=100), rng.normal(size=100)
    assert rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)))


def test_rmse_flattens_and_refuses_broadcasting():
    y = np.arange(6.0).reshape(2, 3)
    assert rmse(y, y + 2) == pytest.approx(2.0)
    assert rmse([1.0, 2.0], [[1.0], [4.0]]) == pytest.approx(math.sqrt(2))  # (n,) with (n, 1)
    with pytest.raises(DlxError, match="shape mismatch"):
        rmse([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(DlxError, match="shape mismatch"):
        rmse(y, y.T)
    with pytest.raises(DlxError, match="empty"):
        rmse([], [])


def test_rmse_tensor():
    torch = pytest.importorskip("torch")
    assert rmse(torch.ones(3, 2), torch.zeros(3, 2, requires_grad=True)) == pytest.approx(1.0)


# ---------------------------------------------------------------- quantile_loss


def test_quantile_loss_hand_case():
    # y=[1,2,3], ŷ=[2,2,1], q=0.9: |(1-2)(1-0.9)| + |0·(1-0.9)| + |(3-1)(0-0.9)| = 0.1 + 0 + 1.8 = 1.9
    assert quantile_loss([1, 2, 3], [2, 2, 1], 0.9) == pytest.approx(2 * 1.9 / 6)
    # q=0.1: 0.9 + 0 + 0.2 = 1.1
    assert quantile_loss([1, 2, 3], [2, 2, 1], 0.1) == pytest.approx(2 * 1.1 / 6)
    assert quantile_loss([1, -2], [1, -2], 0.3) == 0.0


def test_quantile_loss_at_median_is_nd():
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    assert quantile_loss(y, p, 0.5) == pytest.approx(np.abs(y - p).sum() / np.abs(y).sum())


@pytest.mark.parametrize("q", [0.05, 0.3, 0.5, 0.9])
def test_quantile_loss_is_scaled_sklearn_pinball(q):
    rng = np.random.default_rng(1)
    y, p = rng.gamma(2.0, size=50), rng.gamma(2.0, size=50)
    expected = 2 * len(y) * mean_pinball_loss(y, p, alpha=q) / np.abs(y).sum()
    assert quantile_loss(y, p, q) == pytest.approx(expected)


@pytest.mark.parametrize("q", [0, 1, -0.1, 1.5, float("nan"), True, "0.5", [0.5, 0.9]])
def test_quantile_loss_bad_q(q):
    with pytest.raises(DlxError, match="q must"):
        quantile_loss([1, 2], [1, 2], q)


def test_quantile_loss_zero_scale():
    with pytest.raises(DlxError, match=r"sum\(\|y_true\|\) is 0"):
        quantile_loss([0, 0], [1, 2], 0.5)


# ---------------------------------------------------------------- asimov_z


def asimov_reference(s, b, sigma):
    """The formula exactly as printed in Cowan et al. (2011), eq. (20), with math.log."""
    v = sigma**2
    return math.sqrt(2 * ((s + b) * math.log((s + b) * (b + v) / (b**2 + (s + b) * v))
                          - b**2 / v * math.log(1 + v * s / (b * (b + v)))))


def test_asimov_z_no_uncertainty_closed_form():
    for s, b in [(5, 10), (100, 1000), (0.1, 3), (50, 0.5)]:
        assert asimov_z(s, b) == pytest.approx(math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s)), rel=1e-12)
        assert asimov_z(s, b, 0.0) == asimov_z(s, b)


def test_asimov_z_tiny_uncertainty_agrees_with_zero():
    for s, b in [(5, 10), (100, 1000), (0.1, 3), (50, 0.5)]:
        for sigma in (1e-6, 1e-9, 1e-200):
            assert asimov_z(s, b, sigma) == pytest.approx(asimov_z(s, b), rel=1e-9)


def test_asimov_z_small_signal_limit():
    # s << b: Z -> s / sqrt(b), and with uncertainty s / sqrt(b + σ²)
    assert asimov_z(1, 1e6) == pytest.approx(1 / math.sqrt(1e6), rel=1e-5)
    assert asimov_z(0.5, 1e4, 30) == pytest.approx(0.5 / math.sqrt(1e4 + 900), rel=1e-3)


def test_asimov_z_hand_value():
    # s=100, b=1000, σ_b=50: (s+b) ln(1100·3500 / 3.75e6) = 28.949..., (b²/σ²) ln(1 + 2.5e5/3.5e6) = 27.597...
    # Z = sqrt(2 · 1.3519...) = 1.6443 (a figure of 1.97 sometimes quoted for this case does not follow
    # from the formula; s/sqrt(b+σ²) = 1.690 bounds it from above)
    z = asimov_z(100, 1000, 50)
    assert z == pytest.approx(asimov_reference(100, 1000, 50), rel=1e-12)
    assert z == pytest.approx(1.644318, abs=1e-6)


def test_asimov_z_uncertainty_lowers_significance():
    zs = [asimov_z(20, 100, sigma) for sigma in (0, 1, 5, 20, 100, 1e4)]
    assert all(a > b for a, b in zip(zs, zs[1:], strict=False))
    assert asimov_z(20, 100, 1e300) == 0.0  # unbounded uncertainty: no sensitivity


def test_asimov_z_matches_printed_formula():
    for s, b, sigma in [(3, 7, 2), (40, 12, 0.5), (1e3, 1e5, 300), (0.2, 0.1, 0.05)]:
        assert asimov_z(s, b, sigma) == pytest.approx(asimov_reference(s, b, sigma), rel=1e-9)


def test_asimov_z_no_signal_is_zero():
    assert asimov_z(0, 10) == 0.0
    assert asimov_z(0, 10, 3) == 0.0


@pytest.mark.parametrize("s, b, sigma, match", [
    (1, 0, 0, "b .* must be > 0"),
    (1, -3, 0, "b .* must be > 0"),
    (-1, 3, 0, "s .* must be >= 0"),
    (1, 3, -0.1, "sigma_b .* must be >= 0"),
    (float("nan"), 3, 0, "finite"),
    (1, float("inf"), 0, "finite"),
    (np.array([1.0, 2.0]), 3, 0, "single number"),
    ("5", 3, 0, "single number"),
])
def test_asimov_z_bad_input(s, b, sigma, match):
    with pytest.raises(DlxError, match=match):
        asimov_z(s, b, sigma)


# ---------------------------------------------------------------- perplexity


@pytest.mark.parametrize("vocab", [2, 17, 50_257])
def test_perplexity_of_uniform_model_is_vocab_size(vocab):
    rng = np.random.default_rng(0)
    n = 64
    logits = np.zeros((n, vocab))  # uniform predictions
    targets = rng.integers(0, vocab, n)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    total_nll = -log_probs[np.arange(n), targets].sum()
    assert perplexity(total_nll, n) == pytest.approx(vocab)


def test_perplexity_values():
    assert perplexity(0.0, 10) == 1.0
    assert perplexity(6.0, 3) == pytest.approx(math.exp(2.0))
    assert perplexity(1e6, 1) == math.inf


def test_perplexity_tensor_nll():
    torch = pytest.importorskip("torch")
    assert perplexity(torch.tensor(4.0), torch.tensor(2)) == pytest.approx(math.exp(2.0))


@pytest.mark.parametrize("nll, n, match", [
    (1.0, 0, "n_tokens must be > 0"),
    (1.0, -5, "n_tokens must be > 0"),
    (float("nan"), 3, "finite"),
    (1.0, True, "n_tokens must be a number"),
])
def test_perplexity_bad_input(nll, n, match):
    with pytest.raises(DlxError, match=match):
        perplexity(nll, n)

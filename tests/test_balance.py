from __future__ import annotations

import math
import random

import numpy as np
import pyarrow as pa
import pytest

from metaclip.curation import balance
from metaclip.curation.counts import SparseCounts
from tests.naive import naive_counts, naive_keep_probability


def random_matches(n_rows: int, n_entries: int, seed: int) -> list[list[int]]:
    """Zipf-like entry popularity, 1 to 4 distinct entries per row."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(n_entries)]
    rows = []
    for _ in range(n_rows):
        k = rng.randint(1, 4)
        rows.append(sorted(set(rng.choices(range(n_entries), weights=weights, k=k))))
    return rows


def test_counts_equal_direct_count():
    rows = random_matches(5000, 300, seed=1)
    sparse = SparseCounts.from_entry_ids(pa.array(rows, type=pa.list_(pa.int32())))
    assert sparse.to_dense(300).tolist() == naive_counts(rows, 300)


def test_sparse_sum_is_exact_in_uint64():
    big = np.uint64(2**63 + 5)
    a = SparseCounts(np.array([1, 7]), np.array([big, 3], dtype=np.uint64))
    b = SparseCounts(np.array([7, 9]), np.array([4, 1], dtype=np.uint64))
    total = SparseCounts.sum([a, b, SparseCounts.empty()])
    assert total.ids.tolist() == [1, 7, 9]
    assert total.counts.tolist() == [2**63 + 5, 7, 1]


def test_keep_probability_equals_formula():
    rows = random_matches(2000, 200, seed=2)
    counts = naive_counts(rows, 200)
    t = 40
    probs = balance.entry_probabilities(np.array(counts, dtype=np.uint64), t)
    got = balance.keep_probabilities(pa.array(rows, type=pa.list_(pa.int32())), probs)
    expected = [naive_keep_probability(r, counts, t) for r in rows]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_entry_probability_caps_head_only():
    probs = balance.entry_probabilities(np.array([0, 5, 20, 80], dtype=np.uint64), 20)
    assert probs.tolist() == [1.0, 1.0, 1.0, 0.25]


def test_kept_share_per_entry_is_min_1_t_over_count():
    """Single-entry rows: the kept share of each entry is min(1, t/count) within 5 sigma."""
    rng = random.Random(4)
    n_entries, t = 40, 200
    sizes = [int(5000 / (i + 1)) + 1 for i in range(n_entries)]  # head and tail
    rows = [[e] for e in range(n_entries) for _ in range(sizes[e])]
    rng.shuffle(rows)
    uuids = [f"u{i}" for i in range(len(rows))]
    texts = [f"text {i}" for i in range(len(rows))]
    counts = np.array(naive_counts(rows, n_entries), dtype=np.uint64)
    probs = balance.entry_probabilities(counts, t)
    mask = balance.sample_mask(pa.array(rows, type=pa.list_(pa.int32())), uuids, texts, probs, 7)
    kept = np.bincount(np.array([r[0] for r in rows])[mask], minlength=n_entries)
    for e in range(n_entries):
        p = min(1.0, t / sizes[e])
        sigma = math.sqrt(sizes[e] * p * (1 - p))
        assert abs(kept[e] - sizes[e] * p) <= 5 * sigma + 1e-9, (e, kept[e], sizes[e] * p)
    assert kept[: 5].max() < 2 * t  # the head is capped near t


def test_draws_are_deterministic_and_uniform():
    uuids = [f"{i:024x}" for i in range(20000)]
    texts = ["caption"] * 20000
    a = balance.uniform_draws(0, uuids, texts)
    assert np.array_equal(a, balance.uniform_draws(0, uuids, texts))
    assert not np.array_equal(a, balance.uniform_draws(1, uuids, texts))
    assert a.min() >= 0.0 and a.max() < 1.0
    hist, _ = np.histogram(a, bins=10, range=(0, 1))
    assert hist.min() > 1800 and hist.max() < 2200


def test_draw_depends_on_text_too():
    a = balance.uniform_draws(0, ["u", "u"], ["one text", "another text"])
    assert a[0] != a[1]


def test_t_to_p_and_back():
    counts = np.array([1, 2, 3, 10, 50, 100, 1000, 0], dtype=np.uint64)
    total = counts.sum()
    assert balance.t_to_p(counts, 50) == pytest.approx((1 + 2 + 3 + 10) / total)
    assert balance.t_to_p(counts, 10**9) == 1.0
    assert balance.t_to_p(counts, 1) == 0.0
    for t in (2, 10, 50, 100, 1000, 1001):
        p = balance.t_to_p(counts, t)
        assert balance.p_to_t(counts, p) == t
    assert balance.p_to_t(counts, 0.5) == 1000  # shares: 1000 -> 166/1166, 1001 -> 1


def test_entries_over_t():
    assert balance.entries_over_t(np.array([5, 20, 21, 100]), 20) == 2


def test_bad_t_is_rejected():
    with pytest.raises(ValueError):
        balance.entry_probabilities(np.array([1]), 0)

"""MoDE routing: the library's weights equal a direct numpy computation of the paper's formula."""

from __future__ import annotations

import numpy as np
import pytest

from metaclip.experts.routing import RoutingParams, expert_weights, read_class_names


def direct(d: np.ndarray, k: np.ndarray, n_experts: int, p: RoutingParams) -> np.ndarray:
    """The formula written out once more, loop by loop."""
    n = len(d)
    a = np.exp(p.a_offset - np.sqrt(n)) if n < p.a_cutoff else 0.0
    m = p.m_scale * np.log10(max(p.m_floor, n - p.m_shift))
    w = np.array([sum(np.exp((a - d[c]) * m) for c in range(n) if k[c] == j)
                  for j in range(n_experts)], dtype=np.float64)
    z = np.exp(w / p.temperature)
    return z / z.sum()


@pytest.mark.parametrize("n", [1, 3, 9, 10, 50, 205, 1000])
@pytest.mark.parametrize("seed", range(5))
def test_weights_equal_the_formula(n: int, seed: int):
    rng = np.random.default_rng([n, seed])
    n_experts = int(rng.integers(2, 17))
    d = rng.uniform(0.0, 1.5, n)
    k = rng.integers(0, n_experts, n)
    got = expert_weights(d, k, n_experts)
    np.testing.assert_allclose(got, direct(d, k, n_experts, RoutingParams()), rtol=1e-12)
    assert np.isclose(got.sum(), 1.0)


def test_constants_are_parameters():
    rng = np.random.default_rng(7)
    d, k = rng.uniform(0, 1, 30), rng.integers(0, 4, 30)
    params = RoutingParams(a_offset=1.0, a_cutoff=40, m_scale=2.0, m_floor=3.0, m_shift=5.0,
                           temperature=0.5)
    got = expert_weights(d, k, 4, params)
    np.testing.assert_allclose(got, direct(d, k, 4, params), rtol=1e-12)
    assert not np.allclose(got, expert_weights(d, k, 4))


def test_closer_classes_weigh_more():
    weights = expert_weights(np.array([0.1, 0.1, 0.9]), np.array([0, 0, 1]), 3)
    assert weights[0] > weights[1] > weights[2] > 0  # a class-less expert keeps a softmax share


def test_class_names_from_file_or_list(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("dog\n\n cat \n")
    assert read_class_names(str(path)) == ["dog", "cat"]
    assert read_class_names(["dog", " ", "cat"]) == ["dog", "cat"]

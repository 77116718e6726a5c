"""OV generators: exact planted / pair-free guarantees, the density formula, reproducible seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reductions.errors import InvalidInstance
from reductions.generators.ov import (
    density_for_mu,
    expected_pairs,
    no_pair_ov,
    pair_count_variance,
    planted_ov,
    random_ov,
    random_ov_mu,
)
from reductions.problems.ov import read_ov, write_ov


def matmul_pairs(ov) -> list[list[int]]:
    """Reference pair list from an integer matrix product (independent of solvers.ov)."""
    inner = ov.U.astype(np.int64) @ ov.V.astype(np.int64).T
    return np.argwhere(inner == 0).tolist()


# --------------------------------------------------------------------------- planted / no pair
@given(
    st.integers(1, 30), st.integers(1, 30), st.integers(12, 90), st.integers(0, 6), st.integers(0, 2**32)
)
def test_planted_has_exactly_the_k_recorded_pairs(n_U, n_V, m, k, seed):
    k = min(k, n_U * n_V)
    ov = planted_ov(n_U, n_V, m, k, seed=seed)
    planted = ov.meta["planted_pairs"]
    assert len(planted) == k and planted == sorted(planted) and len(set(map(tuple, planted))) == k
    assert matmul_pairs(ov) == planted
    assert (ov.n_U, ov.n_V, ov.m) == (n_U, n_V, m)


@given(st.integers(0, 40), st.integers(0, 40), st.integers(1, 40), st.integers(0, 2**32))
def test_no_pair_has_no_orthogonal_pair(n_U, n_V, m, seed):
    ov = no_pair_ov(n_U, n_V, m, seed=seed)
    assert matmul_pairs(ov) == []
    assert (ov.n_U, ov.n_V, ov.m) == (n_U, n_V, m) and ov.meta["generator"] == "no_pair_ov"


def test_no_pair_at_high_density_of_accidental_pairs():
    """p = 0.1 in m = 8 makes most pairs orthogonal at first; all of them must be repaired."""
    ov = no_pair_ov(200, 150, 8, seed=3, p=0.1)
    assert matmul_pairs(ov) == []


def test_infeasible_plant_is_refused_with_advice():
    # with m = 1 the number of pairs is a * n_V + (n_U - a) * b (a, b = zero vectors per side): never 1 for 3 x 3
    with pytest.raises(InvalidInstance, match="could not plant exactly k = 1 .* use a larger m"):
        planted_ov(3, 3, 1, 1, seed=0)


def test_planted_with_many_pairs_on_shared_rows():
    ov = planted_ov(6, 5, 40, 20, seed=11)  # 20 of 30 pairs: rows and columns repeat
    assert matmul_pairs(ov) == ov.meta["planted_pairs"]


# --------------------------------------------------------------------------- density formula
@given(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(1, 200), st.floats(0.001, 1.0))
def test_density_for_mu_inverts_the_expectation(n_U, n_V, m, fraction):
    mu = fraction * n_U * n_V
    p = density_for_mu(n_U, n_V, m, mu)
    assert 0.0 <= p <= 1.0
    assert math.isclose(expected_pairs(n_U, n_V, m, p), mu, rel_tol=1e-8)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.floats(0.05, 0.95))
def test_expectation_and_variance_formulas_by_exhaustive_enumeration(n_U, n_V, m, p):
    """Sum over all 2^((n_U + n_V) m) instances, weighted by their Bernoulli(p) probability."""
    bits = (n_U + n_V) * m
    cells = (np.arange(2**bits)[:, None] >> np.arange(bits)) & 1  # every instance, one per row
    X = cells.reshape(-1, n_U + n_V, m)
    counts = (np.einsum("kil,kjl->kij", X[:, :n_U], X[:, n_U:]) == 0).sum(axis=(1, 2))
    ones = cells.sum(axis=1)
    weight = p**ones * (1 - p) ** (bits - ones)
    mean = float(weight @ counts)
    second = float(weight @ counts**2)
    assert math.isclose(expected_pairs(n_U, n_V, m, p), mean, rel_tol=1e-9)
    assert math.isclose(pair_count_variance(n_U, n_V, m, p), second - mean * mean, rel_tol=1e-7, abs_tol=1e-12)


@pytest.mark.parametrize("n_U, n_V, m, mu", [(60, 50, 14, 3.0), (200, 20, 30, 0.7), (40, 40, 6, 25.0)])
def test_random_ov_mu_empirical_mean_matches_mu(n_U, n_V, m, mu):
    """Mean count over S = 300 seeds within 4.5 standard errors sqrt(Var[X] / S) of mu.

    Var[X] is the exact variance (checked by enumeration above); with a correct generator a
    4.5-sigma miss has probability < 1e-5 by the CLT, and the seeds are fixed, so the test is
    deterministic.  A wrong density (e.g. p without the square root) misses by far more.
    """
    S = 300
    counts = [len(matmul_pairs(random_ov_mu(n_U, n_V, m, mu, seed=s))) for s in range(S)]
    p = density_for_mu(n_U, n_V, m, mu)
    standard_error = math.sqrt(pair_count_variance(n_U, n_V, m, p) / S)
    assert abs(np.mean(counts) - mu) <= 4.5 * standard_error


def test_density_extremes():
    assert density_for_mu(10, 10, 5, 100) == 0.0 and density_for_mu(10, 10, 5, 0) == 1.0
    assert not random_ov(4, 4, 3, p=0.0, seed=1).U.any() and random_ov(4, 4, 3, p=1.0, seed=1).V.all()


# --------------------------------------------------------------------------- seeds and meta
GENERATORS = [
    lambda seed: random_ov(30, 20, 17, p=0.4, seed=seed),
    lambda seed: random_ov_mu(30, 20, 17, mu=1.5, seed=seed),
    lambda seed: planted_ov(30, 20, 17, 3, seed=seed),
    lambda seed: no_pair_ov(30, 20, 17, seed=seed),
]


@pytest.mark.parametrize("make", GENERATORS)
def test_seeds_reproduce_and_differ(make, tmp_path):
    a, b, c = make(5), make(5), make(6)
    assert (a.U == b.U).all() and (a.V == b.V).all() and a.meta == b.meta
    assert not ((a.U == c.U).all() and (a.V == c.V).all())
    fresh = make(None)
    again = make(fresh.meta["seed"])  # seed=None records the seed it drew
    assert (fresh.U == again.U).all() and (fresh.V == again.V).all()
    back = read_ov(write_ov(a, tmp_path / "a.npz"))  # meta survives the file round trip
    assert back.meta == a.meta


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: random_ov(-1, 2, 3), "n_U: expected an integer >= 0"),
        (lambda: random_ov(2, 2.5, 3), "n_V: expected an integer >= 0"),
        (lambda: random_ov(2, 2, 0), "m: expected an integer >= 1"),
        (lambda: random_ov(2, 2, 3, p=1.5), "p: expected a probability in [0, 1]"),
        (lambda: random_ov(2, 2, 3, p="x"), "p: expected a probability in [0, 1]"),
        (lambda: random_ov(2, 2, 3, seed=-4), "seed: expected an integer >= 0"),
        (lambda: random_ov_mu(2, 2, 3, mu=5), "mu: expected a number in [0, n_U n_V] = [0, 4]"),
        (lambda: random_ov_mu(0, 2, 3, mu=1), "a side is empty"),
        (lambda: planted_ov(2, 2, 3, 5), "k: 5 pairs requested but there are only n_U n_V = 4"),
        (lambda: planted_ov(2, 2, 3, True), "k: expected an integer >= 0"),
    ],
)
def test_bad_arguments_are_named(call, fragment):
    with pytest.raises(InvalidInstance) as info:
        call()
    assert fragment in str(info.value)

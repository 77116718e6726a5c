"""Feature maps phi, psi: U1 U2^T = P(Q K^T / d), rank C(d + g, g), the hand cases g = 0, 1."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention.errors import InvalidInstance
from attention.features import monomial_basis, monomials, phi, psi, query_weights, rank


@given(
    d=st.integers(1, 5),
    g=st.integers(0, 6),
    n=st.integers(1, 7),
    n_k=st.integers(1, 7),
    seed=st.integers(0, 2**32 - 1),
)
def test_features_reproduce_the_polynomial_of_the_scores(d, g, n, n_k, seed):
    rng = np.random.default_rng(seed)
    Q, K = rng.uniform(-2, 2, (n, d)), rng.uniform(-2, 2, (n_k, d))
    c = rng.standard_normal(g + 1)
    U1, U2 = phi(Q, c), psi(K, g)
    assert U1.shape == (n, rank(d, g)) and U2.shape == (n_k, rank(d, g))
    x = Q @ K.T / d
    expected = np.polynomial.polynomial.polyval(x, c)
    # rounding scale: the terms |c_t| (|q| . |k| / d)^t that the feature inner product adds up
    scale = np.polynomial.polynomial.polyval(np.abs(Q) @ np.abs(K).T / d, np.abs(c))
    assert np.all(np.abs(U1 @ U2.T - expected) <= 1e-13 * (1 + g) * d * scale)


@pytest.mark.parametrize("d, g", [(1, 0), (1, 5), (2, 3), (3, 4), (4, 7), (8, 4)])
def test_basis_is_every_multi_index_once_with_its_multinomial(d, g):
    basis = monomial_basis(d, g)
    assert basis.rank == rank(d, g) == math.comb(d + g, g)
    brute = {alpha for alpha in itertools.product(range(g + 1), repeat=d) if sum(alpha) <= g}
    got = [tuple(int(a) for a in row) for row in basis.exponents]
    assert len(got) == len(set(got)) and set(got) == brute
    assert list(basis.degrees) == sorted(basis.degrees)  # graded order
    for alpha, m in zip(got, basis.multinomials):
        assert m == math.factorial(sum(alpha)) // math.prod(math.factorial(a) for a in alpha)
    for t in range(g + 1):  # sum of multinomials of degree t = d^t
        assert sum(m for a, m in zip(got, basis.multinomials) if sum(a) == t) == d**t
    if d >= 2 and g >= 2:
        assert basis.rank < sum(d**t for t in range(g + 1))  # symmetric, not full tensor powers


def test_monomials_by_hand_and_prefix_property():
    X = np.array([[2.0, 3.0, 5.0]])
    M = monomials(X, 3)[0]
    basis = monomial_basis(3, 3)
    assert list(M) == [float(np.prod(X[0] ** alpha)) for alpha in basis.exponents]
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((5, 3))
    full = monomials(Y, 5)
    for g in range(5):
        assert np.array_equal(full[:, : rank(3, g)], monomials(Y, g))


def test_degree_zero_and_one_by_hand():
    Q = np.array([[1.0, -2.0], [0.5, 4.0]])
    K = np.array([[3.0, 1.0], [-1.0, 2.0], [0.0, 0.5]])
    c0 = np.array([1.7])
    assert np.array_equal(phi(Q, c0), np.full((2, 1), 1.7)) and np.array_equal(psi(K, 0), np.ones((3, 1)))
    assert np.array_equal(phi(Q, c0) @ psi(K, 0).T, np.full((2, 3), 1.7))
    c1 = np.array([1.0, 0.5])  # P(x) = 1 + x / 2 with x = <q, k> / 2
    assert np.array_equal(phi(Q, c1), np.column_stack([np.ones(2), 0.5 * Q / 2]))
    assert np.array_equal(psi(K, 1), np.column_stack([np.ones(3), K]))
    assert np.allclose(phi(Q, c1) @ psi(K, 1).T, 1 + (Q @ K.T / 2) / 2, rtol=0, atol=1e-15)


def test_mpmath_features_are_exact_to_working_precision():
    rng = np.random.default_rng(3)
    Q, K = rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (4, 3))
    with mpmath.workdps(50):
        coeffs = [mpmath.mpf(1) / mpmath.factorial(t) for t in range(6)]
        to_mp = np.frompyfunc(mpmath.mpf, 1, 1)
        got = phi(to_mp(Q).astype(object), coeffs) @ psi(to_mp(K).astype(object), 5).T
        for i, j in itertools.product(range(3), range(4)):
            x = mpmath.fsum(mpmath.mpf(Q[i, l]) * mpmath.mpf(K[j, l]) for l in range(3)) / 3
            assert abs(got[i, j] - mpmath.fsum(c * x**t for t, c in enumerate(coeffs))) < mpmath.mpf(10) ** -45


def test_weights_scale_and_bad_input():
    w = query_weights(np.array([1.0, 2.0, 3.0]), 2, scale=0.5)
    assert list(w) == [1.0, 1.0, 1.0, 0.75, 1.5, 0.75]
    with pytest.raises(InvalidInstance, match="d:"):
        monomial_basis(0, 2)
    with pytest.raises(InvalidInstance, match="degree:"):
        monomial_basis(2, -1)
    with pytest.raises(InvalidInstance, match="X:"):
        monomials(np.ones(3), 2)

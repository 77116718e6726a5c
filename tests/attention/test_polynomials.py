"""Polynomials for exp on [-R, R]: certificates, the degree table of THEORY 5.3, AA22 shape."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import Chebyshev, Polynomial

from attention.errors import InvalidInstance, ResourceError
from attention.polynomials import (
    KINDS,
    aa22_degree,
    degree_for,
    exp_polynomial,
    smallest_degree,
    smallest_polynomial,
    taylor_remainder_bound,
)

# THEORY 5.3: (B, R, delta, Taylor, Chebyshev, minimax, AA22 shape)
TABLE = [
    (0.5, 0.25, 1e-6, 5, 4, 4, 4.3),
    (1, 1, 1e-6, 9, 7, 7, 7.6),
    (2, 4, 1e-6, 21, 15, 13, 21.7),
    (3, 9, 1e-6, 40, 26, 20, 55.9),
    (0.5, 0.25, 1e-12, 9, 8, 8, 7.0),
    (1, 1, 1e-12, 15, 12, 12, 11.0),
    (2, 4, 1e-12, 29, 21, 19, 23.9),
    (3, 9, 1e-12, 48, 34, 29, 49.1),
]
SLOW_R = 9  # Remez at degree ~30 with R = 9 takes seconds


def _row_marks(row):
    return pytest.param(*row, marks=pytest.mark.slow) if row[1] >= SLOW_R else pytest.param(*row)


def relative_error_mp(poly, x) -> mpmath.mpf:
    """|P(x) e^{-x} - 1| evaluated independently in mpmath at 60 digits (Horner in x)."""
    with mpmath.workdps(60 + int(2 * poly.R)):
        x = mpmath.mpf(x)
        value = mpmath.mpf(0)
        for c in reversed(poly.coefficients):
            value = value * x + c
        return abs(value * mpmath.exp(-x) - 1)


def dense_max(poly, points: int = 2001) -> float:
    xs = np.linspace(-poly.R, poly.R, points)
    return float(max(relative_error_mp(poly, x) for x in xs))


@pytest.mark.parametrize("B, R, delta, taylor, cheb, minimax, aa22", [_row_marks(r) for r in TABLE])
def test_degree_table_of_theory(B, R, delta, taylor, cheb, minimax, aa22):
    assert [smallest_degree(R, delta, k) for k in KINDS] == [taylor, cheb, minimax]
    assert round(aa22_degree(R, delta), 1) == aa22
    # minimality, checked independently: one degree less misses delta somewhere on a grid
    for kind, g in zip(KINDS, (taylor, cheb, minimax)):
        assert dense_max(exp_polynomial(R, g - 1, kind), 401) > delta


@pytest.mark.parametrize(
    "R, degree, remez_error",
    [(0.25, 4, 5.1e-7), (1, 7, 1.9e-7), (4, 13, 2.9e-7), pytest.param(9, 20, 8.4e-7, marks=pytest.mark.slow)],
)
def test_remez_errors_at_the_listed_degrees(R, degree, remez_error):
    p = exp_polynomial(R, degree, "minimax")
    assert p.sampled == pytest.approx(remez_error, rel=0.03)
    assert p.sampled <= p.delta <= 1.04 * p.sampled


@settings(max_examples=25)
@given(
    R=st.floats(0.05, 3.0),
    degree=st.integers(0, 9),
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**32 - 1),
)
def test_certificate_bounds_the_error_everywhere(R, degree, kind, seed):
    p = exp_polynomial(R, degree, kind)
    rng = np.random.default_rng(seed)
    xs = np.concatenate([rng.uniform(-R, R, 200), np.linspace(-R, R, 301)])
    worst = max(relative_error_mp(p, x) for x in xs)
    assert worst <= p.delta
    assert p.sampled <= p.delta <= 1.05 * max(p.sampled, 1e-300)  # sharp certificate
    assert worst >= 0.5 * p.sampled  # the sampled maximum is real, not an artefact


@settings(max_examples=15)
@given(R=st.floats(0.1, 3.0), degree=st.integers(1, 9))
def test_minimax_is_best_and_equioscillates(R, degree):
    best = exp_polynomial(R, degree, "minimax")
    for kind in ("taylor", "chebyshev"):
        assert best.delta <= exp_polynomial(R, degree, kind).sampled * 1.001
    # Chebyshev alternation: g + 2 points of alternating sign at the maximal error
    xs = np.linspace(-R, R, 4001)
    with mpmath.workdps(40):
        signed = []
        for x in xs:
            v = mpmath.mpf(0)
            for c in reversed(best.coefficients):
                v = v * mpmath.mpf(x) + c
            signed.append(float(v * mpmath.exp(-mpmath.mpf(x)) - 1))
    signed = np.array(signed)
    top = np.abs(signed).max()
    near = signed[np.abs(signed) >= 0.98 * top]
    alternations = 1 + int(np.count_nonzero(np.diff(np.sign(near)) != 0))
    assert alternations >= degree + 2


@pytest.mark.parametrize("R, g", [(0.5, 4), (1.0, 9), (3.0, 15)])
def test_taylor_is_exact_at_the_end_points_and_below_the_lagrange_bound(R, g):
    p = exp_polynomial(R, g, "taylor")
    assert [float(c) for c in p.coefficients] == pytest.approx([1 / math.factorial(t) for t in range(g + 1)])
    ends = max(relative_error_mp(p, -R), relative_error_mp(p, R))
    assert p.delta == pytest.approx(float(ends), rel=1e-12)
    assert p.delta <= taylor_remainder_bound(R, g)
    assert dense_max(p, 801) <= p.delta


@pytest.mark.parametrize("R, g", [(0.3, 3), (2.0, 9), (5.0, 14)])
def test_chebyshev_interpolant_matches_numpy(R, g):
    reference = Chebyshev.interpolate(np.exp, g, domain=[-R, R]).convert(
        kind=Polynomial, domain=[-R, R], window=[-R, R]
    )
    ours = exp_polynomial(R, g, "chebyshev").coef64
    assert np.allclose(ours, reference.coef, rtol=1e-9, atol=1e-13)


def test_zero_range_and_degree_for():
    p = exp_polynomial(0.0, 5, "minimax")
    assert p.degree == 0 and p.delta == 0.0
    assert smallest_degree(0.0, 1e-9) == 0
    plan = degree_for(1.0, 4, 1e-6)
    assert (plan.degree, plan.rank, plan.kronecker_rank) == (7, math.comb(11, 7), 4 * math.comb(11, 7))
    assert plan.R == 1.0 and plan.delta <= 1e-6
    plan8 = degree_for(0.5, 8, 1e-6)
    assert plan8.rank == math.comb(8 + plan8.degree, plan8.degree) == 495  # THEORY 5.3 rank table


def test_float64_evaluation_and_abs_sum():
    p = exp_polynomial(2.0, 11, "minimax")
    x = np.linspace(-2, 2, 101)
    assert np.all(np.abs(p(x) * np.exp(-x) - 1) <= p.delta + 1e-14)
    with mpmath.workdps(50):
        exact = mpmath.fsum(abs(c) * mpmath.mpf(2) ** t for t, c in enumerate(p.coefficients))
        assert mpmath.mpf(p.abs_sum) >= exact
        assert mpmath.mpf(p.abs_sum) <= exact * (1 + mpmath.mpf(2) ** -50)


def test_bad_arguments_and_resource_limits():
    with pytest.raises(InvalidInstance, match="R:"):
        exp_polynomial(-1.0, 3)
    with pytest.raises(InvalidInstance, match="kind:"):
        exp_polynomial(1.0, 3, "pade")
    with pytest.raises(InvalidInstance, match="degree:"):
        exp_polynomial(1.0, -2)
    with pytest.raises(InvalidInstance, match="delta:"):
        smallest_degree(1.0, 0.0)
    with pytest.raises(InvalidInstance, match="delta:"):
        aa22_degree(1.0, 1.5)
    with pytest.raises(ResourceError, match="degree <= 5"):
        smallest_polynomial(4.0, 1e-9, "minimax", max_degree=5)

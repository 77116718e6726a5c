"""The mpmath oracle: independent of the float64 one, precise to its digits, refuses large work."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention import AttentionInstance, InvalidInstance, ResourceError
from attention import oracle_mp


def _mp_inputs(inst):
    return [[[mpmath.mpf(float(x)) for x in row] for row in getattr(inst, k)] for k in ("A1", "A2", "A3", "E", "X", "Y")]


@settings(max_examples=10)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.sampled_from([0.5, 3.0, 30.0]), st.integers(0, 999))
def test_mp_gradient_equals_central_differences_to_many_digits(n, n_k, d, B, seed):
    """At 80 digits with step 1e-25 the difference quotient is exact to ~1e-45 (relative)."""
    inst = AttentionInstance.random(n=n, n_k=n_k, d=d, B=B, seed=seed, target_scale=2.0)
    with mpmath.workdps(80):
        A1, A2, A3, E, X, Y = _mp_inputs(inst)
        G, _ = oracle_mp.mp_gradient(A1, A2, A3, E, X, Y)
        step = mpmath.mpf(10) ** -25
        scale = 1 + max(abs(g) for row in G for g in row)
        for a in range(d):
            for b in range(d):
                Xp, Xm = [r[:] for r in X], [r[:] for r in X]
                Xp[a][b] += step
                Xm[a][b] -= step
                fd = (oracle_mp.mp_loss(A1, A2, A3, E, Xp, Y) - oracle_mp.mp_loss(A1, A2, A3, E, Xm, Y)) / (2 * step)
                assert abs(fd - G[a][b]) <= mpmath.mpf(10) ** -40 * scale * (1 + B**4)


def test_digits_agree_to_the_stated_mp_bound():
    inst = AttentionInstance.random(n=6, n_k=5, d=3, B=10.0, seed=1, target_scale=1.0)
    low, high = oracle_mp.gradient(inst, digits=30), oracle_mp.gradient(inst, digits=90)
    with mpmath.workdps(100):
        diff = max(abs(a - b) for ra, rb in zip(low.info["mp_gradient"], high.info["mp_gradient"]) for a, b in zip(ra, rb))
    assert diff <= low.info["mp_error_bound"] + high.info["mp_error_bound"]
    assert low.info["mp_error_bound"] < 1e-25 and high.info["mp_error_bound"] < 1e-85
    assert all(isinstance(x, mpmath.mpf) for row in high.info["mp_gradient"] for x in row)
    # the float64 gradient is the rounded mp one: within the stated error (rounding + mp error)
    exact = np.array([[float(x) for x in row] for row in high.info["mp_gradient"]])
    assert np.abs(low.gradient - exact).max() <= low.error_bound


def test_forward_and_loss_are_consistent():
    inst = AttentionInstance.random(n=5, n_k=7, d=2, B=4.0, seed=2, target_scale=3.0)
    fwd, L, G = oracle_mp.forward(inst), oracle_mp.loss(inst), oracle_mp.gradient(inst)
    with mpmath.workdps(60):
        direct = mpmath.fsum((a - mpmath.mpf(float(e))) ** 2 for ra, re in zip(fwd.info["mp_att"], inst.E) for a, e in zip(ra, re)) / 2
        assert abs(direct - L.info["mp_loss"]) < mpmath.mpf(10) ** -45
    assert L.loss == G.loss
    assert fwd.method == L.method == G.method == "mp"


def test_refuses_large_instances_with_the_estimate():
    inst = AttentionInstance.random(n=200, n_k=200, d=8, seed=0)
    with pytest.raises(ResourceError, match="n \\* n_k \\* d"):
        oracle_mp.gradient(inst)


@pytest.mark.parametrize("digits", [0, -3, 2.5, True])
def test_bad_digits(digits):
    inst = AttentionInstance.random(n=2, d=2, seed=0)
    with pytest.raises(InvalidInstance, match="digits"):
        oracle_mp.gradient(inst, digits=digits)

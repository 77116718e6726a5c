"""The polynomial-method forward, loss and gradient against the exact oracles, with their bounds."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attention
from attention import AttentionInstance, InvalidInstance, PrecisionError, ResourceError, fast, oracle, oracle_mp
from attention.features import rank
from attention.polynomials import exp_polynomial


@st.composite
def instances(draw, max_n: int = 24, max_d: int = 4, max_B: float = 2.0) -> AttentionInstance:
    n = draw(st.integers(1, max_n))
    n_k = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    B = draw(st.floats(0.05, max_B))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return AttentionInstance(
        A1=rng.uniform(-B, B, (n, d)),
        A2=rng.uniform(-B, B, (n_k, d)) + draw(st.sampled_from([0.0, 0.5, -3.0])),  # keys off centre
        A3=rng.uniform(-1, 1, (n_k, d)),
        E=rng.uniform(-1, 1, (n, d)),
        X=np.eye(d) + 0.2 * rng.standard_normal((d, d)),
        Y=rng.standard_normal((d, d)),
    )


def kernel_gradient(inst: AttentionInstance, kernel) -> tuple[np.ndarray, np.ndarray, float]:
    """THEORY 0.1 with ``exp`` replaced by ``kernel`` (no row shift): ``(dL/dX, Att, L)``."""
    S = inst.A1 @ inst.X @ inst.A2.T / inst.d
    f = kernel(S)
    f = f / f.sum(axis=1, keepdims=True)
    h = inst.A3 @ inst.Y
    att = f @ h
    c = att - inst.E
    q = c @ h.T
    p = f * q - (f * q).sum(axis=1, keepdims=True) * f
    return inst.A1.T @ p @ inst.A2 / inst.d, att, 0.5 * float((c**2).sum())


@given(instances())
def test_gradient_within_its_bound_of_the_exact_oracle(inst):
    res = fast.gradient(inst, eps=1e-6)
    exact = oracle.gradient(inst)
    assert np.abs(res.gradient - exact.gradient).max() <= res.error_bound + exact.error_bound
    assert abs(res.loss - exact.loss) <= res.loss_error_bound + exact.loss_error_bound
    assert res.info["delta"] <= 0.5e-6
    assert res.info["rank"] == math.comb(inst.d + res.info["degree"], res.info["degree"])
    assert res.info["kronecker_rank"] == inst.d * res.info["rank"]


@settings(max_examples=30)
@given(instances(max_n=16, max_d=3, max_B=1.5), st.sampled_from([1e-4, 1e-8]))
def test_certified_gradient_meets_eps_relative_to_the_exact_gradient(inst, eps):
    exact = oracle.gradient(inst)
    try:
        res = fast.gradient(inst, eps=eps, certify=True)
    except PrecisionError as exc:  # only allowed when the gradient is zero to within the bounds
        assert "zero to within" in str(exc)
        assert np.abs(exact.gradient).max() <= 1e3 * exact.error_bound + 1e-12
        return
    assert res.info["certified"]
    err = np.abs(res.gradient - exact.gradient).max()
    assert err <= res.error_bound + exact.error_bound
    assert res.error_bound <= eps * (np.abs(res.gradient).max() - res.error_bound)
    assert err <= eps * np.abs(exact.gradient).max() + 2 * exact.error_bound


@settings(max_examples=25)
@given(instances(), st.sampled_from(["minimax", "chebyshev", "taylor"]))
def test_forward_and_loss_within_their_bounds(inst, kind):
    fwd = fast.forward(inst, eps=1e-7, kind=kind)
    exact = oracle.forward(inst)
    assert np.abs(fwd.att - exact.att).max() <= fwd.error_bound + exact.error_bound
    lo = fast.loss(inst, eps=1e-7, kind=kind)
    assert abs(lo.loss - oracle.loss(inst).loss) <= lo.error_bound + oracle.loss(inst).error_bound
    assert fwd.info["kind"] == kind and fwd.info["degree"] == lo.info["degree"]


@pytest.mark.parametrize("n, d, B", [(512, 4, 1.0), (1024, 2, 2.0), (768, 8, 0.5)])
def test_measured_error_is_about_delta_and_far_below_the_bound(n, d, B):
    """THEORY 5.2: relative gradient error ~ delta / 2; the rigorous bound is looser by ~n."""
    inst = AttentionInstance.random(n=n, d=d, B=B, seed=n + d)
    res = fast.gradient(inst, eps=1e-6)
    exact = oracle.gradient(inst)
    scale = np.abs(exact.gradient).max()
    measured = np.abs(res.gradient - exact.gradient).max() / scale
    assert measured <= 2 * res.info["delta"] <= 1e-6  # about delta (eta = 2 delta bounds the entries)
    assert measured <= res.error_bound / scale
    assert res.error_bound / scale <= 100 * n * res.info["delta"]


def test_degree_zero_and_one_by_hand():
    inst = AttentionInstance.random(n=7, n_k=5, d=3, B=0.8, seed=11)
    res0 = fast.gradient(inst, degree=0)  # P constant: uniform attention over the keys
    G0, att0, L0 = kernel_gradient(inst, np.ones_like)
    assert np.allclose(res0.gradient, G0, rtol=1e-12, atol=1e-14) and res0.loss == pytest.approx(L0, rel=1e-13)
    assert np.allclose(fast.forward(inst, degree=0).att, (inst.A3 @ inst.Y).mean(axis=0), rtol=1e-13)
    res1 = fast.gradient(inst, degree=1)  # P(x) = c0 + c1 x on the *shifted* scores
    c0, c1 = (float(v) for v in exp_polynomial(res1.info["R_grid"], 1, "minimax").coefficients)
    k0 = np.array(res1.info["key_shift"])
    shift = (inst.A1 @ inst.X @ k0 / inst.d)[:, None]
    G1, att1, L1 = kernel_gradient(inst, lambda S: c0 + c1 * (S - shift))
    assert np.allclose(res1.gradient, G1, rtol=1e-11, atol=1e-13)
    assert res1.loss == pytest.approx(L1, rel=1e-12)


def test_key_shift_is_invisible():
    """Softmax ignores a per-row shift and p 1 = 0: moving all keys by a constant changes nothing."""
    inst = AttentionInstance.random(n=64, d=3, B=1.0, seed=5)
    moved = inst.replace(A2=inst.A2 + np.array([0.5, -2.0, 1.25]))
    a, b = fast.gradient(inst, eps=1e-8), fast.gradient(moved, eps=1e-8)
    assert a.info["degree"] == b.info["degree"]
    assert np.allclose(a.gradient, b.gradient, rtol=1e-12, atol=1e-14)
    assert np.abs(b.gradient - oracle.gradient(moved).gradient).max() <= b.error_bound


def test_blocks_do_not_change_the_result_and_memory_stays_linear():
    inst = AttentionInstance.random(n=300, n_k=170, d=3, seed=2)
    a = fast.gradient(inst, eps=1e-6)
    b = fast.gradient(inst, eps=1e-6, block=7)
    assert np.allclose(a.gradient, b.gradient, rtol=1e-12, atol=1e-15) and b.info["block"] == 7
    big = AttentionInstance.random(n=8192, d=4, B=1.0, seed=3)
    fast.gradient(big, eps=1e-6)  # polynomial cached, imports done
    tracemalloc.start()
    res = fast.gradient(big, eps=1e-6)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    n_by_n = big.n * big.n_k * 8
    assert peak < n_by_n / 8  # an n x n float64 matrix would be 512 MiB
    assert peak < 3 * fast.BLOCK_ELEMENTS * 8 + 64 * big.n * big.d * 8
    assert res.info["rank"] == rank(4, res.info["degree"])


def test_mpmath_below_the_float64_floor():
    inst = AttentionInstance.random(n=10, n_k=8, d=2, B=1.5, seed=3)
    exact = oracle_mp.gradient(inst, digits=60)
    res = fast.gradient(inst, eps=1e-14)
    assert res.info["precision"].startswith("mpmath")
    assert np.abs(res.gradient - exact.gradient).max() <= res.error_bound + exact.error_bound
    with pytest.raises(PrecisionError, match="below what float64 can certify"):
        fast.gradient(inst, eps=1e-14, precision="float64")
    cert = fast.gradient(inst, eps=1e-12, certify=True)
    assert cert.error_bound <= 1e-12 * np.abs(exact.gradient).max()


def test_refusals():
    inst = AttentionInstance.random(n=16, d=4, B=2.0, seed=1)
    with pytest.raises(ResourceError, match="max_rank = 50"):
        fast.gradient(inst, eps=1e-6, max_rank=50)
    with pytest.raises(ResourceError, match="max_rank"):
        fast.gradient(inst, degree=9, max_rank=100)
    big = AttentionInstance.random(n=4000, d=2, B=2.0, seed=1)
    with pytest.raises(PrecisionError, match="float64"):
        fast.gradient(big, eps=1e-13, kind="chebyshev")  # too large for the mpmath fallback
    flat = inst.replace(A3=np.ones((16, 4)))  # h constant over the keys: dL/dX = 0
    assert np.abs(fast.gradient(flat).gradient).max() <= fast.gradient(flat).error_bound
    with pytest.raises(PrecisionError, match="zero to within"):
        fast.gradient(flat, certify=True)
    assert fast.gradient(flat, certify=True, atol=1e-9).error_bound <= 1e-9
    for bad, match in [
        ({"eps": 0.0}, "eps:"),
        ({"eps": 2.0}, "eps:"),
        ({"kind": "pade"}, "kind:"),
        ({"block": 0}, "block:"),
        ({"degree": -1}, "degree:"),
        ({"max_rank": 0}, "max_rank:"),
        ({"precision": "half"}, "precision:"),
        ({"atol": -1.0}, "atol:"),
    ]:
        with pytest.raises(InvalidInstance, match=match):
            fast.gradient(inst, **bad)
    with pytest.raises(InvalidInstance, match="unknown option"):
        fast.forward(inst, digits=30)


def test_api_dispatch_and_score_range():
    inst = AttentionInstance.random(n=32, d=4, B=1.0, seed=9)
    res = attention.gradient(inst, method="fast", eps=1e-6)
    assert res.method == "fast" and {"rank", "degree", "kronecker_rank", "delta", "bound"} <= set(res.info)
    assert res.info["bound"] == res.error_bound
    assert 0 < fast.score_range(inst) <= inst.B**2
    S = inst.A1 @ inst.X @ (inst.A2 - np.array(res.info["key_shift"])).T / inst.d
    assert np.abs(S).max() <= fast.score_range(inst) <= res.info["R_grid"]

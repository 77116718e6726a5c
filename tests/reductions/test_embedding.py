"""AAttC -> AAttLGC embedding (THEORY 4.3, 4.7, 0.2): scores, probes, f' = 2 tr(G), entry bounds."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reductions.embedding import Layout, RawAttention, embed, fprime, fprime_error, original_index, padded_sides
from reductions.errors import InvalidInstance
from reductions.problems.ov import OV
from reductions.rules import ov_to_attention_h as H
from reductions.rules import ov_to_attention_s as S
from reductions.testing import ov_instances

_spec = importlib.util.spec_from_file_location("attention_oracles", Path(__file__).with_name("attention_oracles.py"))
oracles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracles)


@st.composite
def raw_instances(draw: st.DrawFn, max_n: int = 24, max_m: int = 8) -> RawAttention:
    """H or S instances (decision or gradient scale, scaled or integer entries) of random OV instances."""
    ov = draw(ov_instances(max_n=max_n, max_m=max_m))
    U, V, _ = padded_sides(ov.U, ov.V)
    n = len(U)
    integer = draw(st.booleans())
    if draw(st.booleans()):
        return H.construction_h(U, V, draw(st.sampled_from([H.scale_decision, H.scale_gradient]))(n), integer=integer)
    return S.construction_s(U, V, draw(st.sampled_from([S.scale_decision, S.scale_quadrature]))(n), integer=integer)


def _scores(inst) -> np.ndarray:
    return inst.A1 @ inst.X @ inst.A2.T / inst.d


def _f(raw: RawAttention, lam: float, integer: bool) -> float:
    inst, _ = embed(raw, lam=lam, integer=integer)
    T = oracles.forward_oracle(inst).att[:, 0]
    return math.fsum((T**2).tolist())


@given(raw_instances(), st.floats(0.0, 1.0), st.integers(0, 3), st.integers(0, 3), st.booleans(), st.integers(0, 99))
def test_probe_columns_leave_the_scores_unchanged_and_their_diagonal_gradient_is_zero(raw, lam, r1, r2, integer, seed):
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((raw.n_q, r1))
    Z = rng.standard_normal((raw.n_k, r2)) * raw.v[:, None]
    e = rng.standard_normal(raw.n_q) * 3
    integer = integer and raw.s == round(math.sqrt(raw.s)) ** 2
    inst, layout = embed(raw, lam=lam, e=e, R=R, Z=Z, integer=integer)
    plain, _ = embed(raw, lam=lam, integer=integer)
    assert inst.d == layout.total == raw.d + r1 + r2
    np.testing.assert_allclose(_scores(inst), lam * raw.scores(), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(_scores(plain), lam * raw.scores(), rtol=1e-12, atol=1e-9)
    G = oracles.gradient_oracle(inst).gradient
    assert not G[layout.query_probes, layout.query_probes].any()
    assert not G[layout.key_probes, layout.key_probes].any()
    assert not G[layout.main, layout.query_probes].any() and not G[layout.key_probes, layout.main].any()


@settings(max_examples=40)
@given(raw_instances(), st.integers(1, 3), st.integers(1, 3), st.integers(0, 99))
def test_probe_block_is_the_row_weighted_sketch_of_the_attention_matrix(raw, r1, r2, seed):
    """THEORY 0.2: (1/d') R^T p Z = (1/d') R^T diag((T - e)(1 - T)) f Z for Z on {v = 1}."""
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((raw.n_q, r1))
    Z = rng.standard_normal((raw.n_k, r2)) * raw.v[:, None]
    e = rng.standard_normal(raw.n_q) * 5
    lam = float(rng.uniform(0, 1))
    inst, layout = embed(raw, lam=lam, e=e, R=R, Z=Z)
    result = oracles.gradient_oracle(inst)
    W = np.exp(lam * (raw.scores() - raw.scores().max(axis=1, keepdims=True)))
    f = W / W.sum(axis=1, keepdims=True)
    T = f @ raw.v
    expected = R.T @ (((T - e) * (1 - T))[:, None] * (f @ Z)) / inst.d
    block = result.gradient[layout.query_probes, layout.key_probes]
    np.testing.assert_allclose(block, expected, rtol=1e-8, atol=10 * result.error_bound)


@settings(max_examples=30)
@given(raw_instances(max_n=16, max_m=6), st.floats(0.05, 0.95), st.booleans())
def test_fprime_is_twice_the_trace_of_the_gradient(raw, lam, integer):
    """THEORY 4.3 against central differences of f from the forward oracle, and the cumulant formula."""
    integer = integer and raw.s == round(math.sqrt(raw.s)) ** 2
    inst, layout = embed(raw, lam=lam, integer=integer)
    result = oracles.gradient_oracle(inst)
    value = fprime(result.gradient, layout)
    h = 1e-5
    central = (_f(raw, lam + h, integer) - _f(raw, lam - h, integer)) / (2 * h)
    scale = max(1.0, abs(value))
    assert value == pytest.approx(central, abs=1e-5 * scale * raw.max_score)
    assert value == pytest.approx(raw.derivatives(lam)[1], rel=1e-7, abs=1e-9 * scale)
    assert fprime_error(result.error_bound, layout) == 2 * raw.d * (layout.total if integer else 1) * result.error_bound


@given(raw_instances())
def test_f0_is_the_uniform_row_value(raw):
    assert raw.f0() == pytest.approx(_f(raw, 0.0, False), rel=1e-12)
    if raw.meta["construction"] == "H":
        assert raw.f0() == pytest.approx(raw.rows / 2)
    else:
        assert raw.f0() == pytest.approx(raw.rows**2 / (raw.rows + 1))


@given(raw_instances())
def test_cumulant_derivatives_match_finite_differences(raw):
    lam, h = 0.5, 1e-4
    d0, dp, dm = raw.derivatives(lam), raw.derivatives(lam + h), raw.derivatives(lam - h)
    for k in range(3):
        fd = (dp[k] - dm[k]) / (2 * h)
        assert d0[k + 1] == pytest.approx(fd, rel=1e-4, abs=1e-6 * max(1.0, raw.max_score) ** (k + 1))


@given(raw_instances(), st.floats(0.0, 1.0))
def test_entry_bounds_in_both_conventions(raw, lam):
    inst, layout = embed(raw, lam=lam, R=np.ones(raw.n_q), Z=raw.v)
    dt = layout.total
    pattern = max(np.abs(raw.Qp).max(), np.abs(raw.Kp).max())
    assert raw.B_raw == pytest.approx(math.sqrt(raw.s) * pattern)
    # scaled form: B = max(||A1 X||, ||A2||) with A1 X = lambda [sqrt(d') Q, R], A2 = [sqrt(d') K, Z]
    root = math.sqrt(dt * raw.s)
    query, key = root * np.abs(raw.Qp).max(), root * np.abs(raw.Kp).max()
    assert inst.B == pytest.approx(max(lam * max(query, 1.0), key, 1.0))
    if lam == 1.0:
        assert inst.B == pytest.approx(math.sqrt(dt) * raw.B_raw)
    if raw.s == round(math.sqrt(raw.s)) ** 2:
        integer, _ = embed(raw, lam=1.0, integer=True)
        beta = math.sqrt(raw.s)
        assert np.array_equal(integer.A1, np.round(integer.A1)) and np.array_equal(integer.A2, np.round(integer.A2))
        assert integer.B == pytest.approx(raw.d * beta * np.abs(raw.Qp).max())
        np.testing.assert_allclose(_scores(integer), raw.scores(), rtol=1e-12)


def test_integer_embedding_needs_an_integer_scale_and_integer_patterns():
    ov = OV([[1, 0]], [[0, 1]])
    raw = H.construction_h(ov.U, ov.V, H.scale_decision(1))
    with pytest.raises(InvalidInstance, match="integer=True"):
        embed(raw, integer=True)
    assert embed(H.construction_h(ov.U, ov.V, H.scale_decision(1), integer=True), integer=True)[0].X[0, 0] == 4


def test_probes_of_the_wrong_length_are_refused():
    raw = S.construction_s(np.eye(3, dtype=np.uint8), np.eye(3, dtype=np.uint8), 2.0)
    with pytest.raises(InvalidInstance, match="R: expected 4 rows"):
        embed(raw, R=np.ones(3))
    with pytest.raises(InvalidInstance, match="Z: expected 4 rows"):
        embed(raw, Z=np.ones((2, 1)))


@given(st.integers(0, 20), st.integers(0, 20), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_padding_keeps_the_answer_and_decodes_to_original_rows(n_U, n_V, m, seed):
    rng = np.random.default_rng(seed)
    ov = OV((rng.random((n_U, m)) < 0.4).astype(np.uint8), (rng.random((n_V, m)) < 0.4).astype(np.uint8))
    U, V, empty = padded_sides(ov.U, ov.V)
    n = max(ov.n_U, ov.n_V, 1)
    assert U.shape == V.shape == (n, ov.m)
    assert empty == (ov.n_U == 0 or ov.n_V == 0)
    orth = (U.astype(int) @ V.T.astype(int) == 0)
    original = (ov.U.astype(int) @ ov.V.T.astype(int) == 0)
    assert orth.any() == original.any()
    for i, j in np.argwhere(orth):
        assert original[original_index(i, ov.n_U), original_index(j, ov.n_V)]
    Uf, Vf, _ = padded_sides(ov.U, ov.V, far=True)
    if empty:
        assert (Uf != Vf).all()


def test_layout_slices():
    layout = Layout(4, 2, 1)
    assert (layout.total, layout.main, layout.query_probes, layout.key_probes) == (
        7, slice(0, 4), slice(4, 6), slice(6, 7))

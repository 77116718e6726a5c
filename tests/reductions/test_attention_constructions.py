"""OV / Gap-ANN -> attention forward: Constructions H and S and the Gap-ANN variants (THEORY 2.4-2.7).

Every check is against an independent computation: inner products and distances of the OV
vectors in integer arithmetic, softmax rows computed naively, brute-force OV.
"""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention.results import ForwardResult
from reductions.embedding import embed, padded_sides
from reductions.errors import InvalidInstance, PrecisionError
from reductions.problems.bhcp import BHCP
from reductions.problems.ov import OV, is_orthogonal_pair
from reductions.registry import check_formulas, get_rule
from reductions.rules import gapann_to_attention as gapann
from reductions.rules import ov_to_attention_h as H
from reductions.rules import ov_to_attention_s as S
from reductions.testing import ov_instances
from solvers.ov import solve_ov

_spec = importlib.util.spec_from_file_location("attention_oracles", Path(__file__).with_name("attention_oracles.py"))
oracles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracles)
attention_rows, forward_oracle = oracles.attention_rows, oracles.forward_oracle

FORWARD_RULES = [H.reduce, S.reduce]


def _inner(ov_U: np.ndarray, ov_V: np.ndarray) -> np.ndarray:
    return ov_U.astype(np.int64) @ ov_V.astype(np.int64).T


def _has_partner(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    return (_inner(U, V) == 0).any(axis=1)


# ----------------------------------------------------------------------------- scores
@given(ov_instances(max_n=64, max_m=16), st.sampled_from(["decision", "gradient"]), st.booleans())
def test_h_scores_are_s_times_m_minus_inner_and_half_of_each_row_is_the_max(ov, scale, integer):
    U, V, _ = padded_sides(ov.U, ov.V)
    n, m = U.shape
    s0 = H.scale_decision(n) if scale == "decision" else H.scale_gradient(n)
    raw = H.construction_h(U, V, s0, integer=integer)
    S_ = raw.scores()
    IP = _inner(U, V)
    assert raw.s >= s0 and (not integer or math.isqrt(int(raw.s)) ** 2 == raw.s)
    np.testing.assert_allclose(S_[:n, :n], raw.s * (m - IP), rtol=1e-13)
    np.testing.assert_allclose(S_[n:, :n], raw.s * (m - IP), rtol=1e-13)    # duplicated queries
    np.testing.assert_allclose(S_[:, n:], raw.s * m, rtol=1e-13)             # dummy keys at s m
    row_max = S_.max(axis=1)
    assert np.allclose(row_max, raw.s * m) and raw.max_score == pytest.approx(S_.max())
    assert ((np.isclose(S_, row_max[:, None])).sum(axis=1) >= n).all()        # >= half at the max
    assert S_.min() >= -1e-12 and raw.spread >= (S_.max(axis=1) - S_.min(axis=1)).max() - 1e-9
    assert raw.B_raw == pytest.approx(math.sqrt(raw.s))
    if integer:
        assert np.array_equal(raw.Q, np.round(raw.Q)) and np.array_equal(raw.K, np.round(raw.K))


@given(ov_instances(max_n=64, max_m=16))
def test_s_scores_are_s_times_m_minus_inner_and_the_sentinel_scores_s_m(ov):
    U, V, _ = padded_sides(ov.U, ov.V)
    n, m = U.shape
    raw = S.construction_s(U, V, S.scale_decision(n))
    S_ = raw.scores()
    IP = _inner(U, V)
    assert S_.shape == (n + 1, n + 1)
    np.testing.assert_allclose(S_[:n, :n], raw.s * (m - IP), rtol=1e-13)
    np.testing.assert_allclose(S_[n, :n], raw.s * (m - IP[0]), rtol=1e-13)   # copy of query 0
    np.testing.assert_allclose(S_[:, n], raw.s * m, rtol=1e-13)
    assert raw.v.tolist() == [1.0] * n + [0.0]


@given(ov_instances(max_n=48, max_m=12), st.sampled_from(FORWARD_RULES))
def test_embedded_instance_has_the_raw_scores_and_reports_both_entry_bounds(ov, rule):
    red = rule(ov)
    inst = red.target
    U, V, _ = padded_sides(ov.U, ov.V)
    raw = (H.construction_h(U, V, H.scale_decision(len(U))) if rule is H.reduce
           else S.construction_s(U, V, S.scale_decision(len(U))))
    np.testing.assert_allclose(inst.A1 @ inst.X @ inst.A2.T / inst.d, raw.scores(), rtol=1e-12, atol=1e-12)
    assert inst.meta["problem"] == "attention" and not inst.E.any()
    assert red.params["B"] == inst.B == pytest.approx(math.sqrt(inst.d) * red.params["B_raw"])
    assert red.params["B_raw"] == pytest.approx(math.sqrt(red.params["s"]))
    assert red.params["max_score"] == pytest.approx(raw.scores().max())
    assert all(c.ok for c in check_formulas(red)), check_formulas(red)


# ----------------------------------------------------------------------------- the lemmas
@settings(max_examples=40)
@given(ov_instances(max_n=64, max_m=16), st.sampled_from(["H", "H-gradient", "S", "S-quadrature"]))
def test_row_promise_yes_rows_above_t_yes_and_no_rows_below_t_no(ov, variant):
    """THEORY 2.4/2.5: a row with a partner has T_i >= t_yes, one without T_i <= t_no."""
    U, V, _ = padded_sides(ov.U, ov.V)
    n = len(U)
    build = {
        "H": lambda: H.construction_h(U, V, H.scale_decision(n)),
        "H-gradient": lambda: H.construction_h(U, V, H.scale_gradient(n)),
        "S": lambda: S.construction_s(U, V, S.scale_decision(n)),
        "S-quadrature": lambda: S.construction_s(U, V, S.scale_quadrature(n)),
    }[variant]
    raw = build()
    inst, _ = embed(raw, problem="attention")
    T = attention_rows(inst)[:n]
    partner = _has_partner(U, V)
    assert (T[partner] >= raw.t_yes * (1 - 1e-12)).all()
    assert (T[~partner] <= raw.t_no * (1 + 1e-12)).all()
    if variant.startswith("H"):
        assert (T <= 0.5 + 1e-15).all()
        assert raw.t_yes == pytest.approx(1 / (n + 1))


@given(ov_instances(max_n=64, max_m=16), st.sampled_from(FORWARD_RULES))
def test_forward_decision_agrees_with_brute_force_and_witness_is_orthogonal(ov, rule):
    red = rule(ov)
    answer = red.lift(forward_oracle)
    truth = solve_ov(ov)
    assert (answer is None) == (truth is None)
    if answer is not None:
        assert is_orthogonal_pair(ov, answer)
    assert red.stats["oracle_calls"] == 1
    assert red.stats["margin"] > red.stats["oracle_error"]
    # the statistic is max T over the real rows, compared with the stated threshold
    T = attention_rows(red.target)[: max(ov.n_U, ov.n_V)]
    assert red.stats["statistic"] == pytest.approx(T.max(), rel=1e-12)
    assert (red.stats["statistic"] > red.stats["threshold"]) == (truth is not None)


def test_thresholds_and_margins_are_theory_values():
    ov = OV(np.eye(7, dtype=np.uint8), np.eye(7, dtype=np.uint8))
    n = 7
    h, s = H.reduce(ov), S.reduce(ov)
    assert h.params["precision"] == pytest.approx(3 / (8 * (n + 1)))
    assert s.params["precision"] == pytest.approx(1 / 8)
    h.lift(forward_oracle), s.lift(forward_oracle)
    assert h.stats["threshold"] == pytest.approx(5 / (8 * (n + 1)))
    assert s.stats["threshold"] == pytest.approx(3 / 8)


def test_uneven_and_empty_sides():
    ov = OV([[1, 0, 1]], [[1, 1, 1], [1, 0, 1], [0, 1, 0]])         # only (0, 2) is orthogonal
    for rule in FORWARD_RULES:
        red = rule(ov)
        assert red.target.n in (6, 4)
        assert red.lift(forward_oracle) == (0, 2)

    def must_not_be_called(instance):
        raise AssertionError("the oracle was called on an instance with an empty side")

    for empty in (OV(np.zeros((0, 3)), [[0, 0, 0]]), OV([[0, 1, 0]], np.zeros((0, 3)))):
        for rule in FORWARD_RULES:
            red = rule(empty)
            assert red.lift(must_not_be_called) is None
            assert red.stats["oracle_calls"] == 0
            ones = OV(np.ones((1, 3)), np.ones((1, 3)))                # the target is this NO instance's
            twin = rule(ones)
            assert np.array_equal(red.target.A1, twin.target.A1) and np.array_equal(red.target.A2, twin.target.A2)
            assert twin.lift(forward_oracle) is None


# ----------------------------------------------------------------------------- refusals
def _yes_instance() -> OV:
    return OV([[1, 0, 0], [0, 1, 1]], [[0, 1, 1], [1, 1, 0]])


@pytest.mark.parametrize("rule", FORWARD_RULES)
def test_refuses_when_the_stated_error_reaches_the_margin(rule):
    red = rule(_yes_instance())

    def sloppy(instance):
        result = forward_oracle(instance)
        return ForwardResult(result.att, red.params["precision"], "sloppy")

    with pytest.raises(PrecisionError, match="margin"):
        red.lift(sloppy)


@pytest.mark.parametrize("rule", FORWARD_RULES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_refuses_nan_outputs_and_nonsense_error_bounds(rule, bad):
    red = rule(_yes_instance())

    def nan_output(instance):
        att = forward_oracle(instance).att.copy()
        att[:, 0] = math.nan
        return ForwardResult(att, 0.0, "nan")

    def bad_bound(instance):
        return ForwardResult(forward_oracle(instance).att, bad, "bad")

    with pytest.raises(PrecisionError):
        rule(_yes_instance()).lift(nan_output)
    with pytest.raises(PrecisionError):
        red.lift(bad_bound)


def test_an_oracle_that_lies_beyond_its_bound_is_caught_not_believed():
    ov = OV([[1, 1], [1, 0]], [[1, 1], [1, 0]])                      # NO instance

    def liar(instance):
        att = np.zeros((instance.n, instance.d))
        att[:, 0] = 0.9
        return ForwardResult(att, 0.0, "liar")

    for rule in FORWARD_RULES:
        with pytest.raises(PrecisionError, match="contradicts"):
            rule(ov).lift(liar)


def test_an_oracle_returning_the_wrong_type_or_shape_is_refused():
    red = S.reduce(_yes_instance())
    with pytest.raises(InvalidInstance, match="error_bound"):
        red.lift(lambda instance: np.zeros((instance.n, instance.d)))
    with pytest.raises(InvalidInstance, match="shape"):
        red.lift(lambda instance: ForwardResult(np.zeros((1, 1)), 0.0, "x"))


# ----------------------------------------------------------------------------- Gap-ANN
@st.composite
def gapann_instances(draw: st.DrawFn) -> BHCP:
    """Gap-ANN instances keeping the promise: t = the min distance (YES) or a NO with (1+eps)t = min distance."""
    n_U, n_V, D = draw(st.integers(1, 24)), draw(st.integers(1, 24)), draw(st.integers(2, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    U = (rng.random((n_U, D)) < 0.5).astype(np.uint8)
    V = (rng.random((n_V, D)) < 0.5).astype(np.uint8)
    dist = (U[:, None, :] != V[None, :, :]).sum(axis=2)
    lo = int(dist.min())
    if draw(st.booleans()) and lo >= 1:
        t = lo
        eps = Fraction(draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    else:
        if lo < 2:  # make the NO side separable: push every distance to >= 2 by flipping a coordinate
            U = np.concatenate([U, np.ones((n_U, 2), np.uint8)], axis=1)
            V = np.concatenate([V, np.zeros((n_V, 2), np.uint8)], axis=1)
            dist = dist + 2
            lo = int(dist.min())
        t = draw(st.integers(1, lo - 1))
        eps = Fraction(lo, t) - 1
    return BHCP(U, V, t=t, eps=eps, meta={"problem": "gapann"})


def _close(inst: BHCP) -> np.ndarray:
    return (inst.U[:, None, :] != inst.V[None, :, :]).sum(axis=2) <= inst.t


@given(gapann_instances(), st.sampled_from([gapann.reduce_h, gapann.reduce_s]))
def test_gapann_variants_decide_and_find_close_pairs(inst, rule):
    close = _close(inst)
    if rule is gapann.reduce_s and inst.t > inst.m:
        with pytest.raises(InvalidInstance, match="exceeds the dimension"):
            rule(inst)
        return
    red = rule(inst)
    answer = red.lift(forward_oracle)
    assert (answer is not None) == bool(close.any())
    if answer is not None:
        assert close[answer]
    assert all(c.ok for c in check_formulas(red)), check_formulas(red)


@given(gapann_instances(), st.sampled_from([gapann.gapann_h, gapann.gapann_s]))
def test_gapann_row_promise(inst, build):
    if build is gapann.gapann_s and inst.t > inst.m:
        return
    U, V, _ = padded_sides(inst.U, inst.V, far=True)
    raw = build(U, V, inst.t, float(inst.eps * inst.t))
    dist = (U[:, None, :] != V[None, :, :]).sum(axis=2)
    scores = raw.scores()
    np.testing.assert_allclose(scores[:, : len(V)][: len(U)], raw.s * (inst.m - dist), rtol=1e-12)
    inst_att, _ = embed(raw, problem="attention")
    T = attention_rows(inst_att)[: len(U)]
    close = (dist <= inst.t).any(axis=1)
    far = (dist >= inst.t + float(inst.eps * inst.t) - 1e-9).all(axis=1)
    assert (T[close] >= raw.t_yes * (1 - 1e-12)).all()
    assert (T[far] <= raw.t_no * (1 + 1e-12)).all()


@settings(max_examples=30)
@given(ov_instances(max_n=32, max_m=10))
def test_gapann_routes_on_the_exact_gap_bhcp_instances_of_ov(ov):
    """THEORY 6 item 7: the Gap-ANN variants on OV -> BHCP -> Gap-ANN (t = m, eps = 2/m)."""
    bhcp = get_rule("ov_to_bhcp")(ov).target
    inst = get_rule("bhcp_to_gapann")(bhcp).target
    assert inst.t == ov.m and inst.eps == Fraction(2, ov.m)
    truth = solve_ov(ov)
    for rule in (gapann.reduce_h, gapann.reduce_s):
        red = rule(inst)
        try:
            answer = red.lift(forward_oracle)
        except PrecisionError:
            # the H-variant needs precision 3 e^{-st}/(8(n+1)) = n^{-Theta(m)} with OV's gap eps = 2/m:
            # refusing is right exactly when the oracle's stated error is not below it
            assert rule is gapann.reduce_h and red.stats["oracle_error"] >= red.stats["margin"]
            continue
        assert (answer is None) == (truth is None)
        if answer is not None:
            assert is_orthogonal_pair(ov, answer)      # dist = m + 2 <a, b> <= m iff orthogonal
        # entry bound Theta(log n) with OV's vanishing gap: B^2 = 2 D ln(.) / (eps t) = 2 D ln(.) / 2
        assert red.params["B"] ** 2 == pytest.approx(inst.m * red.params["s"] * 2)


def test_gapann_refuses_a_threshold_of_zero_and_a_missing_question():
    with pytest.raises(InvalidInstance, match="t >= 1"):
        gapann.reduce_h(BHCP([[1, 0]], [[1, 0]], t=0, eps=1))
    with pytest.raises(InvalidInstance, match="question"):
        gapann.reduce_s(BHCP([[1, 0]], [[1, 0]]))

"""Decoders (a) Riemann, (b) Gauss-Legendre, (c) probe (THEORY 4.4-4.7), and Lemma E.3's bounds.

References: brute-force OV, the forward oracle (T and f(1)), the cumulant formulas for the
derivatives of f (:meth:`RawAttention.derivatives`, checked against finite differences in
``test_embedding.py``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention.results import GradientResult
from reductions.decoders.common import Gap, derivative_bound, f1_gap, fprime_oracle, halve
from reductions.decoders.gauss_legendre import certified_error, integrate, plan
from reductions.decoders.probe import ProbeDecoder, default_mu, probe_scale, row_gap
from reductions.decoders.riemann import paper_points, riemann_bound
from reductions.embedding import embed, padded_sides
from reductions.errors import InvalidInstance, PrecisionError
from reductions.problems.ov import OV, is_orthogonal_pair
from reductions.registry import check_formulas, evaluate, get_rule, measure
from reductions.rules import ov_to_gradient_probe as probe
from reductions.rules import ov_to_gradient_quadrature as quad
from reductions.rules import ov_to_gradient_riemann as riemann
from reductions.rules.ov_to_attention_h import construction_h, scale_gradient
from reductions.rules.ov_to_attention_s import construction_s, scale_quadrature
from reductions.testing import ov_instances
from solvers.ov import solve_ov

_spec = importlib.util.spec_from_file_location("attention_oracles", Path(__file__).with_name("attention_oracles.py"))
oracles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracles)
gradient_oracle, forward_oracle = oracles.gradient_oracle, oracles.forward_oracle


def _h(ov: OV):
    U, V, _ = padded_sides(ov.U, ov.V)
    return U, V, construction_h(U, V, scale_gradient(len(U)))


def _exact_T(raw) -> np.ndarray:
    inst, _ = embed(raw, problem="attention")
    return forward_oracle(inst).att[:, 0]


def _check_answer(ov: OV, answer) -> None:
    truth = solve_ov(ov)
    assert (answer is None) == (truth is None)
    if answer is not None:
        assert is_orthogonal_pair(ov, answer)


# ============================================================================= decoder (c)
@given(ov_instances(max_n=64, max_m=16), st.sampled_from([1.0, None, 1e4]))
def test_two_call_probe_reads_sum_T_one_minus_T_exactly(ov, mu):
    U, V, raw = _h(ov)
    n = raw.rows
    T = _exact_T(raw)[:n]
    S_exact = math.fsum((T * (1 - T)).tolist())
    dec = ProbeDecoder(raw, gradient_oracle, default_mu(raw) if mu is None else mu)
    rho = np.concatenate([np.ones(n), np.zeros(n)])
    two, err2 = dec.value(rho, raw.v, two_call=True)
    one, err1 = dec.value(rho, raw.v, two_call=False)
    assert dec.calls == 3
    assert two == pytest.approx(S_exact, rel=1e-9, abs=err2 + 1e-15)
    assert S_exact - err1 - 1e-15 <= one <= (1 + 0.5 / dec.mu) * S_exact + err1 + 1e-15
    assert one == pytest.approx(math.fsum((T * (1 - T) * (1 + T / dec.mu)).tolist()), rel=1e-9, abs=err1 + 1e-15)


@given(st.integers(1, 4096), st.floats(1.0, 1e6))
def test_probe_margins_meet_theory_bounds(n, mu):
    """THEORY 4.7: one call margin >= 5/(32(n+1)) for mu >= 1; two calls >= 3/(16(n+1))."""
    U = np.eye(1, dtype=np.uint8).repeat(n, axis=0)
    raw = construction_h(U, U, scale_gradient(n))
    assert row_gap(raw, mu, n).margin >= 5 / (32 * (n + 1))
    assert row_gap(raw, mu, n, two_call=True).margin >= 3 / (16 * (n + 1)) * (1 - 1e-12)
    mu0 = default_mu(raw)
    assert mu0 * probe_scale(raw) ** 2 * row_gap(raw, mu0, n).margin / (raw.d + 2) >= 5 / 32 * (raw.d + 2) * raw.s


def _probe_call_range(ov: OV, yes: bool, two_call: bool, key_search: str) -> range:
    """Detection calls, plus floor..ceil(log2 n) halving rounds per halving search on YES."""
    n = max(ov.n_U, ov.n_V)
    searches = (2 if key_search == "halving" else 1) if yes else 0
    base = 2 if two_call else 1
    return range(base + searches * int(math.log2(n)), base + searches * math.ceil(math.log2(n)) + 1)


@given(
    ov_instances(max_n=64, max_m=16),
    st.sampled_from([None, 1.0]),
    st.booleans(),
    st.sampled_from(["scan", "halving"]),
)
def test_probe_route_agrees_with_brute_force_with_its_call_count(ov, mu, two_call, key_search):
    red = probe.reduce(ov, mu=mu, two_call=two_call, key_search=key_search)
    answer = red.lift(gradient_oracle)
    _check_answer(ov, answer)
    assert red.stats["oracle_calls"] in _probe_call_range(ov, answer is not None, two_call, key_search)
    assert red.stats["margin"] > red.stats["oracle_error"]
    assert all(r["margin"] > r["oracle_error"] for r in red.stats["decisions"])
    assert all(c.ok for c in check_formulas(red)), check_formulas(red)
    if not two_call and key_search == "scan":               # the registered count is the worst case
        stated = evaluate(get_rule("ov_to_gradient_probe").calls_expression, measure("ov", ov))
        assert red.stats["oracle_calls"] <= stated
        assert red.stats["oracle_calls"] == stated or answer is None or max(ov.n_U, ov.n_V) & (max(ov.n_U, ov.n_V) - 1)


@settings(max_examples=25)
@given(st.integers(2, 64), st.integers(2, 12), st.integers(0, 2**32 - 1), st.floats(0.2, 0.9))
def test_witness_halving_on_instances_with_many_yes_rows(n, m, seed, share):
    """Many rows with partners: a random share of U's rows (at least one) set to zero."""
    rng = np.random.default_rng(seed)
    U = (rng.random((n, m)) < 0.6).astype(np.uint8)
    V = (rng.random((n, m)) < 0.6).astype(np.uint8)
    yes_rows = rng.random(n) < share
    yes_rows[rng.integers(n)] = True
    U[yes_rows] = 0                                                   # a zero row is orthogonal to all
    ov = OV(U, V)
    for key_search in ("scan", "halving"):
        red = probe.reduce(ov, key_search=key_search)
        answer = red.lift(gradient_oracle)
        _check_answer(ov, answer)
        halving = [r for r in red.stats["decisions"] if r["purpose"] == "row halving"]
        assert int(math.log2(n)) <= len(halving) <= math.ceil(math.log2(n))


def test_probe_target_is_the_detection_instance_with_theory_sizes():
    ov = OV(np.eye(8, dtype=np.uint8), np.eye(8, dtype=np.uint8)[::-1])
    red = probe.reduce(ov)
    inst, n, m = red.target, 8, 8
    d = 2 * m + 2
    assert (inst.n, inst.d, red.params["mu"]) == (2 * n, d, d * (n + 1))
    assert red.params["s"] == pytest.approx(math.log(8 * n * (n + 1)))
    assert red.params["B"] == pytest.approx(math.sqrt(d * math.log(8 * n * (n + 1))))
    assert red.params["precision"] >= 5 / 32 * d * red.params["s"]
    beta = math.sqrt(d * red.params["s"])                              # probes as large as the rest
    assert np.abs(inst.A1[:, -2]).max() == pytest.approx(beta) and inst.B == pytest.approx(beta)
    assert inst.E[:n, 0].tolist() == [-red.params["mu"]] * n and not inst.E[n:].any()


@pytest.mark.parametrize("form", [{}, {"two_call": True}, {"key_search": "halving"}])
def test_probe_refuses_imprecise_nan_and_malformed_oracles(form):
    ov = OV([[1, 0, 1], [0, 1, 0]], [[0, 1, 0], [1, 1, 1]])
    red = probe.reduce(ov, **form)

    def sloppy(instance):
        r = gradient_oracle(instance)
        return GradientResult(r.gradient, r.loss, red.params["precision"], r.loss_error_bound, "sloppy")

    def nan(instance):
        r = gradient_oracle(instance)
        return GradientResult(np.full_like(r.gradient, np.nan), r.loss, 0.0, 0.0, "nan")

    for oracle in (sloppy, nan):
        with pytest.raises(PrecisionError):
            probe.reduce(ov, **form).lift(oracle)
    with pytest.raises(InvalidInstance, match="shape"):
        red.lift(lambda instance: GradientResult(np.zeros((2, 2)), 0.0, 0.0, 0.0, "x"))
    with pytest.raises(InvalidInstance, match="mu"):
        probe.reduce(ov, mu=-1.0)
    with pytest.raises(InvalidInstance, match="key_search"):
        probe.reduce(ov, key_search="binary")


def test_probe_catches_an_oracle_that_breaks_its_own_bound():
    ov = OV([[1, 1], [1, 0]], [[1, 1], [1, 0]])                      # NO instance

    def liar(instance):
        r = gradient_oracle(instance)
        G = r.gradient.copy()
        G[-2, -1] = 1e3                                              # the (P, W) entry
        return GradientResult(G, r.loss, 0.0, 0.0, "liar")

    with pytest.raises(PrecisionError, match="contradicts"):
        probe.reduce(ov).lift(liar)


# ============================================================================= decoder (b)
@st.composite
def small_raw(draw: st.DrawFn):
    ov = draw(ov_instances(max_n=12, max_m=6))
    U, V, _ = padded_sides(ov.U, ov.V)
    n = len(U)
    if draw(st.booleans()):
        return construction_h(U, V, scale_gradient(n))
    return construction_s(U, V, scale_quadrature(n))


@settings(max_examples=20)
@given(small_raw(), st.sampled_from([1e-2, 1e-4, 1e-8]))
def test_gauss_legendre_estimate_is_within_its_certified_error_of_the_exact_f1(raw, delta):
    q = integrate(fprime_oracle(raw, gradient_oracle), raw.f0(), raw.spread, raw.n_q, delta)
    T = _exact_T(raw)
    exact = math.fsum((T**2).tolist())
    actual = abs(q.estimate - exact)
    assert q.quadrature_error <= delta
    assert actual <= q.quadrature_error + q.oracle_error + 1e-12 * raw.n_q
    assert q.calls == q.panels * q.nodes


@given(st.floats(0.1, 500.0), st.integers(1, 4096), st.floats(1e-12, 1.0))
def test_plan_takes_the_fewest_nodes_and_panels_of_width_at_most_2_over_c(spread, n_q, delta):
    panels, nodes, bound = plan(spread, n_q, delta)
    c = 3 * spread / (2 * math.pi)
    assert c / panels <= 2 and (panels == 1 or c / (panels - 1) > 2)
    assert bound <= delta
    assert nodes == 1 or certified_error(spread, n_q, panels, nodes - 1) > delta
    # the closed form used by the registered call count: nodes <= log2(16 n_q c / delta)
    assert nodes <= max(1, math.ceil(math.log2(16 * n_q * c / delta)))


@settings(max_examples=12)
@given(ov_instances(max_n=12, max_m=6), st.sampled_from([quad.reduce, quad.reduce_h]))
def test_quadrature_routes_agree_with_brute_force_within_the_stated_call_bound(ov, rule):
    red = rule(ov)
    answer = red.lift(gradient_oracle)
    _check_answer(ov, answer)
    for record in red.stats["decisions"]:
        assert record["quadrature_error"] + record["oracle_error"] < record["margin"]
    assert all(c.ok for c in check_formulas(red)), check_formulas(red)
    bound = evaluate(get_rule(rule.rule.name).calls_expression, measure("ov", ov))
    assert red.stats["oracle_calls"] <= bound


def test_quadrature_s_needs_only_constant_precision_and_refuses_above_it():
    ov = OV([[1, 0, 1], [0, 1, 0]], [[0, 1, 0], [1, 1, 1]])
    red = quad.reduce(ov)
    d = red.target.d
    assert red.params["precision"] >= 7 / (256 * d)

    def at_precision(eps: float):
        def oracle(instance):
            r = gradient_oracle(instance)
            return GradientResult(r.gradient, r.loss, eps, r.loss_error_bound, "stated")
        return oracle

    # "precision" = (1 - share) margin / (2d) is always accepted; 2d eps >= margin never is
    assert quad.reduce(ov).lift(at_precision(red.params["precision"])) == (0, 0)
    with pytest.raises(PrecisionError):
        quad.reduce(ov).lift(at_precision(2 * red.params["precision"]))
    with pytest.raises(InvalidInstance, match="share"):
        quad.reduce(ov, share=1.0)


# ============================================================================= decoder (a)
@settings(max_examples=20)
@given(ov_instances(max_n=64, max_m=16))
def test_riemann_route_refuses_before_calling_the_oracle(ov):
    red = riemann.reduce(ov)
    calls = []
    if min(ov.n_U, ov.n_V) == 0:
        assert red.lift(calls.append) is None
        return
    with pytest.raises(PrecisionError, match="Riemann sum needs more than"):
        red.lift(calls.append)
    assert calls == [] and red.stats["oracle_calls"] == 0
    record = red.stats["decisions"][0]
    assert record["points"] == paper_points(2 * max(ov.n_U, ov.n_V))
    assert record["quadrature_error"] >= record["margin"]


@settings(max_examples=8)
@given(st.integers(8, 24), st.integers(6, 10), st.sampled_from([0.3, 0.5, 0.7]), st.integers(0, 2**32 - 1))
def test_riemann_true_error_exceeds_the_margin_at_log4_points(n, m, density, seed):
    """THEORY 4.5: at m = ceil(log2 n_q)^4 points the *actual* error of the paper's sum is above the margin.

    Range where this is asserted: n in [8, 24], OV dimension in [6, 10], densities 0.3-0.7
    (a 300-instance scan of this range: min ratio error/margin 1.41; see docs/theory/audit.md).
    """
    rng = np.random.default_rng(seed)
    ov = OV((rng.random((n, m)) < density).astype(np.uint8), (rng.random((n, m)) < density).astype(np.uint8))
    red = riemann.reduce(ov, evaluate=True)
    with pytest.raises(PrecisionError):
        red.lift(gradient_oracle)
    record = red.stats["decisions"][0]
    assert red.stats["oracle_calls"] == record["points"] == paper_points(2 * n)
    _, _, raw = _h(ov)
    exact = math.fsum((_exact_T(raw) ** 2).tolist())
    actual = abs(record["statistic"] - exact)
    assert actual > record["margin"]
    assert record["quadrature_error"] >= actual                      # the certified bound still holds


def test_riemann_decides_correctly_given_polynomially_many_points():
    for ov in (OV([[1]], [[0]]), OV([[1]], [[1]])):
        probe_red = riemann.reduce(ov)
        with pytest.raises(PrecisionError):
            probe_red.lift(gradient_oracle)
        needed = probe_red.stats["decisions"][0]["points_needed"]
        red = riemann.reduce(ov, points=needed)
        answer = red.lift(gradient_oracle)
        _check_answer(ov, answer)
        _, _, raw = _h(ov)
        exact = math.fsum((_exact_T(raw) ** 2).tolist())
        record = red.stats["decisions"][0]
        assert abs(record["statistic"] - exact) <= record["quadrature_error"] + record["oracle_error"]
    with pytest.raises(InvalidInstance, match="points"):
        riemann.reduce(ov, points=0)


# ============================================================================= Lemma E.3
@settings(max_examples=25)
@given(ov_instances(max_n=32, max_m=10), st.sampled_from(["H", "S"]))
def test_lemma_e3_derivative_bounds(ov, shape):
    """AS24 Lemma E.3 on Lemma-E.2-shaped (H) instances: |f'| <= 8 B N and |f''| <= B^2 N
    (B = max score, N = tokens; the O() read with constant 1), and the Cauchy bounds
    |f^(k)| <= 4 N k! c^k of THEORY 4.4 on both shapes."""
    U, V, _ = padded_sides(ov.U, ov.V)
    n = len(U)
    raw = construction_h(U, V, scale_gradient(n)) if shape == "H" else construction_s(U, V, scale_quadrature(n))
    grid = np.stack([raw.derivatives(lam) for lam in np.linspace(0, 1, 41)])
    peak = np.abs(grid).max(axis=0)
    N, B = raw.n_q, raw.max_score
    for k in (1, 2, 3):
        assert peak[k] <= derivative_bound(k, raw.spread, N)
    if shape == "H":
        assert peak[1] <= 8 * B * N
        assert peak[2] <= B**2 * N


def test_riemann_bound_is_lemma_e4_with_the_cauchy_constant():
    assert riemann_bound(90.0, 64, 625) == pytest.approx(derivative_bound(2, 90.0, 64) / 625)
    assert derivative_bound(2, 90.0, 64) == pytest.approx(8 * 64 * (3 * 90 / (2 * math.pi)) ** 2)


# ============================================================================= shared pieces
@given(st.integers(1, 300), st.data())
def test_halving_finds_a_member_of_the_witness_set_in_at_most_ceil_log2_questions(size, data):
    witnesses = set(data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size)))
    asked = []

    def holds(half):
        asked.append(half.size)
        return bool(witnesses & set(half.tolist()))

    assert halve(np.arange(size), holds) in witnesses
    assert int(math.log2(size)) <= len(asked) <= math.ceil(math.log2(size))


@given(st.floats(-10, 10), st.floats(0, 10), st.floats(0, 5))
def test_gap_decides_at_the_midpoint_only_when_the_error_is_below_the_margin(no, width, error):
    gap = Gap(no + width + 1e-9, no)
    if error < gap.margin:
        assert gap.decide(gap.yes_lower - 0.999 * error, error) is True
        assert gap.decide(gap.no_upper + 0.999 * error, error) is False
    else:
        with pytest.raises(PrecisionError):
            gap.decide(gap.threshold, error)
    with pytest.raises(PrecisionError):
        gap.decide(math.nan, 0.0)
    with pytest.raises(InvalidInstance):
        Gap(no, no + width)


def test_f1_gap_values_for_h_and_s():
    n = 32
    U = np.eye(n, dtype=np.uint8)
    h = f1_gap(construction_h(U, U, scale_gradient(n)))
    s = f1_gap(construction_s(U, U, scale_quadrature(n)))
    assert h.yes_lower == pytest.approx(2 / (n + 1) ** 2) and h.no_upper == pytest.approx(1 / (32 * n * (n + 1) ** 2))
    assert s.yes_lower == 0.25 and s.no_upper <= 1 / 32

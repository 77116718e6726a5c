"""Negative controls: every numeric decoder with float32, noisy and NaN oracles.

A decoder reads a statistic ``t`` from oracle answers and decides at the midpoint of a
promise gap; it may decide only when ``method error + propagated oracle error < margin``
(THEORY 4.5-4.7 for the gradient decoders (a), (b), (c); 2.4-2.5 for the forward decoder).
The propagation factors ``k`` (entrywise oracle error -> statistic) are taken from THEORY,
not from the code under test: decoder (c) ``d' / (mu beta_P beta_W)`` per call (4.7, with
probe columns of size ``beta``), decoders (a), (b) ``2 d`` (4.3: ``f' = 2 tr G``, quadrature
weights sum to 1), the forward decoder 1.

What is shown, for every decoder, on random OV instances (YES and NO in balance):

- an *honest* faulty oracle (it states a bound covering its fault) is refused exactly when
  the injected error, propagated, reaches the margin: at ``(1 - 1e-6)`` of the critical
  noise size the decoder decides correctly, at ``(1 + 1e-6)`` it raises ``PrecisionError``;
  the honest float32 oracle is refused iff its stated bound does not fit;
- a *lying* faulty oracle (it states the float64 bound) cannot be seen by the decoder: below
  the critical size it still decides correctly (the gap absorbs the undeclared error), above
  it a wrong verdict is possible, and the end-to-end checks catch it: a false YES is refused
  by the witness check, a false NO is reported as a disagreement by ``verify``;
- NaN or infinite answers, or a NaN/infinite stated bound, are always refused;
- ``verify(..., recompute=True)`` recomputes a refused verdict with the mpmath oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import attention
from attention.oracle import error_bounds, magnitudes, precision
from attention.results import ForwardResult, GradientResult
from reductions.errors import PrecisionError
from reductions.faulty import exact_oracle, float32_oracle, nan_oracle, noisy_oracle
from reductions.problems.ov import OV, is_orthogonal_pair
from reductions.registry import Reduced, get_rule
from reductions.testing import ov_instances
from reductions.verify import verify
from solvers.ov import solve_ov

#: Relative step around the critical noise size.
STEP = 1e-6


@dataclass(frozen=True)
class Decoder:
    """A rule with a numeric decoder, its options and how oracle errors reach its statistic."""

    rule: str
    kind: str  # "gradient" or "forward"
    options: dict[str, Any] = field(default_factory=dict)

    def reduce(self, ov: OV, **extra: Any) -> Reduced:
        return get_rule(self.rule)(ov, **{**self.options, **extra})

    def factor(self, red: Reduced, record: dict[str, Any]) -> float:
        """THEORY's propagation factor of one decision: statistic error per unit entrywise error."""
        if self.rule == "ov_to_gradient_probe":
            calls = 2 if "two calls" in record["label"] else 1
            return calls * red.target.d / (red.params["mu"] * probe_product(red.target))
        if self.kind == "gradient":
            return 2.0 * red.target.d
        return 1.0


DECODERS = {
    "c_probe": Decoder("ov_to_gradient_probe", "gradient"),
    "c_probe_two_call": Decoder("ov_to_gradient_probe", "gradient", {"two_call": True}),
    "c_probe_key_halving": Decoder("ov_to_gradient_probe", "gradient", {"key_search": "halving"}),
    "b_quadrature_s": Decoder("ov_to_gradient_quadrature", "gradient"),
    "b_quadrature_h": Decoder("ov_to_gradient_quadrature_h", "gradient"),
    "forward_h": Decoder("ov_to_attention_h", "forward"),
    "forward_s": Decoder("ov_to_attention_s", "forward"),
}
#: Decoder (a) decides only with ``points > b / margin`` (thousands of calls): tiny instances.
RIEMANN = Decoder("ov_to_gradient_riemann", "gradient")

def probe_product(instance: attention.AttentionInstance) -> float:
    """``beta_P beta_W``: the sizes of the query-probe column ``P = d' - 2`` of ``A1`` and the key-probe
    column ``W = d' - 1`` of ``A2`` (THEORY 4.7 with probes ``R = beta_P rho``, ``Z = beta_W v``:
    ``G[P, W]`` carries their product)."""
    d = instance.d
    return float(np.abs(instance.A1[:, d - 2]).max() * np.abs(instance.A2[:, d - 1]).max())


small_ov = ov_instances(max_n=4, max_m=5)
tiny_ov = ov_instances(max_n=2, max_m=2)


def truth(ov: OV) -> bool:
    return solve_ov(ov) is not None


def assert_correct(ov: OV, answer: Any) -> None:
    """The verdict equals brute force and a YES witness is an orthogonal pair of ``ov``."""
    assert (answer is not None) == truth(ov)
    if answer is not None:
        assert is_orthogonal_pair(ov, answer)


def riemann_points(ov: OV) -> int:
    """Enough Riemann points for decoder (a) to decide (its own ``points_needed``, from a refusal)."""
    red = RIEMANN.reduce(ov)
    with pytest.raises(PrecisionError, match="Riemann sum needs more than"):
        red.lift(exact_oracle())
    return max(r["points_needed"] for r in red.stats["decisions"])


def critical_size(decoder: Decoder, ov: OV, **extra: Any) -> float:
    """The injected entrywise error at which the tightest decision's margin is used up.

    From a run with the exact oracle: ``min_i (margin_i - error_i) / k_i``, ``error_i`` the decision's
    total error (its oracle error plus the decoder's own, e.g. the quadrature's).
    """
    red = decoder.reduce(ov, **extra)
    assert_correct(ov, red.lift(exact_oracle(decoder.kind)))
    decisions = red.stats["decisions"]
    sizes = [
        (r["margin"] - r.get("error", r["oracle_error"])) / decoder.factor(red, r) for r in decisions
    ]
    size = min(sizes)
    assert size > 0, "the exact float64 oracle must be accepted"
    return size


# ----------------------------------------------------------------------------- noise of a chosen size
@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(ov=small_ov, seed=st.integers(0, 2**32 - 1))
def test_noise_below_the_margin_is_absorbed_and_honest_noise_above_it_is_refused(name, ov, seed):
    """At ``(1 - 1e-6)`` of the critical size both the honest and the lying noisy oracle give the
    right verdict; at ``(1 + 1e-6)`` the honest one is refused."""
    decoder = DECODERS[name]
    size = critical_size(decoder, ov)
    for honest in (True, False):
        below = noisy_oracle(size=size * (1 - STEP), seed=seed, honest=honest, kind=decoder.kind)
        assert_correct(ov, decoder.reduce(ov).lift(below))
    above = noisy_oracle(size=size * (1 + STEP), seed=seed, honest=True, kind=decoder.kind)
    with pytest.raises(PrecisionError, match="not below the margin"):
        decoder.reduce(ov).lift(above)


@settings(max_examples=2, suppress_health_check=[HealthCheck.too_slow])
@given(ov=tiny_ov, seed=st.integers(0, 2**32 - 1))
def test_riemann_decoder_a_refuses_at_the_papers_points_and_honest_noise_above_the_margin(ov, seed):
    """Decoder (a) refuses at Theorem E.5's log^4 n points whatever the oracle; given enough points it
    behaves like the others."""
    assume(ov.n_U and ov.n_V)
    for oracle in (exact_oracle(), noisy_oracle(size=1.0, seed=seed, honest=True)):
        with pytest.raises(PrecisionError, match="Riemann sum needs more than"):
            RIEMANN.reduce(ov).lift(oracle)
    points = riemann_points(ov)
    size = critical_size(RIEMANN, ov, points=points)
    below = noisy_oracle(size=size * (1 - STEP), seed=seed, honest=True)
    assert_correct(ov, RIEMANN.reduce(ov, points=points).lift(below))
    above = noisy_oracle(size=size * (1 + STEP), seed=seed, honest=True)
    with pytest.raises(PrecisionError, match="not below the margin"):
        RIEMANN.reduce(ov, points=points).lift(above)


def float32_floor(decoder: Decoder, red: Reduced) -> float:
    """A lower bound on the honest float32 oracle's stated error at the first decision, propagated.

    Decoders (c) and forward call the oracle first on ``red.target`` itself; decoder (b) on
    ``X = lambda I`` at its nodes, where the a-priori bound is at least its value at ``X = 0``
    (every term grows with ``||A1 X||``) and the weights sum to 1.
    """
    instance = red.target
    if decoder.rule.startswith("ov_to_gradient_quadrature"):
        instance = instance.replace(X=np.zeros_like(instance.X))
    bounds = error_bounds(magnitudes(instance), precision(np.float32))
    bound = bounds.gradient if decoder.kind == "gradient" else bounds.att
    return decoder.factor(red, {"label": "one call"}) * bound


@pytest.mark.parametrize("name", ["c_probe", "b_quadrature_s", "forward_h", "forward_s"])
@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(ov=small_ov)
def test_honest_float32_is_refused_iff_its_bound_does_not_fit(name, ov):
    """float32's a-priori bound (u = 2^-24) exceeds decoder (b)'s and (c)'s margins and fits the
    forward decoder's: refused exactly there, decided correctly elsewhere."""
    decoder = DECODERS[name]
    assume(ov.n_U and ov.n_V)
    red = decoder.reduce(ov)
    first_margin = _first_decision(decoder, ov)["margin"]
    try:
        answer = red.lift(float32_oracle(decoder.kind, honest=True))
    except PrecisionError:
        refused = True
    else:
        refused = False
        assert_correct(ov, answer)
    if float32_floor(decoder, red) >= first_margin:
        assert refused
    if decoder.kind == "forward":
        assert not refused


def _first_decision(decoder: Decoder, ov: OV) -> dict[str, Any]:
    red = decoder.reduce(ov)
    red.lift(exact_oracle(decoder.kind))
    return red.stats["decisions"][0]


# ----------------------------------------------------------------------------- lying faults
@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(ov=small_ov)
def test_lying_float32_decides_correctly_when_its_true_error_fits(name, ov):
    """The float32 oracle stating float64's bound: its true error (measured against float64 on the
    first call) fits every margin here, and the verdicts are right."""
    decoder = DECODERS[name]
    assume(ov.n_U and ov.n_V)
    red = decoder.reduce(ov)
    first = _first_decision(decoder, ov)
    true64, true32 = (exact_oracle(decoder.kind)(red.target), float32_oracle(decoder.kind)(red.target))
    field_name = "gradient" if decoder.kind == "gradient" else "att"
    deviation = float(np.abs(getattr(true32, field_name) - getattr(true64, field_name)).max())
    slack = first["margin"] - (first.get("error", first["oracle_error"]) - first["oracle_error"])
    assert decoder.factor(red, first) * (deviation + true64.error_bound) < slack
    assert_correct(ov, red.lift(float32_oracle(decoder.kind)))


def flipping_size(decoder: Decoder, ov: OV) -> float:
    """A noise size moving the first decision's statistic twice past its threshold."""
    red = decoder.reduce(ov)
    red.lift(exact_oracle(decoder.kind))
    first = red.stats["decisions"][0]
    return 2.0 * (abs(first["statistic"] - first["threshold"]) + first["margin"]) / decoder.factor(red, first)


@pytest.mark.parametrize("name", sorted(set(DECODERS) - {"c_probe_two_call"}))
@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(ov=small_ov)
def test_lying_noise_beyond_the_margin_is_caught_end_to_end(name, ov):
    """Every answer entry pushed towards the wrong verdict, while the float64 bound is stated.

    A false YES is refused by the witness check (PrecisionError); a false NO cannot be seen by
    the decoder and is reported by ``verify`` as a disagreement with ground truth (CLI exit 1).
    (The two-call probe is left out: a common offset cancels in its difference.)
    """
    decoder = DECODERS[name]
    assume(ov.n_U and ov.n_V)
    yes = truth(ov)
    lying = noisy_oracle(size=flipping_size(decoder, ov), direction=-1 if yes else 1, kind=decoder.kind)
    if yes:
        report = verify(ov, path=[decoder.rule], oracle=lying, to=None, **decoder.options)
        assert report.ground_truth and not report.chain_answer and not report.agree
    else:
        with pytest.raises(PrecisionError, match="contradicts its stated error bound"):
            decoder.reduce(ov).lift(lying)


# ----------------------------------------------------------------------------- NaN and infinity
def _zero(kind: str) -> Callable[[Any], Any]:
    """A cheap base oracle (the faulty wrapper replaces its answer or bound)."""

    def call(instance: Any) -> Any:
        if kind == "gradient":
            return GradientResult(np.zeros((instance.d, instance.d)), 0.0, 0.0, 0.0, "zero")
        return ForwardResult(np.zeros((instance.n, instance.d)), 0.0, "zero")

    return call


@pytest.mark.parametrize("name", sorted(DECODERS) + ["a_riemann"])
@pytest.mark.parametrize("where", ["value", "bound"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinite_answers_or_bounds_are_refused(name, where, value):
    decoder = DECODERS.get(name, RIEMANN)
    ov = OV([[1, 0, 1], [0, 1, 1]], [[0, 1, 0], [1, 1, 0]])
    extra = {"points": riemann_points(ov)} if decoder is RIEMANN else {}
    red = decoder.reduce(ov, **extra)
    oracle = nan_oracle(_zero(decoder.kind), where=where, value=value, kind=decoder.kind)
    with pytest.raises(PrecisionError):
        red.lift(oracle)


def _mixed_infinities(instance: Any) -> GradientResult:
    """A gradient with +inf and -inf on the diagonal and a finite stated bound."""
    G = np.zeros((instance.d, instance.d))
    G[0, 0], G[1, 1] = math.inf, -math.inf
    return GradientResult(G, 0.0, 1e-12, 0.0, "mixed")


def _huge(instance: Any) -> GradientResult:
    """A finite gradient whose trace overflows float64."""
    return GradientResult(np.full((instance.d, instance.d), 1e308), 0.0, 1e-12, 0.0, "huge")


@pytest.mark.parametrize("name", ["b_quadrature_s", "b_quadrature_h"])
@pytest.mark.parametrize("oracle", [_mixed_infinities, _huge], ids=["mixed_inf", "huge"])
def test_overflowing_gradients_are_refused_not_crashed_on(name, oracle):
    """f' = 2 tr(G) is summed with math.fsum, which raises ValueError on inf - inf and OverflowError
    past float64: a decoder must turn that into a refusal."""
    red = DECODERS[name].reduce(OV([[1, 0], [0, 1]], [[1, 1], [1, 0]]))
    with pytest.raises(PrecisionError):
        red.lift(oracle)


# ----------------------------------------------------------------------------- recompute in mpmath
@pytest.mark.parametrize("name", ["c_probe", "b_quadrature_s", "b_quadrature_h", "forward_h"])
def test_a_refused_verdict_is_recomputed_with_mpmath_when_asked(name):
    """An honest oracle stating twice the critical error is refused; verify(recompute=True) reruns
    the chain with the mpmath oracle and agrees with brute force (YES and NO)."""
    decoder = DECODERS[name]
    for ov in (OV([[1, 0], [0, 1]], [[1, 1], [0, 1]]), OV([[1, 0], [1, 1]], [[1, 1], [0, 1]])):
        oracle = noisy_oracle(size=2 * critical_size(decoder, ov), seed=0, honest=True, kind=decoder.kind)
        with pytest.raises(PrecisionError):
            verify(ov, path=[decoder.rule], oracle=oracle, to=None)
        report = verify(ov, path=[decoder.rule], oracle=oracle, to=None, recompute=True)
        assert report.recomputed and report.oracle == "mp"
        assert report.agree and report.witness_ok is not False
        assert report.chain_answer == truth(ov)


def test_faulty_wrappers_validate_their_arguments():
    from reductions.errors import InvalidInstance

    for bad in (-1.0, math.nan, math.inf, "x", True):
        with pytest.raises(InvalidInstance, match="size"):
            noisy_oracle(size=bad)
    with pytest.raises(InvalidInstance, match="direction"):
        noisy_oracle(size=1.0, direction=2)
    with pytest.raises(InvalidInstance, match="where"):
        nan_oracle(where="loss")
    with pytest.raises(InvalidInstance, match="kind"):
        float32_oracle("loss")
    inst = attention.AttentionInstance.random(n=3, d=2, seed=0)
    with pytest.raises(InvalidInstance, match="GradientResult or ForwardResult"):
        noisy_oracle(lambda i: attention.loss(i), size=1.0)(inst)

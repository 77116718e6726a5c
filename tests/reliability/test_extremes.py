"""The exact oracle at numerical extremes: its stated error holds (checked against mpmath at 60 digits),
or it refuses with a clear error saying the instance is outside what the precision can answer.

Extremes: scores of every size up to float64's ``exp`` range (hundreds to ~700) and beyond,
targets ``E`` from subnormal to ``1e150`` (and ``1e160``, whose loss ``~1e320`` overflows),
rows where one key takes all the weight (the others underflow to 0), duplicate keys, a
single key (``n_k = 1``: ``p = 0`` exactly), in float64 and float32.  Every comparison is
done in mpmath: ``|G - G_mp| <= error_bound + mp_error_bound`` entrywise, the same for the
loss.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention import AttentionInstance, PrecisionError
from attention import oracle, oracle_mp

DIGITS = 60
FLOAT_MAX = np.finfo(np.float64).max


def scaled_to_scores(inst: AttentionInstance, top: float) -> AttentionInstance:
    """``inst`` with ``X`` scaled so that ``max |S| = top`` (``S = A1 X A2^T / d``)."""
    S = inst.A1 @ inst.X @ inst.A2.T / inst.d
    return inst.replace(X=inst.X * (top / np.abs(S).max()))


def exceeds(value: mpmath.mpf, reference: mpmath.mpf, bound: float) -> bool:
    return abs(mpmath.mpf(value) - reference) > mpmath.mpf(bound)


def check_against_mp(inst: AttentionInstance, dtype: type = np.float64) -> str:
    """``"answered"`` if the oracle's stated errors hold against mpmath, ``"refused"`` if it refused
    clearly (and the instance really is out of range); fails otherwise."""
    reference = oracle_mp.gradient(inst, digits=DIGITS)
    G_mp, L_mp = reference.info["mp_gradient"], reference.info["mp_loss"]
    mp_error = reference.info["mp_error_bound"]
    name = np.dtype(dtype).name
    try:
        result = oracle.gradient(inst, dtype=dtype)
    except PrecisionError as exc:
        assert f"overflowed {name}" in str(exc) and "rescale" in str(exc)
        largest = max([abs(L_mp)] + [abs(g) for row in G_mp for g in row])
        inputs = max(float(np.abs(getattr(inst, a)).max()) for a in ("A1", "A2", "A3", "E", "X", "Y"))
        assert largest > np.finfo(dtype).max / 1e6 or inputs > np.finfo(dtype).max / 1e6
        return "refused"
    assert math.isfinite(result.error_bound) and math.isfinite(result.loss_error_bound)
    for a, row in enumerate(G_mp):
        for b, g in enumerate(row):
            assert not exceeds(result.gradient[a, b], g, result.error_bound + mp_error), (a, b)
    assert not exceeds(result.loss, L_mp, result.loss_error_bound + reference.info["mp_loss_error_bound"])
    return "answered"


# ----------------------------------------------------------------------------- property test
@st.composite
def extreme_instances(draw: st.DrawFn) -> AttentionInstance:
    n, n_k, d = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    target = draw(st.sampled_from([0.0, 1e-310, 1e-8, 1.0, 1e8, 1e100, 1e150]))
    inst = AttentionInstance.random(n=n, d=d, n_k=n_k, seed=seed, target_scale=1.0)
    inst = inst.replace(E=inst.E * target)
    top = draw(st.sampled_from([1e-12, 1.0, 50.0, 300.0, 700.0, 745.0, 1e4]))
    structure = draw(st.sampled_from(["random", "duplicate_keys", "dominant_key"]))
    if structure == "duplicate_keys":
        rows = np.arange(n_k) % max(1, n_k // 2)
        inst = inst.replace(A2=inst.A2[rows], A3=inst.A3[rows])
    elif structure == "dominant_key":  # key 0 aligned with every query, far above the others
        A2 = inst.A2.copy()
        A2[0] = 10.0 * np.sign(inst.A1.sum(axis=0) + 0.5)
        inst = inst.replace(A1=np.abs(inst.A1) * np.sign(inst.A1.sum(axis=0) + 0.5), A2=A2)
    return scaled_to_scores(inst, top)


@settings(max_examples=60, deadline=None)
@given(extreme_instances(), st.sampled_from([np.float64, np.float32]))
def test_the_stated_error_holds_or_the_oracle_refuses_clearly(inst, dtype):
    outcome = check_against_mp(inst, dtype)
    if dtype is np.float64 and float(np.abs(inst.E).max()) <= 1e150:
        assert outcome == "answered"  # everything here is within float64's range


# ----------------------------------------------------------------------------- named extremes
def _base(n: int = 5, n_k: int = 4, d: int = 3, seed: int = 7) -> AttentionInstance:
    return AttentionInstance.random(n=n, d=d, n_k=n_k, seed=seed)


@pytest.mark.parametrize("top", [100.0, 300.0, 500.0, 700.0, 709.0, 800.0])
def test_scores_across_the_exp_range(top):
    """exp(700) is near float64's limit; the oracle subtracts each row's max, so it never forms it."""
    assert check_against_mp(scaled_to_scores(_base(), top)) == "answered"


def test_one_key_takes_all_the_weight():
    """Score gaps of ~1500: every other weight underflows to exactly 0 (the bound's underflow term)."""
    inst = _base(n=4, n_k=5, d=2)
    A1 = np.ones((4, 2))
    A2 = np.array([[1.0, 1.0], [-1.0, -1.0], [0.5, -0.5], [-0.3, 0.2], [0.0, 0.1]])
    inst = scaled_to_scores(inst.replace(A1=A1, A2=A2), 1500.0)  # gaps >= 1425 > 745
    weights = oracle.forward(inst.replace(A3=np.eye(5, 2), Y=np.eye(2))).att  # columns: f[:, 0], f[:, 1]
    assert np.array_equal(weights, np.tile([1.0, 0.0], (4, 1)))
    assert check_against_mp(inst) == "answered"


def test_duplicate_keys_count_twice():
    inst = _base(n=3, n_k=4, d=2)
    dup = inst.replace(A2=inst.A2[[0, 0, 1, 1]], A3=inst.A3[[0, 0, 1, 1]])
    assert check_against_mp(scaled_to_scores(dup, 300.0)) == "answered"


@pytest.mark.parametrize("top", [1.0, 700.0])
def test_a_single_key_gives_a_zero_gradient(top):
    """n_k = 1: f = 1, so p = f o (q - r) with r = q: the true gradient is 0 (AS24 Lemma C.7); the
    float64 one (r is formed as rowsum(Att o c), q as c h^T) is within the stated bound of 0."""
    inst = scaled_to_scores(_base(n=4, n_k=1, d=3), top)
    result = oracle.gradient(inst)
    assert np.abs(result.gradient).max() <= result.error_bound
    assert check_against_mp(inst) == "answered"


@pytest.mark.parametrize("scale", [1e-310, 1e-150, 1e150])
def test_tiny_and_huge_targets(scale):
    inst = _base()
    assert check_against_mp(inst.replace(E=inst.E * scale)) == "answered"


def test_a_loss_beyond_float64_is_refused_with_a_clear_error():
    """E ~ 1e160: the loss ~1e320 does not exist in float64; the oracle says so instead of
    returning inf."""
    inst = _base()
    inst = inst.replace(E=inst.E * 1e160)
    with pytest.raises(PrecisionError, match="overflowed float64.*rescale the instance"):
        oracle.gradient(inst)
    assert check_against_mp(inst) == "refused"


def test_float32_refuses_what_float32_cannot_hold():
    inst = _base()
    assert check_against_mp(inst.replace(E=inst.E * 1e30), np.float32) == "refused"
    assert check_against_mp(inst, np.float32) == "answered"


def test_huge_scores_beyond_exp_range_keep_a_valid_bound():
    """Scores of 1e8: the arguments of exp lose all relative accuracy, the stated bound grows to
    cover it (or the oracle refuses); it never claims float64 accuracy it does not have."""
    assert check_against_mp(scaled_to_scores(_base(), 1e8)) in ("answered", "refused")

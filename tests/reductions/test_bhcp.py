"""BHCP and Gap-ANN: the distance / inner-product identities (THEORY 1.4, 1.5.2) and the brute force."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reductions.errors import InvalidInstance
from reductions.problems.bhcp import (
    BHCP,
    complement_embedding,
    distance_from_inner,
    equal_weight_embedding,
    hamming_distance,
    inner_from_distance,
)
from reductions.problems.ov import OV
from solvers.bhcp import solve_bhcp, solve_gap_ann
from solvers.ov import solve_ov


@st.composite
def sides(draw: st.DrawFn, min_n: int = 0, max_n: int = 7, max_m: int = 12) -> tuple[np.ndarray, np.ndarray]:
    m = draw(st.integers(1, max_m))
    U = draw(arrays(np.uint8, (draw(st.integers(min_n, max_n)), m), elements=st.integers(0, 1)))
    V = draw(arrays(np.uint8, (draw(st.integers(min_n, max_n)), m), elements=st.integers(0, 1)))
    return U, V


def loop_distances(U, V) -> dict[tuple[int, int], int]:
    """Reference: Hamming distances by a double loop over Python lists."""
    return {
        (i, j): sum(x != y for x, y in zip(u, v)) for i, u in enumerate(U.tolist()) for j, v in enumerate(V.tolist())
    }


def loop_inner(U, V) -> dict[tuple[int, int], int]:
    return {
        (i, j): sum(x * y for x, y in zip(u, v)) for i, u in enumerate(U.tolist()) for j, v in enumerate(V.tolist())
    }


# --------------------------------------------------------------------------- identities on all pairs
@given(sides())
def test_distance_and_inner_product_determine_each_other(uv):
    U, V = uv
    dist, inner = loop_distances(U, V), loop_inner(U, V)
    for (i, j), d in dist.items():
        wa, wb = int(U[i].sum()), int(V[j].sum())
        assert hamming_distance(U[i], V[j]) == d
        assert distance_from_inner(wa, wb, inner[i, j]) == d
        assert inner_from_distance(wa, wb, d) == inner[i, j]
    if dist:  # the array forms agree with the scalar ones
        wa, wb = U.sum(1)[:, None], V.sum(1)[None, :]
        G = U.astype(np.int64) @ V.astype(np.int64).T
        D = distance_from_inner(wa, wb, G)
        assert all(D[i, j] == d for (i, j), d in dist.items())
        assert (inner_from_distance(wa, wb, D) == G).all()


@given(sides())
def test_equal_weight_vectors_distance_is_twice_weight_minus_inner(uv):
    """On the complement embedding every vector has weight m: dist = 2 (m - <a, b>), <a, b> = m - dist(orig)."""
    U, V = uv
    m = U.shape[1]
    Uc, Vc = complement_embedding(U), complement_embedding(V)
    assert Uc.shape[1] == 2 * m and (Uc.sum(1) == m).all() and (Vc.sum(1) == m).all()
    dist_orig, dist_c, inner_c = loop_distances(U, V), loop_distances(Uc, Vc), loop_inner(Uc, Vc)
    for pair in dist_orig:
        assert inner_c[pair] == m - dist_orig[pair]
        assert dist_c[pair] == 2 * (m - inner_c[pair]) == 2 * dist_orig[pair]


@given(sides())
def test_ov_to_bhcp_padding_keeps_inner_products_and_gives_distance_m_plus_twice_inner(uv):
    """THEORY 1.5.2: <a*, b*> = <a, b>, weights m, dist(a*, 1 - b*) = m + 2 <a, b>."""
    U, V = uv
    m = U.shape[1]
    Us, Vs = equal_weight_embedding(U, V)
    assert Us.shape[1] == Vs.shape[1] == 3 * m
    assert (Us.sum(1) == m).all() and (Vs.sum(1) == m).all()
    inner, inner_star = loop_inner(U, V), loop_inner(Us, Vs)
    dist_c = loop_distances(Us, 1 - Vs)
    for pair, ip in inner.items():
        assert inner_star[pair] == ip
        assert dist_c[pair] == m + 2 * ip


@given(sides(min_n=1))
def test_ov_answer_is_the_gap_ann_answer_with_t_m_and_eps_2_over_m(uv):
    """YES iff min distance = m; NO => min distance >= m + 2; exact Fraction thresholds."""
    U, V = uv
    m = U.shape[1]
    Us, Vs = equal_weight_embedding(U, V)
    inst = BHCP(Us, 1 - Vs, t=m, eps=Fraction(2, m))
    assert inst.far == m + 2
    i, j, d = solve_bhcp(inst)
    has_pair = solve_ov(OV(U, V)) is not None
    assert (d == m) == has_pair and (has_pair or d >= m + 2)
    assert solve_gap_ann(inst) == has_pair


# --------------------------------------------------------------------------- brute force
@given(sides(), st.sampled_from([1, 2, 3, 2048]))
def test_solve_bhcp_is_the_first_closest_pair_of_the_double_loop(uv, block):
    U, V = uv
    dist = loop_distances(U, V)
    found = solve_bhcp(BHCP(U, V), block=block)
    if not dist:
        assert found is None
        return
    best = min(dist.values())
    first = min(pair for pair, d in dist.items() if d == best)
    assert found == (*first, best)


def test_gap_ann_refuses_to_guess_inside_the_gap():
    inst = BHCP([[1, 1, 0, 0]], [[0, 0, 0, 0]], t=1, eps=Fraction(2))  # min distance 2, gap (1, 3)
    with pytest.raises(InvalidInstance, match="breaks the Gap-ANN promise: the minimum distance 2"):
        solve_gap_ann(inst)
    assert solve_gap_ann(BHCP([[1, 1, 0, 0]], [[0, 0, 0, 0]], t=2, eps=1)) is True
    far_pair = ([[1, 1, 0, 0]], [[0, 0, 1, 1]])  # distance 4
    assert solve_gap_ann(BHCP(*far_pair, t=4, eps=1)) is True
    assert solve_gap_ann(BHCP(*far_pair, t=2, eps=1)) is False  # exactly on (1 + eps) t = 4
    assert solve_gap_ann(BHCP(*far_pair, t=3, eps=Fraction(1, 3))) is False
    assert solve_gap_ann(BHCP(np.zeros((0, 4)), [[0, 0, 1, 1]], t=1, eps=3)) is False


def test_float_eps_is_stored_exactly():
    inst = BHCP([[1]], [[0]], t=3, eps=0.5)
    assert inst.eps == Fraction(1, 2) and inst.far == Fraction(9, 2)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(t=1), "t, eps: give both"),
        (dict(eps=Fraction(1, 2)), "t, eps: give both"),
        (dict(t=-1, eps=1), "t: expected an integer distance >= 0"),
        (dict(t=1.5, eps=1), "t: expected an integer distance >= 0"),
        (dict(t=1, eps=0), "eps: the gap must be positive"),
        (dict(t=1, eps=float("nan")), "eps: expected a positive finite number"),
        (dict(t=1, eps="big"), "eps: expected a positive number"),
        (dict(meta=[1]), "meta: expected a dict"),
    ],
)
def test_bad_thresholds_are_named(kwargs, fragment):
    with pytest.raises(InvalidInstance) as info:
        BHCP([[1, 0]], [[0, 1]], **kwargs)
    assert fragment in str(info.value)


def test_bad_inputs_to_solvers_and_identities():
    with pytest.raises(InvalidInstance, match="U has dimension m = 2 but V has m = 3"):
        BHCP([[1, 0]], [[0, 1, 1]])
    with pytest.raises(InvalidInstance, match="expected a BHCP instance"):
        solve_bhcp(OV([[1]], [[1]]))
    with pytest.raises(InvalidInstance, match="block: expected a positive integer"):
        solve_bhcp(BHCP([[1]], [[1]]), block=0)
    with pytest.raises(InvalidInstance, match="with the Gap-ANN thresholds"):
        solve_gap_ann(BHCP([[1]], [[1]]))
    with pytest.raises(InvalidInstance, match="must be even and >= 0"):
        inner_from_distance(2, 1, 2)
    with pytest.raises(InvalidInstance, match="U has dimension m = 1 but V has m = 2"):
        equal_weight_embedding([[1]], [[1, 0]])

"""OV -> exact-gap Max-IP, OV -> BHCP, BHCP -> Gap-ANN (THEORY 1.5, 1.6, 2.6): identities, gaps, decoding."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reductions.errors import InvalidInstance
from reductions.problems.bhcp import BHCP
from reductions.problems.maxip import MaxIP, is_maxip_witness, max_inner_product, solve_maxip
from reductions.registry import problem_of, reduce
from reductions.rules import bhcp_to_gapann, ov_to_bhcp, ov_to_maxip
from reductions.testing import ov_instances
from reductions.verify import is_close_pair, solve_close_pair
from solvers.bhcp import solve_gap_ann


def inner(ov) -> np.ndarray:
    return ov.U.astype(np.int64) @ ov.V.T.astype(np.int64)


def distances(inst) -> np.ndarray:
    """Hamming distances of all pairs, computed directly (independent of the solvers)."""
    return (inst.U[:, None, :] != inst.V[None, :, :]).sum(axis=2)


def pair_set(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in np.argwhere(mask)}


@given(ov_instances(max_n=24, max_m=12))
def test_maxip_encoding_has_inner_products_m_minus_ip_and_gap_one(ov):
    red = ov_to_maxip.reduce(ov)
    target, m = red.target, ov.m
    ip = inner(target)
    assert np.array_equal(ip, m - inner(ov))                    # on every pair
    assert red.target.tau == m and red.target.m == 2 * m
    yes = (inner(ov) == 0).any()
    assert (ip.max() == m) == yes and (yes or ip.max() <= m - 1)
    assert pair_set(ip >= m) == pair_set(inner(ov) == 0)        # witnesses coincide
    answer = red.lift(solve_maxip)
    assert (answer is not None) == yes
    if answer is not None:
        assert inner(ov)[answer] == 0 and is_maxip_witness(target, answer)


@given(ov_instances(max_n=24, max_m=12))
def test_bhcp_encoding_has_distance_m_plus_twice_ip_in_both_directions(ov):
    red = ov_to_bhcp.reduce(ov)
    target, m = red.target, ov.m
    dist = distances(target)
    assert np.array_equal(dist, m + 2 * inner(ov))              # dist(a*, bc) = m + 2<a, b>
    assert target.t == m and target.m == 3 * m and target.meta["problem"] == "bhcp"
    yes = (inner(ov) == 0).any()
    assert (dist.min() == m) == yes and (yes or dist.min() >= m + 2)
    assert pair_set(dist <= m) == pair_set(inner(ov) == 0)      # YES witnesses both ways
    assert ov_to_bhcp.parity_gap(target) == 2
    answer = red.lift(solve_close_pair)
    assert (answer is not None) == yes
    if answer is not None:
        assert inner(ov)[answer] == 0 and is_close_pair(target, answer)


@given(ov_instances(max_n=24, max_m=12))
def test_gapann_from_ov_has_t_m_and_eps_2_over_m_and_keeps_its_promise(ov):
    red = reduce(ov, to="gapann")
    gap = red.target
    m = ov.m
    assert (gap.t, gap.eps) == (m, Fraction(2, m)) and problem_of(gap) == "gapann"
    dist = distances(gap)
    assert not ((dist > gap.t) & (dist < gap.far)).any()        # nothing inside the gap
    assert solve_gap_ann(gap) == ((inner(ov) == 0).any())      # the OV engineer's solver agrees
    answer = red.lift(solve_close_pair)
    assert (answer is not None) == (inner(ov) == 0).any()


@given(
    st.integers(1, 12).flatmap(
        lambda m: st.tuples(
            st.lists(st.lists(st.integers(0, 1), min_size=m, max_size=m), min_size=1, max_size=8),
            st.lists(st.lists(st.integers(0, 1), min_size=m, max_size=m), min_size=1, max_size=8),
            st.integers(1, m),
        )
    )
)
def test_bhcp_to_gapann_on_arbitrary_instances_uses_the_parity_gap_and_keeps_the_promise(sides):
    U, V, t = sides
    inst = BHCP(U, V, t=t, eps=ov_to_bhcp.exact_gap(t), meta={"problem": "bhcp"})
    red = bhcp_to_gapann.reduce(inst)
    gap = red.target
    dist = distances(inst)
    g = 2 if (dist % 2 == t % 2).all() else 1
    assert ov_to_bhcp.parity_gap(inst) == g          # weights decide it exactly (sides nonempty)
    assert gap.eps == Fraction(g, t)
    assert not ((dist > gap.t) & (dist < gap.far)).any()
    truth = solve_close_pair(inst)
    assert (red.lift(solve_close_pair) is None) == (truth is None) == (dist.min() > t)


def test_parity_gap_is_two_only_when_every_distance_has_the_parity_of_t():
    inst = BHCP([[1, 1, 0], [0, 0, 0]], [[1, 0, 0]], t=1, eps=1)   # weights 2, 0 and 1: distances 1, 1
    assert ov_to_bhcp.parity_gap(inst) == 2
    inst = BHCP([[1, 1, 0], [0, 0, 1]], [[1, 0, 0]], t=1, eps=1)   # weights 2, 1: distances 1, 2
    assert ov_to_bhcp.parity_gap(inst) == 1


def test_threshold_zero_is_refused():
    with pytest.raises(InvalidInstance, match="t >= 1"):
        bhcp_to_gapann.reduce(BHCP([[1]], [[1]], t=0, eps=1, meta={"problem": "bhcp"}))


def test_problem_of_bhcp_instances():
    assert problem_of(BHCP([[1]], [[0]], t=1, eps=1)) == "gapann"
    assert problem_of(BHCP([[1]], [[0]], t=1, eps=1, meta={"problem": "bhcp"})) == "bhcp"
    with pytest.raises(InvalidInstance, match="threshold t"):
        problem_of(BHCP([[1]], [[0]]))


def test_solve_close_pair_refuses_a_broken_promise():
    inst = BHCP([[1, 1, 1, 1]], [[0, 0, 0, 0]], t=2, eps=Fraction(3))   # dist 4 in (2, 8)
    with pytest.raises(InvalidInstance, match="promise"):
        solve_close_pair(inst)


def test_maxip_brute_force_against_a_double_loop():
    rng = np.random.default_rng(5)
    U, V = rng.integers(0, 2, (9, 6)), rng.integers(0, 2, (7, 6))
    best = max(int(U[i] @ V[j]) for i in range(9) for j in range(7))
    value, (i, j) = max_inner_product(MaxIP(U, V, tau=best))
    assert value == best and int(U[i] @ V[j]) == best
    assert solve_maxip(MaxIP(U, V, tau=best + 1)) is None
    assert max_inner_product(MaxIP(np.zeros((0, 6)), V, tau=0)) == (-1, None)

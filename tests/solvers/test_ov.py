"""OV brute force: every method against a pure-Python double loop; tiles; argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reductions.errors import InvalidInstance, ResourceError
from reductions.problems.ov import OV, is_orthogonal_pair
from solvers.ov import (
    all_orthogonal_pairs,
    count_orthogonal_pairs,
    count_tile,
    orthogonal_pairs_array,
    solve_ov,
    solve_ov_tile,
)

METHODS = ["auto", "packed", "blas", "numpy"]
# dimensions around the word boundaries of the packed kernel (W = 1, 2, 3, 4 words)
DIMENSIONS = [1, 2, 20, 63, 64, 65, 127, 128, 129, 191, 192, 193, 250]


def python_pairs(U: np.ndarray, V: np.ndarray) -> list[tuple[int, int]]:
    """The reference: a double loop over Python-int bitsets, independent of numpy packing."""
    us = [int("".join(map(str, row[::-1])) or "0", 2) for row in U.tolist()]
    vs = [int("".join(map(str, row[::-1])) or "0", 2) for row in V.tolist()]
    return [(i, j) for i, u in enumerate(us) for j, v in enumerate(vs) if u & v == 0]


@st.composite
def instances(draw: st.DrawFn, max_n: int = 40) -> OV:
    """Random instances whose density makes both answers common (seeded numpy for speed)."""
    m = draw(st.sampled_from(DIMENSIONS) | st.integers(1, 260))
    n_U, n_V = draw(st.integers(0, max_n)), draw(st.integers(0, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    # density with about mu orthogonal pairs expected, mu from 0.05 to 20
    mu = draw(st.floats(0.05, 20.0))
    p = np.sqrt(max(0.0, 1 - min(1.0, mu / max(n_U * n_V, 1)) ** (1 / m)))
    U = (rng.random((n_U, m)) < p).astype(np.uint8)
    V = (rng.random((n_V, m)) < p).astype(np.uint8)
    return OV(U, V)


blocks = st.sampled_from([None, 1, 2, 3, 5, 7, 16, 64])


@given(instances(), st.sampled_from(METHODS), blocks)
def test_every_method_agrees_with_the_double_loop(ov, method, block):
    expected = python_pairs(ov.U, ov.V)
    pair = solve_ov(ov, method, block)
    assert pair == (expected[0] if expected else None)  # the first pair in row-major order
    if pair is not None:
        assert is_orthogonal_pair(ov, pair)
    assert count_orthogonal_pairs(ov, method, block) == len(expected)
    assert all_orthogonal_pairs(ov, method, block) == expected


@given(instances(max_n=30), st.data())
def test_tiles_combine_to_the_whole_answer(ov, data):
    """First witness = lexicographic min over tiles; count = sum over tiles, for any tiling."""
    cuts_U = sorted(set(data.draw(st.lists(st.integers(0, ov.n_U), max_size=3)) + [0, ov.n_U]))
    cuts_V = sorted(set(data.draw(st.lists(st.integers(0, ov.n_V), max_size=3)) + [0, ov.n_V]))
    witnesses, total = [], 0
    for i0, i1 in zip(cuts_U, cuts_U[1:]):
        for j0, j1 in zip(cuts_V, cuts_V[1:]):
            U_tile, V_tile = ov.U_packed[i0:i1], ov.V_packed[j0:j1]
            found = solve_ov_tile(U_tile, V_tile, i0, j0, threads=data.draw(st.sampled_from([None, 1])))
            expected = [(i0 + i, j0 + j) for i, j in python_pairs(ov.U[i0:i1], ov.V[j0:j1])]
            assert found == (expected[0] if expected else None)
            witnesses += [found] if found else []
            total += count_tile(U_tile, V_tile, tile=data.draw(st.sampled_from([None, 1, 3])))
    assert min(witnesses, default=None) == solve_ov(ov)
    assert total == count_orthogonal_pairs(ov, "numpy")


def _guarded(n_U: int, n_V: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random sides with coordinate 0 set on every vector: no orthogonal pair until one is planted."""
    rng = np.random.default_rng(seed)
    U = (rng.random((n_U, m)) < 0.5).astype(np.uint8)
    V = (rng.random((n_V, m)) < 0.5).astype(np.uint8)
    U[:, 0] = V[:, 0] = 1
    return U, V


@pytest.mark.parametrize("m", [30, 100, 200])
def test_witness_deep_in_a_large_instance_crosses_row_chunks_and_tiles(m):
    """n_U beyond one parallel chunk (8 x threads x 256 rows), n_V beyond one V tile, ragged ends."""
    U, V = _guarded(5003, 4500, m, seed=m)
    U[:, 2] = V[:, 1] = 1  # background vectors meet e_1 (V side) and e_2 (U side)
    U[[4321, 4999]] = np.eye(m, dtype=np.uint8)[1]  # so the only pairs are e_1 x e_2:
    V[[4444, 17, 4490]] = np.eye(m, dtype=np.uint8)[2]  # row 4321 with j = 17 comes first
    ov = OV(U, V)
    expected = python_pairs(U, V)
    assert expected[0] == (4321, 17) and len(expected) == 6
    for method in ["packed", "blas", "numpy"]:
        assert solve_ov(ov, method) == (4321, 17)
    assert count_orthogonal_pairs(ov) == len(expected)
    assert all_orthogonal_pairs(ov) == expected
    assert solve_ov_tile(ov.U_packed, ov.V_packed, threads=1) == (4321, 17)


def test_no_pair_instances_have_no_witness_under_every_method():
    ov = OV(*_guarded(700, 333, 70, seed=1))
    for method in METHODS:
        assert solve_ov(ov, method) is None and count_orthogonal_pairs(ov, method) == 0


def test_empty_sides():
    for U, V in [(np.zeros((0, 3)), [[0, 0, 0]]), ([[0, 0, 0]], np.zeros((0, 3))), (np.zeros((0, 70)), np.zeros((0, 70)))]:
        ov = OV(U, V)
        for method in METHODS:
            assert solve_ov(ov, method) is None
            assert count_orthogonal_pairs(ov, method) == 0
            assert all_orthogonal_pairs(ov, method) == []
        assert solve_ov_tile(ov.U_packed, ov.V_packed, 5, 7) is None and count_tile(ov.U_packed, ov.V_packed) == 0


def test_max_pairs_guards_the_pair_list():
    ov = OV(np.zeros((30, 4)), np.zeros((30, 4)))  # all 900 pairs are orthogonal
    assert orthogonal_pairs_array(ov, max_pairs=900).shape == (900, 2)
    for method in ["packed", "numpy"]:
        with pytest.raises(ResourceError, match="900 orthogonal pairs, more than max_pairs = 899"):
            all_orthogonal_pairs(ov, method, max_pairs=899)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda ov: solve_ov(ov, "gpu"), "method: expected one of auto, packed, blas, numpy"),
        (lambda ov: solve_ov(ov, "packed", 0), "block: expected a positive integer"),
        (lambda ov: count_orthogonal_pairs(ov, "blas", 2.5), "block: expected a positive integer"),
        (lambda ov: solve_ov(ov.U, "packed"), "ov: expected an OV instance"),
        (lambda ov: solve_ov_tile(ov.U, ov.V_packed), "U_packed: expected a 2-D uint64 array"),
        (lambda ov: count_tile(ov.U_packed, ov.V_packed[0]), "V_packed: expected a 2-D uint64 array"),
        (lambda ov: solve_ov_tile(ov.U_packed, np.zeros((2, 2), np.uint64)), "U_packed has 1 words per vector"),
        (lambda ov: count_tile(np.zeros((2, 0), np.uint64), np.zeros((2, 0), np.uint64)), "zero words per vector"),
        (lambda ov: solve_ov_tile(ov.U_packed, ov.V_packed, threads=0), "threads: expected 1"),
    ],
)
def test_bad_arguments_are_named(call, fragment):
    ov = OV([[1, 0], [0, 1]], [[0, 1]])
    with pytest.raises(InvalidInstance) as info:
        call(ov)
    assert fragment in str(info.value)


def test_tiles_can_run_in_several_python_threads_at_once():
    """What a threaded Dask worker does: concurrent kernel calls give the same answers as serial ones."""
    from concurrent.futures import ThreadPoolExecutor

    U, V = _guarded(3000, 2000, 90, seed=4)
    U[2500] = np.eye(90, dtype=np.uint8)[1]
    V[:, 1] = 0  # row 2500 is e_1 and no V vector has coordinate 1: orthogonal to all of V
    ov = OV(U, V)
    bands = [(i0, min(i0 + 500, ov.n_U)) for i0 in range(0, ov.n_U, 500)]
    with ThreadPoolExecutor(4) as pool:
        firsts = list(pool.map(lambda b: solve_ov_tile(ov.U_packed[b[0] : b[1]], ov.V_packed, b[0], threads=1), bands))
        counts = list(pool.map(lambda b: count_tile(ov.U_packed[b[0] : b[1]], ov.V_packed), bands))
    assert firsts == [None] * 5 + [(2500, 0)] and sum(counts) == 2000 == count_orthogonal_pairs(ov, "numpy")



@pytest.mark.parametrize("method", ["packed", "blas", "numpy"])
@pytest.mark.parametrize("pair_row", [None, 3100])
def test_progress_counts_rows_up_to_the_band_of_the_first_pair(method, pair_row):
    rng = np.random.default_rng(7)
    U = np.ones((5000, 20), np.uint8)
    V = rng.integers(0, 2, (700, 20), dtype=np.uint8)
    V[:, 0] = 1                                   # every V vector meets every all-ones U row
    if pair_row is not None:
        U[pair_row] = 1 - V[650]
    ov = OV(U, V)
    calls = []
    pair = solve_ov(ov, method, block=64, progress=lambda done, n: calls.append((done, n)))
    assert pair == solve_ov(ov, method, block=64)
    assert pair == (None if pair_row is None else (pair_row, 650))
    done = [d for d, _ in calls]
    assert calls and all(n == 5000 for _, n in calls) and done == sorted(set(done))
    if pair_row is None:
        assert done[-1] == 5000                       # every row searched
    else:
        assert pair_row < done[-1] <= 5000            # stopped after the band holding the pair

"""Brute-force bichromatic Hamming closest pair and Gap-ANN decision (ground truth).

Distances come from one matrix product per tile, ``dist = |u| + |v| - 2 U V^T``
(:mod:`reductions.problems.bhcp`), in float64 (exact: every value is an integer ``<= 2m``),
so the extra memory is ``O(block^2)`` and the cost ``O(n_U n_V m)`` flops.
"""

from __future__ import annotations

import numpy as np

from reductions.errors import InvalidInstance
from reductions.problems.bhcp import BHCP

#: Default tile side (a block x block float64 distance matrix, 32 MiB).
DEFAULT_BLOCK = 2048

Closest = tuple[int, int, int]


def solve_bhcp(inst: BHCP, block: int = DEFAULT_BLOCK) -> Closest | None:
    """The closest pair ``(i, j, dist)``: the first pair in row-major order at the minimum distance.

    None if a side is empty.  Checker: ``inst.distance(i, j) == dist``.

    Examples
    --------
    >>> solve_bhcp(BHCP([[1, 1, 0], [0, 0, 1]], [[1, 1, 1], [0, 1, 1]]))
    (0, 0, 1)
    """
    if not isinstance(inst, BHCP):
        raise InvalidInstance(f"inst: expected a BHCP instance, got {type(inst).__name__}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise InvalidInstance(f"block: expected a positive integer, got {block!r}")
    U = inst.U.astype(np.float64)
    V = inst.V.astype(np.float64)
    wU = U.sum(axis=1)
    wV = V.sum(axis=1)
    best: tuple[int, int, int] | None = None  # (dist, i, j): the lexicographic minimum
    for i0 in range(0, inst.n_U, block):
        for j0 in range(0, inst.n_V, block):
            G = U[i0 : i0 + block] @ V[j0 : j0 + block].T
            D = wU[i0 : i0 + block, None] + wV[None, j0 : j0 + block] - 2.0 * G
            a, b = np.unravel_index(int(np.argmin(D)), D.shape)
            here = (int(D[a, b]), i0 + int(a), j0 + int(b))
            best = here if best is None else min(best, here)
    return None if best is None else (best[1], best[2], best[0])


def solve_gap_ann(inst: BHCP, block: int = DEFAULT_BLOCK) -> bool:
    """Gap-ANN(t, eps): True if some pair has ``dist <= t``, False if all have ``dist >= (1 + eps) t``.

    Raises
    ------
    InvalidInstance
        If ``inst`` has no ``(t, eps)``, or breaks the promise (the minimum distance lies
        strictly between ``t`` and ``(1 + eps) t``): the answer is then undefined, and this
        solver refuses to guess.

    Examples
    --------
    >>> from fractions import Fraction
    >>> solve_gap_ann(BHCP([[1, 0, 0]], [[1, 0, 1]], t=1, eps=Fraction(1)))
    True
    >>> solve_gap_ann(BHCP([[1, 0, 0]], [[0, 1, 1]], t=1, eps=Fraction(1)))
    False
    """
    if not isinstance(inst, BHCP) or inst.t is None:
        raise InvalidInstance("inst: expected a BHCP instance with the Gap-ANN thresholds t and eps")
    closest = solve_bhcp(inst, block)
    if closest is None:
        return False
    dist = closest[2]
    if dist <= inst.t:
        return True
    if dist >= inst.far:
        return False
    raise InvalidInstance(
        f"the instance breaks the Gap-ANN promise: the minimum distance {dist} (pair {closest[:2]}) "
        f"lies strictly between t = {inst.t} and (1 + eps) t = {inst.far}"
    )

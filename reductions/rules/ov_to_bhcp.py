"""Orthogonal Vectors -> exact-gap bichromatic Hamming closest pair (THEORY 1.5 item 2).

Pad every vector to weight ``m`` in dimension ``3m`` keeping inner products
(``a* = (a, 1^(m-|a|) 0^|a|, 0^m)``, ``b* = (b, 0^m, 1^(m-|b|) 0^|b|)``) and complement the V
side (``bc = 1 - b*``).  Then ``dist(a*, bc) = |a*| + |bc| - 2 <a*, bc> = m + 2m - 2(m - <a, b>)
= m + 2 <a, b>``: orthogonal pairs are exactly the pairs at distance ``m``, every other pair
is at distance ``>= m + 2``.  The BHCP question "is some pair at distance ``<= t = m``?" has
the same answer and the same witnesses as the OV question, in both directions.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from reductions.problems.bhcp import BHCP, equal_weight_embedding
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_maxip import same_pair


def threshold_instance(U: np.ndarray, V: np.ndarray, t: int, eps: Fraction, problem: str, meta: dict) -> BHCP:
    """A BHCP instance asking "some pair at distance ``<= t``?" with the promise gap ``eps``."""
    return BHCP(U, V, t=t, eps=eps, meta={**meta, "problem": problem})


def parity_gap(inst: BHCP) -> int:
    """``g = 2`` if every ``dist(U[i], V[j])`` has the parity of ``t``, else ``1``.

    ``dist(u, v) = |u| + |v| - 2 <u, v>`` has the parity of ``|u| + |v|``, so it suffices that
    all weights in U share one parity, all in V another, and their sum matches ``t``.

    Examples
    --------
    >>> parity_gap(BHCP([[1, 1, 0]], [[1, 0, 0], [0, 0, 1]], t=1, eps=1))
    2
    >>> parity_gap(BHCP([[1, 1, 0]], [[1, 0, 0], [0, 1, 1]], t=1, eps=1))
    1
    """
    parities = {int(w) % 2 for w in inst.U.sum(axis=1, dtype=np.int64)}
    parities_v = {int(w) % 2 for w in inst.V.sum(axis=1, dtype=np.int64)}
    if len(parities) > 1 or len(parities_v) > 1:
        return 1
    total = (next(iter(parities), 0) + next(iter(parities_v), 0)) % 2
    return 2 if total == inst.t % 2 else 1


def exact_gap(t: int) -> Fraction:
    """``eps = 1/t``: for integer distances "``<= t`` or ``>= t + 1``" is no promise at all."""
    return Fraction(1, max(t, 1))


@reduction(
    source="ov",
    target="bhcp",
    reference="THEORY 1.5 item 2 (equal-weight padding and complement; Rubinstein 2018 starts from BHCP)",
    formulas={"n_U": "n_U", "n_V": "n_V", "d": "3*m", "t": "m", "g": "2"},
    default=True,
)
def reduce(ov: OV) -> Reduced:
    """OV -> BHCP "is min dist <= m?": a pair is at distance ``m`` iff it is orthogonal.

    Returns
    -------
    Reduced
        ``target`` a :class:`~reductions.problems.bhcp.BHCP` with ``t = m`` and
        ``eps = 1/m`` (the exact decision: distances are integers), ``meta["problem"] =
        "bhcp"``; ``lift(solver)`` maps a pair at distance ``<= m`` to the same orthogonal
        pair and ``None`` to ``None``.

    Notes
    -----
    THEORY 1.5 item 2.  ``dist(a*, 1 - b*) = m + 2 <a, b>``: YES iff ``min dist = m``;
    NO implies ``min dist >= m + 2`` (so :mod:`~reductions.rules.bhcp_to_gapann` can state
    the gap ``eps = 2/m``).  Decoding works in both directions: a witness at distance ``m``
    is an orthogonal pair (same indices), and "no pair at distance ``<= m``" means no
    orthogonal pair.  Sizes ``n_U``, ``n_V`` unchanged, dimension ``d = 3m``, ``t = m``,
    parity gap ``g = 2`` (every distance is ``m`` plus an even number); time
    ``O((n_U + n_V) m)``.

    Examples
    --------
    >>> red = reduce(OV([[1, 0], [1, 1]], [[0, 1], [1, 0]]))
    >>> [[red.target.distance(i, j) for j in range(2)] for i in range(2)]
    [[2, 4], [4, 4]]
    >>> red.target.t, red.lift(lambda inst: (0, 0))
    (2, (0, 0))
    """
    Us, Vs = equal_weight_embedding(ov.U, ov.V)
    m = ov.m
    target = threshold_instance(Us, 1 - Vs, m, exact_gap(m), "bhcp", {"reduction": "ov_to_bhcp", "m": m})
    return Reduced.karp(
        ov,
        target,
        same_pair,
        params={"n_U": target.n_U, "n_V": target.n_V, "d": target.m, "t": target.t, "g": parity_gap(target)},
    )

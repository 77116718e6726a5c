"""Orthogonal Vectors -> exact-gap Max-IP (THEORY 1.5 item 1).

``U''_i = (U_i, 1 - U_i)`` and ``V''_j = (1 - V_j, 1_m)`` in ``{0,1}^(2m)`` satisfy
``<U''_i, V''_j> = m - <U_i, V_j>`` because ``1 - a b = a (1 - b) + (1 - a)`` on bits; so
``(i, j)`` is orthogonal iff its inner product reaches ``tau = m``, and every other pair has
inner product ``<= m - 1`` (gap 1).  This is the encoding all attention constructions use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reductions.problems.maxip import MaxIP
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction


def same_pair(pair: Any) -> tuple[int, int] | None:
    """The decoder of the pair-to-pair rules: the same index pair (as ints), ``None`` to ``None``."""
    return None if pair is None else (int(pair[0]), int(pair[1]))


def maxip_encoding(ov: OV) -> tuple[np.ndarray, np.ndarray]:
    """``(U'', V'')`` with ``<U''_i, V''_j> = m - <U_i, V_j>``."""
    U = np.concatenate([ov.U, 1 - ov.U], axis=1)
    V = np.concatenate([1 - ov.V, np.ones_like(ov.V)], axis=1)
    return U, V


@reduction(
    source="ov",
    target="maxip",
    reference="exact-gap encoding a'' = (a, 1-a), b'' = (1-b, 1); THEORY 1.5 (AS23 Section 4)",
    formulas={"n_U": "n_U", "n_V": "n_V", "d": "2*m", "tau": "m"},
    default=True,
)
def reduce(ov: OV) -> Reduced:
    """OV -> Max-IP with ``tau = m``: a pair reaches ``tau`` iff it is orthogonal.

    Notes
    -----
    THEORY 1.5 item 1.  ``<(a, 1-a), (1-b, 1_m)> = sum_l a_l (1 - b_l) + (1 - a_l)
    = m - <a, b>``.  YES iff ``max IP = m``; NO implies ``max IP <= m - 1``.  Sizes
    ``n_U``, ``n_V`` unchanged, dimension ``d = 2m``, threshold ``tau = m``; time
    ``O((n_U + n_V) m)``.  Decoding is the identity on index pairs.

    Examples
    --------
    >>> from reductions.problems.maxip import solve_maxip
    >>> red = reduce(OV([[1, 0], [1, 1]], [[1, 1], [0, 1]]))
    >>> red.target.U.tolist(), red.target.V.tolist(), red.target.tau
    ([[1, 0, 0, 1], [1, 1, 0, 0]], [[0, 0, 1, 1], [1, 0, 1, 1]], 2)
    >>> red.lift(solve_maxip)
    (0, 1)
    """
    U, V = maxip_encoding(ov)
    target = MaxIP(U, V, tau=ov.m, meta={"reduction": "ov_to_maxip", "m": ov.m})
    return Reduced.karp(
        ov,
        target,
        same_pair,
        params={"n_U": target.n_U, "n_V": target.n_V, "d": target.m, "tau": target.tau},
    )

"""Decoder (a): the paper's Riemann sum of ``f'`` (AS24 Lemma E.4, Theorem E.5) -- a negative control.

``t_m = (1/m) sum_{i<m} f'(i/m)`` approximates ``f(1) - f(0)`` with error at most ``b/m``,
``b = sup_[0,1] |f''|`` (Lemma E.4).  Lemma E.3 bounds ``b = O(B^2 n)``; explicitly
(THEORY 4.4) ``b <= 8 n_q c^2``, ``c = 3a/(2 pi)``, ``a`` the score rows' spread.  Theorem E.5
takes ``m = O(log^4 n)`` points; but the answer must be known to about ``1/n^2`` (H) and
``b/m`` is about ``n B^2 / log^4 n``: the certified error exceeds the margin by a
polynomial factor, and so does the true error on small instances (THEORY 4.2 I1, 4.5).
The decoder therefore reports the bound and refuses (``PrecisionError``) whenever it is not
below the margin; it decides only when given enough points (``m > b / margin``).
"""

from __future__ import annotations

import math
from typing import Callable

from reductions.decoders.common import derivative_bound


def paper_points(n: int) -> int:
    """``ceil(log2 n)^4``: Theorem E.5's ``O(log^4 n)`` points with constant 1 (``n`` tokens).

    Examples
    --------
    >>> paper_points(64), paper_points(2)
    (1296, 1)
    """
    return max(1, math.ceil(math.log2(max(n, 2)))) ** 4


def riemann_bound(spread: float, n_q: int, points: int) -> float:
    """``b / m`` with ``b = 8 n_q c^2`` (Lemma E.4 with Lemma E.3's constant made explicit).

    Examples
    --------
    >>> riemann_bound(2 * math.pi / 3, n_q=1, points=8)
    1.0
    """
    return derivative_bound(2, spread, n_q) / points


def riemann_sum(fprime_at: Callable[[float], tuple[float, float]], f0: float, points: int) -> tuple[float, float]:
    """``(f(0) + (1/m) sum_{i<m} f'(i/m), propagated oracle error)``; ``m`` oracle calls.

    Examples
    --------
    >>> est, err = riemann_sum(lambda t: (2 * t, 0.0), 0.0, 4)     # f = t^2: left sum 0.75
    >>> est, err
    (0.75, 0.0)
    """
    values, errors = zip(*(fprime_at(i / points) for i in range(points)))
    estimate = math.fsum([f0, *(v / points for v in values)])
    return estimate, math.fsum(errors) / points

"""OV -> attention gradient by the paper's route (AS24 Theorem E.5): H + Riemann sum.  A negative control.

AS24's proof of Theorem E.5: take Lemma E.2's instance (Construction H, THEORY 2.4, here at
``s = ln(8n(n+1))`` so that ``f(1)`` separates the answers at all), embed it at
``X = lambda I`` with ``E = 0`` (THEORY 4.3), and recover ``f(1) = f(0) + int_0^1 f'``
from ``m = O(log^4 n)`` gradient calls by the left Riemann sum (Lemma E.4), whose error
is at most ``b/m`` with ``b = sup|f''| = O(B^2 n)`` (Lemma E.3).

**Why it fails** (THEORY 4.2 I1, 4.5).  The decision needs ``|F - f(1)| < margin`` with
margin ``~ 1/(n+1)^2`` (YES ``f(1) >= 2/(n+1)^2``, NO ``f(1) <= 1/(32 n (n+1)^2)``), but
the certified bound is ``b/m = 8 n_q c^2 / m`` (``n_q = 2n``, ``c = 3 s m_OV / (2 pi)``), i.e.
``Theta(n log^4 n / m)``: with ``m = log2(n_q)^4`` points it exceeds the margin by a
factor ``~ n^3``, and the true error behaves like ``|f'(0)| / (2m) ~ n a / m``, also far
above the margin.  The decoder reports the bound and refuses (``PrecisionError``) before
calling the oracle; ``evaluate=True`` computes the sum anyway (for the audit), then refuses.
Given ``points > b / margin`` it decides correctly (and finds a witness by halving U, like
the quadrature route) -- a polynomial number of calls.

Sizes and bounds: ``2n`` tokens, ``d = 2m``, ``B = sqrt(2m ln(8n(n+1)))`` (raw
``sqrt(s)``), max score ``B_E3 = s m`` (Lemma E.3's ``B``).  Oracle calls stated:
``(1 + ceil(log2 n)) ceil(log2(2n))^4`` (the paper's count; 0 when it refuses).
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any, Callable

from reductions.decoders.common import Gap, fprime_oracle
from reductions.decoders.riemann import paper_points, riemann_bound, riemann_sum
from reductions.embedding import RawAttention
from reductions.errors import InvalidInstance
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_attention_h import construction_h, scale_gradient
from reductions.rules.ov_to_gradient_quadrature import Estimator, scalar_reduction

_N = "Max(n_U, n_V, 1)"


def riemann_estimator(points: int | None, evaluate: bool) -> Estimator:
    """Decoder (a) with ``points`` (default :func:`paper_points` of the token count)."""

    def estimate(raw: RawAttention, solver: Callable[[Any], Any], gap: Gap) -> tuple:
        m = paper_points(raw.n_q) if points is None else int(points)
        bound = riemann_bound(raw.spread, raw.n_q, m)
        needed = math.floor(bound * m / gap.margin) + 1
        extra = {"points": m, "points_needed": needed,
                 "hint": f"the Riemann sum needs more than b/margin = {needed - 1} points (it has {m})"}
        if bound >= gap.margin and not evaluate:
            return math.nan, bound, 0.0, 0, extra
        value, oracle_error = riemann_sum(fprime_oracle(raw, solver), raw.f0(), m)
        return value, bound, oracle_error, m, extra

    return estimate


@reduction(
    source="ov",
    target="gradient",
    reference="AS24 Lemmas E.3, E.4 and Theorem E.5 as written (negative control; THEORY 4.2, 4.5)",
    formulas={
        "n": f"2*{_N}",
        "n_k": f"2*{_N}",
        "d": "2*m",
        "B": f"sqrt(2*m*log(8*{_N}*({_N} + 1)))",
    },
    oracle_calls=f"(1 + ceiling(log({_N}, 2)))*ceiling(log(2*{_N}, 2))**4",
)
def reduce(ov: OV, *, points: int | None = None, evaluate: bool = False) -> Reduced:
    """OV -> AAttLGC by the paper's Riemann sum over lambda: refuses, because its error exceeds the margin.

    Parameters
    ----------
    ov : the OV instance.
    points : Riemann points ``m``; default ``ceil(log2(2n))^4`` (Theorem E.5's ``O(log^4 n)``).
    evaluate : compute the sum even when its certified error is not below the margin (the
        estimate is in ``stats["decisions"]``), then refuse.

    Returns
    -------
    Reduced
        ``lift(gradient_oracle)`` raises :class:`~reductions.errors.PrecisionError` unless
        ``points > 8 n_q c^2 / margin``; then it returns an orthogonal pair or ``None``.

    Notes
    -----
    AS24 Lemma E.4 (left Riemann sum, error ``<= b/m``), Lemma E.3 (``b = O(B^2 n)``; here
    ``8 n_q c^2`` with ``c = 3 s m / (2 pi)``), Theorem E.5 (``m = O(log^4 n)``).  See the
    module docstring for the failure and THEORY 4.2 for the audit.  Sizes: ``2n`` tokens,
    ``d = 2m``, ``B = sqrt(2m ln(8n(n+1)))``.

    Examples
    --------
    >>> red = reduce(OV([[1, 0], [0, 1]], [[1, 1], [1, 0]]))
    >>> red.lift(lambda instance: None)
    Traceback (most recent call last):
    ...
    attention.errors.PrecisionError: f(1) = ||T||^2: the error bound 27.3 (the oracle's error propagated to the statistic, plus the decoder's own) is not below the margin 0.11 of the decision; the Riemann sum needs more than b/margin = 3966 points (it has 16)
    """
    if points is not None and (isinstance(points, bool) or not isinstance(points, Integral) or points < 1):
        raise InvalidInstance(f"points: expected a positive integer number of Riemann points, got {points!r}")
    return scalar_reduction(
        ov,
        lambda U, V: construction_h(U, V, scale_gradient(U.shape[0])),
        riemann_estimator(points, bool(evaluate)),
        share=0.5,
    )

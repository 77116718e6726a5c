"""Gap-ANN -> attention forward (AAttC), H and S variants: the AS23 route to ``B = Theta(sqrt(log n))``.

A Gap-ANN instance ``(U, V, t, eps)`` (THEORY 1.4): YES = some pair has ``dist <= t``,
NO = every pair has ``dist >= (1 + eps) t`` (a promise problem; ``t >= 1``).  Pad the
sides to ``n = max(n_U, n_V)``; the equal-weight embedding ``a'' = (a, 1 - a)``,
``b'' = (b, 1 - b)`` in ``{0,1}^{2D}`` gives ``<a'', b''> = D - dist(a, b)`` and
``<a'', 1_{2D}> = D``.  Raw scores ``s <a'', k>``.

**H-variant** (THEORY 2.6): Construction H's shape with dummy keys ``sqrt(s) 1_{2D}``:
``T_i = Z_i / (Z_i + n)``, ``Z_i = sum_j exp(-s dist_ij)``.  A row with a close partner has
``T_i >= e^{-st} / (n+1)``; a row whose pairs are all far, ``T_i <= e^{-s(1+eps)t}``.
``s = ln(4(n+1)) / (eps t)`` makes the latter ``<= e^{-st} / (4(n+1))``: threshold
``5 e^{-st} / (8(n+1))``, precision ``3 e^{-st} / (8(n+1)) = n^{-O(1 + 1/eps)}``.
Entries: raw ``sqrt(s)``, normalised ``B = sqrt(2 D ln(4(n+1)) / (eps t))`` --
``Theta(sqrt(log n))`` when ``t = Theta(D)`` and ``eps`` is a constant (AS23's threshold,
via Rubinstein's gap); with OV's exact gap (``eps = 2/m``, ``t = m``) ``B = Theta(log n)``.

**S-variant**: one sentinel key ``sqrt(s) ((D - t)/D) 1_{2D}`` (score ``s (D - t)`` for every
query): ``T_i = Z_i / (Z_i + 1)``, ``Z_i = sum_j exp(-s (dist_ij - t))``; close row
``T_i >= 1/2``, far row ``T_i <= n e^{-s eps t}``; ``s = ln(4n) / (eps t)``: threshold
``3/8``, constant precision ``1/8``; ``B = sqrt(2 D ln(4n) / (eps t))``; needs ``t <= D``
(otherwise every pair is close).

Witness: the rows above the threshold (by decreasing ``T_i``) are scanned for a partner
with ``dist <= t``; at least one has one (a far-only row stays below).  Rows whose nearest
partner lies inside the gap may also rise above the threshold, so the scan may visit
several rows (at most ``n``).  One oracle call.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from reductions.embedding import RawAttention, original_index, padded_sides
from reductions.errors import InvalidInstance
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_attention_h import forward_reduction, half_dummy
from reductions.rules.ov_to_attention_s import sentinel

_N = "Max(n_U, n_V, 1)"
REFERENCE = "AS23 Section 4 (Gap-ANN -> AAttC, reconstructed); THEORY 2.3, 2.6"


def _gap_question(inst: Any) -> tuple[int, float]:
    """``(t, eps t)`` of a Gap-ANN instance, exact (``eps`` may be a Fraction)."""
    t, eps = getattr(inst, "t", None), getattr(inst, "eps", None)
    if t is None or eps is None:
        raise InvalidInstance("a Gap-ANN instance needs the question (t, eps); this one has none")
    if int(t) < 1:
        raise InvalidInstance(f"t = {t}: the attention reductions need t >= 1 (t = 0 leaves no gap to scale)")
    return int(t), float(Fraction(eps) * int(t))


def close_partner(U: np.ndarray, V: np.ndarray, t: int) -> Callable[[int], int | None]:
    """``i -> `` the first ``j`` with ``dist(U[i], V[j]) <= t`` (or ``None``)."""
    Vi = np.asarray(V, dtype=np.int64)

    def partner(i: int) -> int | None:
        hits = np.flatnonzero(np.count_nonzero(Vi != np.asarray(U[i], dtype=np.int64), axis=1) <= t)
        return int(hits[0]) if hits.size else None

    return partner


def _decoder(inst: Any) -> Callable[[int, int], tuple[int, int]]:
    n_U, n_V = np.asarray(inst.U).shape[0], np.asarray(inst.V).shape[0]
    return lambda i, j: (original_index(i, n_U), original_index(j, n_V))


def gapann_h(U: np.ndarray, V: np.ndarray, t: int, eps_t: float) -> RawAttention:
    """The H-variant on equal-size sides at ``s = ln(4(n+1)) / (eps t)``."""
    n, D = U.shape
    s = math.log(4 * (n + 1)) / eps_t
    Aq, Bk = np.concatenate([U, 1 - U], axis=1), np.concatenate([V, 1 - V], axis=1)
    meta = {"construction": "gapann-H", "D": D, "t": t, "n_ov": n}
    return half_dummy(Aq, Bk, np.ones(2 * D), s, t_yes=math.exp(-s * t) / (n + 1),
                      t_no=math.exp(-s * (t + eps_t)), max_score=s * D, meta=meta)


def gapann_s(U: np.ndarray, V: np.ndarray, t: int, eps_t: float) -> RawAttention:
    """The S-variant on equal-size sides at ``s = ln(4n) / (eps t)`` (needs ``t <= D``)."""
    n, D = U.shape
    if t > D:
        raise InvalidInstance(f"t = {t} exceeds the dimension D = {D}: every pair is within distance t")
    s = math.log(4 * n) / eps_t
    Aq, Bk = np.concatenate([U, 1 - U], axis=1), np.concatenate([V, 1 - V], axis=1)
    meta = {"construction": "gapann-S", "D": D, "t": t, "n_ov": n}
    return sentinel(Aq, Bk, np.full(2 * D, (D - t) / D), s, t_no=n * math.exp(-s * eps_t),
                    max_score=s * D, meta=meta)


def _reduce(inst: Any, build: Callable[[np.ndarray, np.ndarray, int, float], RawAttention]) -> Reduced:
    t, eps_t = _gap_question(inst)
    U, V, empty = padded_sides(np.asarray(inst.U), np.asarray(inst.V), far=True)
    raw = build(U, V, t, eps_t)
    return forward_reduction(inst, raw, empty, close_partner(U, V, t), _decoder(inst))


@reduction(
    source="gapann",
    target="attention",
    reference=REFERENCE,
    formulas={
        "n": f"2*{_N}",
        "n_k": f"2*{_N}",
        "d": "2*d",
        "B": f"sqrt(2*d*log(4*({_N} + 1))/(eps*t))",
    },
    name="gapann_to_attention_h",
)
def reduce_h(inst: Any) -> Reduced:
    """Gap-ANN -> AAttC, H-variant (dummy keys): precision ``n^{-O(1 + 1/eps)}``, one forward call.

    Parameters
    ----------
    inst : a Gap-ANN instance: sides ``U``, ``V`` (0/1, dimension ``D``), ``t >= 1``, ``eps > 0``.

    Returns
    -------
    Reduced
        ``lift(forward_oracle)`` returns a pair with ``dist <= t`` or ``None``.

    Notes
    -----
    THEORY 2.6 (module docstring).  ``2n`` tokens, ``d = 2D``, ``s = ln(4(n+1))/(eps t)``,
    ``B = sqrt(2D s)``, raw entries ``sqrt(s)``, max score ``s D``; threshold
    ``5 e^{-st}/(8(n+1))``, margin ``3 e^{-st}/(8(n+1))``.  Correct under the promise only.

    Examples
    --------
    >>> from reductions.problems.bhcp import BHCP
    >>> red = reduce_h(BHCP([[1, 0, 0]], [[1, 1, 0], [0, 1, 1]], t=1, eps=Fraction(1)))
    >>> red.target.n, red.target.d
    (4, 6)
    """
    return _reduce(inst, gapann_h)


@reduction(
    source="gapann",
    target="attention",
    reference=REFERENCE,
    formulas={
        "n": f"{_N} + 1",
        "n_k": f"{_N} + 1",
        "d": "2*d",
        "B": f"sqrt(2*d*log(4*{_N})/(eps*t))",
    },
    name="gapann_to_attention_s",
    default=True,
)
def reduce_s(inst: Any) -> Reduced:
    """Gap-ANN -> AAttC, S-variant (one sentinel key): constant precision 1/8, one forward call.

    Parameters
    ----------
    inst : a Gap-ANN instance: sides ``U``, ``V`` (dimension ``D``), ``1 <= t <= D``, ``eps > 0``.

    Returns
    -------
    Reduced
        ``lift(forward_oracle)`` returns a pair with ``dist <= t`` or ``None``.

    Notes
    -----
    THEORY 2.6 (module docstring).  ``n + 1`` tokens, ``d = 2D``, ``s = ln(4n)/(eps t)``,
    ``B = sqrt(2D s)``, max score ``s D``; threshold ``3/8``, margin ``1/8``.  Correct under
    the promise only.

    Examples
    --------
    >>> from reductions.problems.bhcp import BHCP
    >>> red = reduce_s(BHCP([[1, 0, 0]], [[1, 1, 0], [0, 1, 1]], t=1, eps=Fraction(1)))
    >>> red.target.n, red.target.d, round(red.params["precision"], 12)
    (3, 6, 0.125)
    """
    return _reduce(inst, gapann_s)

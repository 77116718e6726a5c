"""Bichromatic Hamming closest pair (BHCP) and its Gap-ANN decision form; relation to OV.

BHCP: given ``U in {0,1}^(n_U x m)`` and ``V in {0,1}^(n_V x m)``, find ``min dist(u, v)``
over ``u in U, v in V`` (Hamming distance).  **Gap-ANN(t, eps)** (THEORY 1.4, the decision
version AS23 start from): distinguish YES, some pair has ``dist <= t``, from NO, every pair
has ``dist >= (1 + eps) t``; instances in between break the promise.  The brute-force solvers
are :func:`solvers.bhcp.solve_bhcp` and :func:`solvers.bhcp.solve_gap_ann`.

Distance and inner product (THEORY 1.4): for ``a, b in {0,1}^m``

    dist(a, b) = |a| + |b| - 2 <a, b>,

so on vectors of one fixed weight ``w`` (both sides) distance and inner product determine
each other: ``dist = 2 (w - <a, b>)``.  Two embeddings make weights equal:

- :func:`complement_embedding` ``a -> (a, 1 - a)``: weight ``m``, dimension ``2m``, and
  ``<(a, 1-a), (b, 1-b)> = m - dist(a, b)``;
- :func:`equal_weight_embedding` (THEORY 1.5.2): ``a* = (a, 1^(m-|a|) 0^|a|, 0^m)``,
  ``b* = (b, 0^m, 1^(m-|b|) 0^|b|)``: weight ``m``, dimension ``3m``, ``<a*, b*> = <a, b>``;
  with the complement ``bc = 1_(3m) - b*`` (weight ``2m``), ``dist(a*, bc) = m + 2 <a, b>``.
  So OV is BHCP with YES iff min distance ``= m`` and NO iff min distance ``>= m + 2``:
  Gap-ANN with ``t = m``, ``eps = 2/m`` (a gap that vanishes, not a constant one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Rational
from typing import Any

import numpy as np

from reductions.errors import InvalidInstance
from reductions.problems.ov import BinarySides, require_binary, require_meta


@dataclass(frozen=True, eq=False)
class BHCP(BinarySides):
    """Bichromatic Hamming closest pair instance, optionally the Gap-ANN question ``(t, eps)``.

    ``U``, ``V``: 0/1 matrices with the same number of columns ``m``; a side may be empty.
    ``t``: near threshold (int ``>= 0``) and ``eps > 0`` (int, Fraction or float, stored
    exactly as a Fraction: pass ``Fraction(2, m)`` rather than ``2 / m``), both or neither.

    Examples
    --------
    >>> inst = BHCP([[1, 0, 1]], [[1, 1, 1], [0, 0, 0]], t=1, eps=Fraction(1, 2))
    >>> (inst.n_U, inst.n_V, inst.m, inst.far, inst.distance(0, 0))
    (1, 2, 3, Fraction(3, 2), 1)
    >>> BHCP([[1, 0]], [[1, 0, 0]])
    Traceback (most recent call last):
    ...
    attention.errors.InvalidInstance: U has dimension m = 2 but V has m = 3; both sides need the same m
    """

    t: int | None = None
    eps: Fraction | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.t is None) != (self.eps is None):
            raise InvalidInstance("t, eps: give both (the Gap-ANN question) or neither (plain BHCP)")
        if self.t is not None:
            object.__setattr__(self, "t", _threshold(self.t))
            object.__setattr__(self, "eps", _gap(self.eps))
        require_meta(self.meta)

    @property
    def far(self) -> Fraction | None:
        """The NO threshold ``(1 + eps) t`` (exact), or None for plain BHCP."""
        return None if self.t is None else (1 + self.eps) * self.t

    def distance(self, i: int, j: int) -> int:
        """``dist(U[i], V[j])``."""
        return hamming_distance(self.U[i], self.V[j])


def _threshold(t: Any) -> int:
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise InvalidInstance(f"t: expected an integer distance >= 0, got {t!r}")
    return int(t)


def _gap(eps: Any) -> Fraction:
    if isinstance(eps, bool) or not isinstance(eps, (Rational, float, np.floating, np.integer)):
        raise InvalidInstance(f"eps: expected a positive number (a Fraction for exact gaps), got {eps!r}")
    if isinstance(eps, (float, np.floating)) and not np.isfinite(eps):
        raise InvalidInstance(f"eps: expected a positive finite number, got {eps!r}")
    value = Fraction(eps) if not isinstance(eps, np.integer) else Fraction(int(eps))
    if value <= 0:
        raise InvalidInstance(f"eps: the gap must be positive, got {eps!r}")
    return value


# --------------------------------------------------------------------------- identities
def hamming_distance(a: Any, b: Any) -> int:
    """``dist(a, b)``: the number of coordinates where the 0/1 vectors differ.

    Examples
    --------
    >>> hamming_distance([1, 0, 1, 1], [0, 0, 1, 0])
    2
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    return int(np.count_nonzero(a != b))


def distance_from_inner(weight_a: Any, weight_b: Any, inner: Any) -> Any:
    """``dist(a, b) = |a| + |b| - 2 <a, b>`` (elementwise on arrays).

    Examples
    --------
    >>> distance_from_inner(3, 2, 1)     # a = 1110, b = 1001
    3
    """
    return _int_or_array(np.asarray(weight_a) + np.asarray(weight_b) - 2 * np.asarray(inner))


def inner_from_distance(weight_a: Any, weight_b: Any, distance: Any) -> Any:
    """``<a, b> = (|a| + |b| - dist(a, b)) / 2``, exact (integer) for consistent inputs.

    Raises
    ------
    InvalidInstance
        If ``|a| + |b| - dist`` is odd or negative somewhere (no pair of 0/1 vectors has
        those weights and distance).

    Examples
    --------
    >>> inner_from_distance(3, 2, 3)
    1
    """
    twice = np.asarray(weight_a) + np.asarray(weight_b) - np.asarray(distance)
    if np.any(twice % 2) or np.any(twice < 0):
        raise InvalidInstance(
            "weight_a + weight_b - distance must be even and >= 0 (it is twice the inner product)"
        )
    return _int_or_array(twice // 2)


def _int_or_array(value: np.ndarray) -> Any:
    return int(value) if value.ndim == 0 else value


def complement_embedding(X: Any) -> np.ndarray:
    """``a -> (a, 1 - a)`` row by row: weight ``m``, and ``<(a,1-a), (b,1-b)> = m - dist(a, b)``.

    Examples
    --------
    >>> complement_embedding([[1, 0, 1]]).tolist()
    [[1, 0, 1, 0, 1, 0]]
    """
    X = require_binary(X, "X")
    return np.concatenate([X, 1 - X], axis=1)


def equal_weight_embedding(U: Any, V: Any) -> tuple[np.ndarray, np.ndarray]:
    """THEORY 1.5.2 padding: rows of weight ``m`` in dimension ``3m`` with the inner products kept.

    ``a* = (a, 1^(m-|a|) 0^|a|, 0^m)``, ``b* = (b, 0^m, 1^(m-|b|) 0^|b|)``;
    ``<a*, b*> = <a, b>`` and ``dist(a*, 1 - b*) = m + 2 <a, b>`` (module docstring).

    Examples
    --------
    >>> Us, Vs = equal_weight_embedding([[1, 0]], [[0, 0]])
    >>> Us.tolist(), Vs.tolist()
    ([[1, 0, 1, 0, 0, 0]], [[0, 0, 0, 0, 1, 1]])
    """
    sides = BinarySides(U, V)
    return _pad(sides.U, first=True), _pad(sides.V, first=False)


def _pad(X: np.ndarray, first: bool) -> np.ndarray:
    """``(x, 1^(m-|x|) 0^|x|)`` placed in the second (U) or third (V) block of ``3m`` columns."""
    rows, m = X.shape
    ones = (np.arange(m)[None, :] < (m - X.sum(axis=1, dtype=np.int64))[:, None]).astype(np.uint8)
    zeros = np.zeros((rows, m), np.uint8)
    blocks = [X, ones, zeros] if first else [X, zeros, ones]
    return np.concatenate(blocks, axis=1)

"""Feature maps ``phi, psi`` with ``<phi(q), psi(k)> = P(<q, k> / d)`` (symmetric tensor powers).

For ``P(x) = sum_{t <= g} c_t x^t`` the multinomial theorem gives (THEORY 2.2 item 3)

    (<q, k>)^t = sum_{|alpha| = t} (t! / prod_l alpha_l!) q^alpha k^alpha ,

over multi-indices ``alpha in N^d``, so with

    phi(q)_alpha = c_|alpha| (|alpha|! / prod_l alpha_l!) q^alpha / d^|alpha| ,
    psi(k)_alpha = k^alpha ,

``Phi(Q) Psi(K)^T = P(Q K^T / d)`` exactly, entrywise, with ``r = C(d + g, g)`` features
(the symmetric tensor powers; the plain tensor powers would need ``sum_t d^t``).

Order of the features: graded by degree; within degree ``t``, grouped by the largest
variable ``v`` of ``alpha`` (ascending); each group is ``x_v`` times the prefix of the
degree-``t-1`` monomials whose largest variable is ``<= v``, in their order.  So every
monomial is one multiply from its parent ``alpha - e_v``, a whole group is one broadcast
multiply, and the features of degree ``<= g'`` are the first ``C(d + g', g')`` columns for
every ``g' <= g``.  Building the features of ``n`` rows costs ``n r`` multiplies in
``g d`` numpy calls, for float64 or for object arrays of mpmath numbers alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from attention.errors import InvalidInstance


def rank(d: int, degree: int) -> int:
    """``C(d + g, g)``, the number of multi-indices ``alpha in N^d`` with ``|alpha| <= g``.

    Examples
    --------
    >>> rank(4, 7), rank(8, 7)
    (330, 6435)
    """
    return math.comb(d + degree, degree)


@dataclass(frozen=True, eq=False)
class MonomialBasis:
    """The multi-indices ``|alpha| <= g`` of dimension ``d`` in the feature order.

    Attributes
    ----------
    d, degree : the dimension and the largest total degree ``g``.
    exponents : ``(r, d)`` int array, row ``i`` is ``alpha_i``.
    degrees : ``(r,)`` int array, ``|alpha_i|``.
    multinomials : tuple of Python ints ``|alpha|! / prod_l alpha_l!`` (exact).
    groups : for each degree ``t >= 1`` and variable ``v``: ``(start, count)`` of the
        parents (a prefix of degree ``t - 1``) and the first column it fills.

    Examples
    --------
    >>> basis = monomial_basis(2, 2)
    >>> basis.exponents.tolist()
    [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]]
    >>> basis.multinomials
    (1, 1, 1, 1, 2, 1)
    """

    d: int
    degree: int
    exponents: np.ndarray
    degrees: np.ndarray
    multinomials: tuple
    groups: tuple

    @property
    def rank(self) -> int:
        """``r = C(d + g, g)``."""
        return len(self.degrees)


@lru_cache(maxsize=64)
def monomial_basis(d: int, degree: int) -> MonomialBasis:
    """The multi-indices of dimension ``d`` and degree ``<= degree`` (cached)."""
    if not isinstance(d, (int, np.integer)) or d < 1:
        raise InvalidInstance(f"d: expected an integer >= 1, got {d!r}")
    if not isinstance(degree, (int, np.integer)) or degree < 0:
        raise InvalidInstance(f"degree: expected an integer >= 0, got {degree!r}")
    d, degree = int(d), int(degree)
    exps = [np.zeros(d, dtype=np.int64)]
    multis = [1]
    top = [-1]  # largest variable of each monomial (-1 for the constant)
    groups = []
    prev_start, prev_stop = 0, 1
    for t in range(1, degree + 1):
        for v in range(d):
            count = sum(1 for i in range(prev_start, prev_stop) if top[i] <= v)
            groups.append((prev_start, count, len(exps)))
            for i in range(prev_start, prev_start + count):
                alpha = exps[i].copy()
                alpha[v] += 1
                exps.append(alpha)
                multis.append(multis[i] * t // int(alpha[v]))
                top.append(v)
        prev_start, prev_stop = prev_stop, len(exps)
    exponents = np.array(exps, dtype=np.int64)
    exponents.setflags(write=False)
    degrees = exponents.sum(axis=1)
    degrees.setflags(write=False)
    return MonomialBasis(d, degree, exponents, degrees, tuple(multis), tuple(groups))


def monomials(X: np.ndarray, degree: int) -> np.ndarray:
    """``M[i, alpha] = X[i]^alpha`` for all ``|alpha| <= degree`` (the feature order), shape ``(n, r)``.

    Works for float64 and for object arrays (mpmath numbers); the dtype is kept.  Each
    entry is one multiply from its parent, so its relative rounding error is at most
    ``|alpha| u``.

    Examples
    --------
    >>> monomials(np.array([[2.0, 3.0]]), 2).tolist()
    [[1.0, 2.0, 3.0, 4.0, 6.0, 9.0]]
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise InvalidInstance(f"X: expected a 2-D matrix of points, got shape {X.shape}")
    n, d = X.shape
    basis = monomial_basis(d, degree)
    XT = np.ascontiguousarray(X.T)
    out = np.empty((basis.rank, n), dtype=X.dtype)  # built transposed: each group is contiguous
    out[0] = 1
    for group, (start, count, first) in enumerate(basis.groups):
        v = group % d
        np.multiply(out[start : start + count], XT[v], out=out[first : first + count])
    return out.T


def query_weights(coefficients, d: int, scale: float | None = None) -> np.ndarray:
    """``w_alpha = c_|alpha| (|alpha|! / prod alpha_l!) scale^|alpha|`` with ``scale = 1/d`` by default.

    ``coefficients`` are ``c_0 .. c_g`` (float64 array, or a sequence of mpmath numbers, in
    which case an object array is returned, computed exactly from the integer multinomials).
    """
    g = len(coefficients) - 1
    basis = monomial_basis(d, g)
    exact = not isinstance(coefficients, np.ndarray) or coefficients.dtype == object
    if exact:
        s = 1 / type(coefficients[0])(d) if scale is None else type(coefficients[0])(scale)
        powers = [s**t for t in range(g + 1)]
        weights = [coefficients[t] * m * powers[t] for t, m in zip(basis.degrees.tolist(), basis.multinomials)]
        return np.array(weights, dtype=object)
    s = 1.0 / d if scale is None else float(scale)
    per_degree = coefficients * s ** np.arange(g + 1)
    return per_degree[basis.degrees] * np.array(basis.multinomials, dtype=np.float64)


def phi(Q: np.ndarray, coefficients, scale: float | None = None) -> np.ndarray:
    """Query features ``phi(q)_alpha = c_|alpha| multinom(alpha) q^alpha scale^|alpha|`` (``scale = 1/d``).

    Examples
    --------
    >>> Q, K = np.array([[1.0, 2.0]]), np.array([[3.0, -1.0], [0.5, 0.5]])
    >>> c = np.array([1.0, 1.0, 0.5])                  # P(x) = 1 + x + x^2/2
    >>> x = Q @ K.T / 2
    >>> np.allclose(phi(Q, c) @ psi(K, 2).T, 1 + x + x**2 / 2)
    True
    """
    Q = np.asarray(Q)
    return monomials(Q, len(coefficients) - 1) * query_weights(coefficients, Q.shape[1], scale)


def psi(K: np.ndarray, degree: int) -> np.ndarray:
    """Key features ``psi(k)_alpha = k^alpha`` for ``|alpha| <= degree``."""
    return monomials(K, degree)

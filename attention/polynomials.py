"""Polynomials for ``exp`` on ``[-R, R]`` with a certified maximum relative error.

The polynomial method (AS23 Section 3, AS24 Section D) replaces ``exp(<q, k>/d)`` by a
degree-``g`` polynomial ``P``; everything downstream only needs the *relative* error

    delta(P) = max_{|x| <= R} |P(x) e^{-x} - 1| ,

because ``|P(x) - e^x| <= delta e^x`` entrywise gives the softmax the relative error
``eta = 2 delta / (1 - delta)`` (THEORY 2.2 item 4).  Three families (THEORY 5.3):

``taylor``
    ``P = sum_{t <= g} x^t / t!``.  Its relative error is attained at an end point
    (``e'(x) = -x^g e^{-x} / g!`` has one sign on each side of 0), so ``delta`` is exact:
    ``max(|P(-R) e^R - 1|, |P(R) e^{-R} - 1|) <= R^{g+1} e^R / (g+1)!``.
``chebyshev``
    The interpolant of ``e^x`` in the ``g + 1`` Chebyshev points of the first kind on
    ``[-R, R]`` (the points of :func:`numpy.polynomial.chebyshev.chebinterpolate`).
    Near-minimax for the *absolute* error, so for large ``R`` it wastes degree on the
    relative error.
``minimax``
    The relative minimax polynomial: the Remez exchange algorithm with weight ``e^{-x}``
    (equioscillation at ``g + 2`` points), run in mpmath.  Optimal for every ``(R, g)``.

Certification
-------------
Every polynomial carries ``delta``, a rigorous upper bound of its maximum relative error
on ``[-R, R]``, and ``sampled``, the largest error seen on a grid (a lower bound).  For
``taylor`` both come from the closed form above.  For ``chebyshev`` and ``minimax`` the
interval is cut into panels of half-width ``s`` (in ``y = x / R``); on each panel the
product ``P(R(m + s z)) e^{-R(m + s z)}`` is expanded in ``z`` to order ``N = g + 24``
exactly (mpmath), and the rest of the series is bounded by the remainder of the
exponential series, ``sum_{u >= K} a^u / u! <= a^K / K! * (K + 1) / (K + 1 - a)``.  Panels
whose bound exceeds the sampled maximum by more than 3 % are halved (up to 10 times).
The result is the "fine grid plus remainder bound" certificate; the mpmath rounding of the
computation itself (``dps`` digits) is added as a slack term.

The coefficients are kept in mpmath (``coefficients``) so that the tables of THEORY 5.3 can
be re-established below the float64 floor; ``coef64`` rounds them for the float64
algorithm, whose error analysis (:mod:`attention.fast`) adds the rounding
``u sum_t |c_t| R^t``.

References
----------
J. Alman, Z. Song, Fast attention requires bounded entries, NeurIPS 2023 (AS23).
J. Alman, Z. Song, The fine-grained complexity of gradient computation for training large
language models, NeurIPS 2024 (AS24).
A. Aggarwal, J. Alman, Optimal-degree polynomial approximations for exponentials and
Gaussian kernel density estimation, CCC 2022 (AA22).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import mpmath
import numpy as np
from numpy.polynomial import chebyshev as npcheb

from attention.errors import InvalidInstance, ResourceError

KINDS = ("taylor", "chebyshev", "minimax")

#: Largest degree :func:`smallest_polynomial` tries unless told otherwise.
MAX_DEGREE = 120

_ORDER_EXTRA = 24  # panel expansion order N = g + _ORDER_EXTRA
_SPLIT_TOLERANCE = 1 / 32  # halve a panel whose bound exceeds the sampled max by more
_MAX_SPLITS = 10
_REMEZ_TOLERANCE = 1e-4  # stop when the reference errors agree to this relative spread
_REMEZ_MAX_ITER = 40


@dataclass(frozen=True)
class ExpPolynomial:
    """``P(x) = sum_t coefficients[t] x^t`` approximating ``e^x`` on ``[-R, R]``.

    Attributes
    ----------
    kind : one of :data:`KINDS`.
    R : half-width of the interval.
    coefficients : monomial coefficients ``c_0 .. c_g`` in ``x`` (mpmath numbers).
    delta : certified upper bound of ``max_{|x| <= R} |P(x) e^{-x} - 1|``.
    sampled : the largest ``|P(x) e^{-x} - 1|`` found on the certification grid
        (a lower bound of the true maximum; ``sampled <= delta``).

    Examples
    --------
    >>> p = exp_polynomial(1.0, 7, "minimax")
    >>> p.degree, p.delta < 1e-6, p.sampled <= p.delta
    (7, True, True)
    >>> float(abs(p(np.array([0.5]))[0] / np.exp(0.5) - 1)) <= p.delta
    True
    """

    kind: str
    R: float
    coefficients: tuple
    delta: float
    sampled: float

    @property
    def degree(self) -> int:
        """The degree ``g`` (number of coefficients minus one)."""
        return len(self.coefficients) - 1

    @property
    def coef64(self) -> np.ndarray:
        """The coefficients rounded to float64 (relative rounding at most ``u = 2^-53``)."""
        return np.array([float(c) for c in self.coefficients])

    @property
    def abs_sum(self) -> float:
        """``sum_t |c_t| R^t`` rounded up: the size of the terms a float64 evaluation adds."""
        with mpmath.workdps(30):
            total = mpmath.fsum(abs(c) * mpmath.mpf(self.R) ** t for t, c in enumerate(self.coefficients))
        return _up(total)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate ``P`` in float64 (Horner) at the points ``x``."""
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros_like(x)
        for c in self.coef64[::-1]:
            out = out * x + c
        return out


# ---------------------------------------------------------------------------------- helpers
def _up(value: mpmath.mpf) -> float:
    """``value`` as a float rounded towards +infinity."""
    f = float(value)
    return float(np.nextafter(f, np.inf)) if mpmath.mpf(f) < value else f


def _check_interval(R: float) -> float:
    try:
        R = float(R)
    except (TypeError, ValueError):
        raise InvalidInstance(f"R: expected a number, got {R!r}") from None
    if not math.isfinite(R) or R < 0:
        raise InvalidInstance(f"R: the half-width of [-R, R] must be finite and >= 0, got {R}")
    return R


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInstance(f"kind: unknown polynomial kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def _check_delta(delta: float) -> float:
    try:
        delta = float(delta)
    except (TypeError, ValueError):
        raise InvalidInstance(f"delta: expected a number, got {delta!r}") from None
    if not 0 < delta < 1:
        raise InvalidInstance(f"delta: the target relative error must lie in (0, 1), got {delta}")
    return delta


def working_digits(R: float, degree: int) -> int:
    """Decimal digits for the mpmath computations at ``(R, degree)``.

    Evaluating ``P(-R)`` ~ ``e^{-R}`` from terms of size ~``e^R`` cancels ``2R / ln 10``
    digits; the error to be resolved has about ``-log10`` of a Taylor-like estimate
    ``(R/2)^{g+1} / ((g+1)! 2^g)`` digits; the Chebyshev-to-monomial change of basis loses
    up to ``0.3 g`` digits.  25 guard digits are added.
    """
    if R == 0:
        return 30
    log_level = (degree + 1) * math.log10(R / 2) - math.lgamma(degree + 2) / math.log(10) - degree * math.log10(2)
    return int(25 + max(0.0, -log_level) + 2 * R / math.log(10) + 0.3 * degree)


# ---------------------------------------------------------------------------------- families
def _taylor_coefficients_y(R: mpmath.mpf, g: int) -> list:
    """Monomial coefficients in ``y = x / R`` of the Taylor polynomial: ``R^t / t!``."""
    return [R**t / mpmath.factorial(t) for t in range(g + 1)]


def _chebyshev_coefficients_y(R: mpmath.mpf, g: int) -> list:
    """Chebyshev-series coefficients in ``y`` of the interpolant of ``e^{R y}`` (first-kind points)."""
    theta = [mpmath.pi * (k + mpmath.mpf(1) / 2) / (g + 1) for k in range(g + 1)]
    values = [mpmath.exp(R * mpmath.cos(t)) for t in theta]
    coeffs = []
    for j in range(g + 1):
        a = 2 * mpmath.fsum(v * mpmath.cos(j * t) for v, t in zip(values, theta)) / (g + 1)
        coeffs.append(a / 2 if j == 0 else a)
    return coeffs


def _clenshaw(cheb: list, y: mpmath.mpf) -> mpmath.mpf:
    """``sum_j cheb[j] T_j(y)`` by Clenshaw's recurrence."""
    b1 = b2 = mpmath.mpf(0)
    y2 = 2 * y
    for c in reversed(cheb[1:]):
        b1, b2 = y2 * b1 - b2 + c, b1
    return y * b1 - b2 + cheb[0]


def _relative_error_fn(cheb: list, R: mpmath.mpf) -> Callable:
    """``y -> p(y) e^{-R y} - 1`` for the Chebyshev series ``cheb``."""
    return lambda y: _clenshaw(cheb, y) * mpmath.exp(-R * y) - 1


def _illinois(f: Callable, a, b, fa, fb, tol) -> mpmath.mpf:
    """A root of ``f`` in ``[a, b]`` (``fa``, ``fb`` of opposite signs) by the Illinois method."""
    side = 0
    c = a
    for _ in range(200):
        c_old = c
        c = (a * fb - b * fa) / (fb - fa)
        fc = f(c)
        if fc == 0 or abs(c - c_old) < tol or abs(b - a) < tol:
            return c
        if (fc > 0) == (fb > 0):
            b, fb = c, fc
            if side == -1:
                fa /= 2
            side = -1
        else:
            a, fa = c, fc
            if side == 1:
                fb /= 2
            side = 1
    return c


def _argmax_on(err: Callable, slope: Callable, sign: int, a, b, guess, tol) -> mpmath.mpf:
    """Where ``sign * err`` is largest on ``[a, b]`` (``guess`` inside): a root of ``slope`` or an end.

    ``slope`` has the sign of ``err'``.  The maximiser is bracketed by the sample points
    ``a, guess, b`` (and the midpoints beside ``guess``) and refined by the Illinois method.
    """
    points = [a, (a + guess) / 2, guess, (guess + b) / 2, b]
    slopes = [sign * slope(p) for p in points]
    for lo, hi, s_lo, s_hi in zip(points, points[1:], slopes, slopes[1:]):
        if s_lo > 0 > s_hi:
            return _illinois(slope, lo, hi, sign * s_lo, sign * s_hi, tol)
    return max((a, b, guess), key=lambda p: sign * err(p))


def _remez_coefficients_y(R: mpmath.mpf, g: int, target: float | None = None) -> tuple[list, float, float]:
    """Chebyshev-series coefficients in ``y`` of the relative minimax polynomial of ``e^{R y}``.

    Remez exchange with weight ``e^{-R y}``: solve ``p(y_i) - (-1)^i E e^{R y_i} = e^{R y_i}``
    on ``g + 2`` reference points, move each point to the extremum of the error between the
    neighbouring zeros, stop when the reference errors agree to ``_REMEZ_TOLERANCE``.
    Returns ``(coefficients, lower, upper)``: the levelled error ``|E|`` bounds the best error
    from below (de la Vallee Poussin), the largest error at the new reference approximates it
    from above.  With ``target``, stop as soon as ``lower > target`` or ``upper <= target``.
    """
    tol = mpmath.mpf(10) ** (-(mpmath.mp.dps // 2))
    ref = [-mpmath.cos(mpmath.pi * i / (g + 1)) for i in range(g + 2)]
    for _ in range(_REMEZ_MAX_ITER):
        rows = []
        rhs = []
        for i, y in enumerate(ref):
            ey = mpmath.exp(R * y)
            t_prev, t_cur = mpmath.mpf(1), y
            row = [t_prev, t_cur]
            for _j in range(2, g + 1):
                t_prev, t_cur = t_cur, 2 * y * t_cur - t_prev
                row.append(t_cur)
            rows.append(row[: g + 1] + [-((-1) ** i) * ey])
            rhs.append(ey)
        solution = mpmath.lu_solve(mpmath.matrix(rows), mpmath.matrix(rhs))
        cheb = [solution[j] for j in range(g + 1)]
        level = solution[g + 1]
        err = _relative_error_fn(cheb, R)
        der = list(npcheb.chebder(np.array(cheb, dtype=object))) or [mpmath.mpf(0)]

        def slope(y, der=der, cheb=cheb):  # the sign of d/dy err is the sign of p' - R p
            return _clenshaw(der, y) - R * _clenshaw(cheb, y)

        errs_ref = [err(y) for y in ref]
        zeros = [_illinois(err, ref[i], ref[i + 1], errs_ref[i], errs_ref[i + 1], tol) for i in range(g + 1)]
        bounds = [mpmath.mpf(-1), *zeros, mpmath.mpf(1)]
        sign = 1 if level > 0 else -1
        new_ref = [
            _argmax_on(err, slope, sign * (-1) ** i, bounds[i], bounds[i + 1], ref[i], tol) for i in range(g + 2)
        ]
        values = [abs(err(y)) for y in new_ref]
        ref = new_ref
        lower, upper = float(abs(level)), float(max(values))
        if target is not None and (lower > target or upper <= target):
            break
        if max(values) - min(values) <= _REMEZ_TOLERANCE * max(values):
            break
    return cheb, lower, upper


# ---------------------------------------------------------------------------------- certification
def _taylor_shift(coeffs: list, m: mpmath.mpf, s: mpmath.mpf) -> list:
    """Coefficients in ``z`` of ``p(m + s z)`` for ``p`` with monomial coefficients ``coeffs``."""
    b = list(coeffs)
    g = len(b) - 1
    for i in range(g):
        for j in range(g - 1, i - 1, -1):
            b[j] += m * b[j + 1]
    scale = mpmath.mpf(1)
    for t in range(g + 1):
        b[t] *= scale
        scale *= s
    return b


def _exp_tail(K: int, a: mpmath.mpf) -> mpmath.mpf:
    """Upper bound of ``sum_{u >= K} a^u / u!`` for ``0 <= a < K + 1``."""
    return a**K / mpmath.factorial(K) * (K + 1) / (K + 1 - a)


def _panel(coeffs: list, R: mpmath.mpf, m: mpmath.mpf, s: mpmath.mpf) -> tuple:
    """(bound, sampled) of ``|p(y) e^{-R y} - 1|`` on ``[m - s, m + s]`` (Taylor model)."""
    g = len(coeffs) - 1
    order = g + _ORDER_EXTRA
    pi = _taylor_shift(coeffs, m, s)
    a = R * s
    decay = [mpmath.mpf(1)]
    for u in range(1, order + 1):
        decay.append(decay[-1] * (-a) / u)
    scale = mpmath.exp(-R * m)
    phi = [scale * mpmath.fsum(pi[k] * decay[t - k] for k in range(min(t, g) + 1)) for t in range(order + 1)]
    phi[0] -= 1
    tail = scale * mpmath.fsum(abs(pi[k]) * _exp_tail(order - k + 1, a) for k in range(g + 1))
    bound = mpmath.fsum(abs(c) for c in phi) + tail
    right = abs(mpmath.fsum(phi)) - tail
    left = abs(mpmath.fsum(c if t % 2 == 0 else -c for t, c in enumerate(phi))) - tail
    size = scale * mpmath.exp(a) * mpmath.fsum(abs(c) for c in pi)  # magnitude of the terms
    return bound, max(abs(phi[0]), right, left), size


def _certify(coeffs: list, R: mpmath.mpf, panels: int) -> tuple[float, float]:
    """(certified upper bound, sampled lower bound) of ``max |p(y) e^{-R y} - 1|`` on ``[-1, 1]``."""
    s = mpmath.mpf(1) / panels
    todo = [(-1 + (2 * i + 1) * s, s) for i in range(panels)]
    results = [(*_panel(coeffs, R, m, h), m, h) for m, h in todo]
    for _ in range(_MAX_SPLITS):
        lower = max(r[1] for r in results)
        threshold = lower * (1 + _SPLIT_TOLERANCE)
        keep = [r for r in results if r[0] <= threshold]
        split = [r for r in results if r[0] > threshold]
        if not split:
            break
        for _, _, _, m, h in split:
            for child in (m - h / 2, m + h / 2):
                keep.append((*_panel(coeffs, R, child, h / 2), child, h / 2))
        results = keep
    slack = mpmath.mpf(10) ** (5 - mpmath.mp.dps) * max(r[2] for r in results)
    upper = max(r[0] for r in results) + slack
    lower = max(r[1] for r in results) - slack
    return _up(upper), max(0.0, float(lower))


def _taylor_errors(R: mpmath.mpf, g: int) -> float:
    """The exact maximum relative error of the degree-``g`` Taylor polynomial (end points)."""
    left = mpmath.fsum((-R) ** t / mpmath.factorial(t) for t in range(g + 1)) * mpmath.exp(R) - 1
    right = mpmath.fsum(R**t / mpmath.factorial(t) for t in range(g + 1)) * mpmath.exp(-R) - 1
    return max(abs(left), abs(right))


# ---------------------------------------------------------------------------------- public API
@lru_cache(maxsize=512)
def exp_polynomial(R: float, degree: int, kind: str = "minimax") -> ExpPolynomial:
    """The degree-``degree`` polynomial of ``kind`` for ``e^x`` on ``[-R, R]``, certified.

    Parameters
    ----------
    R : half-width of the interval (``>= 0``); ``R = 0`` gives ``P = 1`` exactly.
    degree : ``g >= 0``.
    kind : ``"taylor"``, ``"chebyshev"`` or ``"minimax"``.

    Notes
    -----
    Cost: Taylor O(g); Chebyshev O(g^2) plus the certificate, O(g (g + 24)) per panel on
    ``max(4(g+1), ceil(2R))`` panels (plus the halved ones); minimax a few Remez
    iterations of O(g^3) each.  All in mpmath at :func:`working_digits` digits.

    Examples
    --------
    >>> exp_polynomial(1.0, 9, "taylor").delta < 1e-6 < exp_polynomial(1.0, 8, "taylor").delta
    True
    >>> exp_polynomial(0.0, 3).coefficients
    (mpf('1.0'),)
    """
    R = _check_interval(R)
    _check_kind(kind)
    if not isinstance(degree, (int, np.integer)) or degree < 0:
        raise InvalidInstance(f"degree: expected an integer >= 0, got {degree!r}")
    degree = int(degree)
    if R == 0:
        return ExpPolynomial(kind, 0.0, (mpmath.mpf(1),), 0.0, 0.0)
    with mpmath.workdps(working_digits(R, degree)):
        Rm = mpmath.mpf(R)
        if kind == "taylor":
            mono_y = _taylor_coefficients_y(Rm, degree)
            exact = _taylor_errors(Rm, degree)
            delta, sampled = _up(exact), float(exact)
        else:
            mono_y = list(npcheb.cheb2poly(np.array(_series(R, degree, kind), dtype=object)))
            panels = max(4 * (degree + 1), math.ceil(2 * R))
            delta, sampled = _certify(mono_y, Rm, panels)
        coefficients = tuple(+(b / Rm**t) for t, b in enumerate(mono_y))
    return ExpPolynomial(kind, R, coefficients, delta, sampled)


def _meets(R: float, degree: int, kind: str, delta: float) -> bool:
    """Whether the degree-``degree`` polynomial of ``kind`` seems to reach ``delta`` (steers the search).

    Taylor: the exact error.  Chebyshev: the largest error on ``16(g + 2)`` Chebyshev-spaced
    points.  Minimax: the Remez exchange, stopped as soon as its lower bound (the levelled
    error) exceeds ``delta`` or its upper estimate meets it.
    """
    with mpmath.workdps(working_digits(R, degree)):
        Rm = mpmath.mpf(R)
        if kind == "taylor":
            return _taylor_errors(Rm, degree) <= delta
        if kind == "minimax":
            return _remez_coefficients_y(Rm, degree, target=delta)[2] <= delta
        err = _relative_error_fn(list(_series(R, degree, kind)), Rm)
        grid = 16 * (degree + 2)
        return max(abs(err(-mpmath.cos(mpmath.pi * i / grid))) for i in range(grid + 1)) <= delta


@lru_cache(maxsize=1024)
def _series(R: float, degree: int, kind: str) -> tuple:
    """Chebyshev-series coefficients in ``y = x / R`` (cached; computed at the working digits)."""
    with mpmath.workdps(working_digits(R, degree)):
        Rm = mpmath.mpf(R)
        if kind == "chebyshev":
            return tuple(_chebyshev_coefficients_y(Rm, degree))
        return tuple(_remez_coefficients_y(Rm, degree)[0])


@lru_cache(maxsize=512)
def _smallest(R: float, delta: float, kind: str, max_degree: int) -> ExpPolynomial:
    lo, hi = 0, 1
    while not _meets(R, hi, kind, delta):  # double until the degree seems to suffice
        if hi >= max_degree:
            raise ResourceError(
                f"no {kind} polynomial of degree <= {max_degree} reaches relative error {delta:g} "
                f"on [-{R:g}, {R:g}]; raise max_degree or shrink the score range"
            )
        lo, hi = hi + 1, min(2 * hi, max_degree)
    while lo < hi:  # bisection: the errors decrease with the degree
        mid = (lo + hi) // 2
        if _meets(R, mid, kind, delta):
            hi = mid
        else:
            lo = mid + 1
    for degree in range(lo, max_degree + 1):  # the certificate may ask for one more degree
        poly = exp_polynomial(R, degree, kind)
        if poly.delta <= delta:
            return poly
    raise ResourceError(
        f"no {kind} polynomial of degree <= {max_degree} is certified to relative error {delta:g} "
        f"on [-{R:g}, {R:g}]; raise max_degree"
    )


def smallest_polynomial(
    R: float, delta: float, kind: str = "minimax", *, max_degree: int = MAX_DEGREE
) -> ExpPolynomial:
    """The lowest-degree polynomial of ``kind`` certified to relative error ``<= delta`` on ``[-R, R]``.

    Raises :class:`~attention.errors.ResourceError` when no degree ``<= max_degree`` does.

    Notes
    -----
    The degree is found by doubling and bisection on an error estimate (the Remez level
    for ``minimax``, whose best error decreases monotonically in ``g``; a grid of
    ``16(g + 2)`` Chebyshev-spaced points otherwise) and then certified; if the
    certificate misses ``delta`` the next degree is taken.

    Examples
    --------
    >>> p = smallest_polynomial(1.0, 1e-6, "chebyshev")
    >>> p.degree, p.delta <= 1e-6
    (7, True)
    """
    R = _check_interval(R)
    delta = _check_delta(delta)
    _check_kind(kind)
    if R == 0:
        return exp_polynomial(0.0, 0, kind)
    return _smallest(R, delta, kind, int(max_degree))


def smallest_degree(R: float, delta: float, kind: str = "minimax", *, max_degree: int = MAX_DEGREE) -> int:
    """The smallest degree ``g`` whose ``kind`` polynomial has certified relative error ``<= delta`` on ``[-R, R]``.

    Examples
    --------
    >>> [smallest_degree(1.0, 1e-6, k) for k in KINDS]
    [9, 7, 7]
    """
    return smallest_polynomial(R, delta, kind, max_degree=max_degree).degree


@dataclass(frozen=True)
class DegreePlan:
    """Degree and ranks of the polynomial method for entry bound ``B``, head dimension ``d``.

    ``R = B^2`` (scores ``<q, k>/d`` of vectors with entries in ``[-B, B]``), ``delta`` the
    certified relative error, ``rank = C(d + g, g)`` (features), ``kronecker_rank = rank * d``
    (the ``p1`` factor of AS24 Lemma D.4).
    """

    degree: int
    rank: int
    kronecker_rank: int
    R: float
    delta: float


def degree_for(B: float, d: int, eps: float, kind: str = "minimax", *, max_degree: int = MAX_DEGREE) -> DegreePlan:
    """Smallest degree for entry bound ``B``, dimension ``d`` and relative error ``eps`` of every attention entry.

    Notes
    -----
    With ``||Q||_inf, ||K||_inf <= B`` the normalised scores ``<q, k>/d`` lie in
    ``[-B^2, B^2]`` whatever ``d`` is, so the degree depends on ``(B^2, eps)`` only; ``d``
    enters the ranks ``C(d + g, g)`` (THEORY 2.2 item 3) and ``d C(d + g, g)`` (5.2 step 4).

    Examples
    --------
    >>> plan = degree_for(1.0, 4, 1e-6)
    >>> plan.degree, plan.rank, plan.kronecker_rank
    (7, 330, 1320)
    """
    B = _check_interval(B)
    if not isinstance(d, (int, np.integer)) or d < 1:
        raise InvalidInstance(f"d: expected an integer >= 1, got {d!r}")
    poly = smallest_polynomial(B * B, eps, kind, max_degree=max_degree)
    rank = math.comb(int(d) + poly.degree, poly.degree)
    return DegreePlan(poly.degree, rank, rank * int(d), B * B, poly.delta)


def aa22_degree(R: float, delta: float) -> float:
    """The Aggarwal-Alman 2022 degree shape (constant 1) for relative error ``delta`` on ``[-R, R]``.

    Notes
    -----
    AA22: approximating ``e^{-y}`` on ``[0, b]`` to additive ``eps`` needs degree
    ``Theta(max(sqrt(b L), L / log(L / b)))`` with ``L = log(1/eps)``.  Relative error
    ``delta`` for ``e^x`` on ``[-R, R]`` is additive ``delta e^{-2R}`` for ``e^{-y}`` on
    ``[0, 2R]``, so ``b = 2R``, ``L = ln(1/delta) + 2R``.  The second term is used only when
    ``L > b``.  The constants of AA22 are not specified; this shape is for comparison.

    Examples
    --------
    >>> round(aa22_degree(1.0, 1e-6), 1)
    7.6
    """
    R = _check_interval(R)
    delta = _check_delta(delta)
    b = 2 * R
    L = math.log(1 / delta) + b
    terms = [math.sqrt(b * L)]
    if L > b:
        terms.append(L / math.log(L / b) if b > 0 else 0.0)
    return max(terms)


def taylor_remainder_bound(R: float, degree: int) -> float:
    """``R^{g+1} e^R / (g+1)!``: the Lagrange bound of the Taylor polynomial's relative error."""
    R = _check_interval(R)
    return math.exp((degree + 1) * math.log(R) + R - math.lgamma(degree + 2)) if R > 0 else 0.0

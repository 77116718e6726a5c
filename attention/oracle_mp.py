"""The attention loss, forward output and gradient in arbitrary precision (mpmath).

The reference the float64 oracle and the reductions' verifiers are checked against: the
formulas of THEORY 0.1 (AS24 Lemma C.7 with the 1/d factor) evaluated with ``digits``
significant decimal digits plus guard digits, on small instances only (pure Python:
about ``8 n n_k d`` multiprecision operations).
"""

from __future__ import annotations

from typing import Any, Sequence

import mpmath
import numpy as np

from attention.errors import InvalidInstance, ResourceError
from attention.instance import AttentionInstance
from attention.oracle import Precision, error_bounds, magnitudes
from attention.results import ForwardResult, GradientResult, LossResult

__all__ = ["gradient", "forward", "loss", "mp_loss", "mp_gradient", "MAX_WORK", "GUARD_DIGITS"]

#: Largest ``n * n_k * d`` accepted (about a second of mpmath work per million).
MAX_WORK = 2**18
#: Digits carried beyond the requested ones.
GUARD_DIGITS = 10
#: float64 unit roundoff (the final rounding of the mp result to float64).
U64 = 2.0**-53

Matrix = list[list[Any]]


def _check(instance: AttentionInstance, digits: int) -> int:
    if not isinstance(instance, AttentionInstance):
        raise InvalidInstance(f"instance: expected an AttentionInstance, got {type(instance).__name__}")
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 1:
        raise InvalidInstance(f"digits: expected a positive integer, got {digits!r}")
    work = instance.n * instance.n_k * instance.d
    if work > MAX_WORK:
        raise ResourceError(
            f"instance: n * n_k * d = {instance.n} * {instance.n_k} * {instance.d} = {work} exceeds "
            f"the mpmath oracle's limit {MAX_WORK} (pure-Python arithmetic); "
            "use method='exact' (float64, with a stated error bound)"
        )
    return int(digits)


def _mp(M: np.ndarray) -> Matrix:
    """float64 entries converted exactly (every double is an mpf)."""
    return [[mpmath.mpf(float(x)) for x in row] for row in M]


def _matmul(A: Matrix, B: Matrix) -> Matrix:
    cols = list(zip(*B))
    return [[mpmath.fdot(row, col) for col in cols] for row in A]


def _transpose(A: Matrix) -> Matrix:
    return [list(col) for col in zip(*A)]


def _softmax_rows(S: Matrix) -> Matrix:
    out = []
    for row in S:
        m = max(row)
        w = [mpmath.exp(s - m) for s in row]
        total = mpmath.fsum(w)
        out.append([x / total for x in w])
    return out


def _pieces(A1: Matrix, A2: Matrix, A3: Matrix, E: Matrix, X: Matrix, Y: Matrix) -> dict[str, Any]:
    """Every intermediate of THEORY 0.1 in the current mp precision."""
    d = len(X)
    S = [[s / d for s in row] for row in _matmul(_matmul(A1, X), _transpose(A2))]
    f = _softmax_rows(S)
    h = _matmul(A3, Y)
    att = _matmul(f, h)
    c = [[a - e for a, e in zip(ra, re)] for ra, re in zip(att, E)]
    L = mpmath.fsum(x * x for row in c for x in row) / 2
    return {"f": f, "h": h, "att": att, "c": c, "loss": L, "d": d}


def _gradient_from(A1: Matrix, A2: Matrix, parts: dict[str, Any]) -> Matrix:
    f, h, c, d = parts["f"], parts["h"], parts["c"], parts["d"]
    q = _matmul(c, _transpose(h))
    p = []
    for frow, qrow in zip(f, q):
        fq = [a * b for a, b in zip(frow, qrow)]
        r = mpmath.fsum(fq)                   # (f o q) 1, formed directly as a cross-check of the identity
        p.append([x - r * a for x, a in zip(fq, frow)])
    G = _matmul(_matmul(_transpose(A1), p), A2)
    return [[g / d for g in row] for row in G]


def mp_loss(A1: Matrix, A2: Matrix, A3: Matrix, E: Matrix, X: Matrix, Y: Matrix) -> Any:
    """``L(X)`` for matrices of mpf (lists of rows) in the current ``mpmath.mp`` precision.

    For finite differences and symbolic checks: ``X`` may be any matrix of mp numbers.
    """
    return _pieces(A1, A2, A3, E, X, Y)["loss"]


def mp_gradient(A1: Matrix, A2: Matrix, A3: Matrix, E: Matrix, X: Matrix, Y: Matrix) -> tuple[Matrix, Any]:
    """``(dL/dX, L)`` for matrices of mpf in the current ``mpmath.mp`` precision."""
    parts = _pieces(A1, A2, A3, E, X, Y)
    return _gradient_from(A1, A2, parts), parts["loss"]


def _inputs(instance: AttentionInstance) -> Sequence[Matrix]:
    return [_mp(getattr(instance, name)) for name in ("A1", "A2", "A3", "E", "X", "Y")]


def _mp_precision(digits: int) -> Precision:
    """The arithmetic model of mpmath at ``digits + GUARD_DIGITS`` digits: no underflow."""
    u = 2.0 ** -(mpmath.mp.prec - 1)
    return Precision(name=f"mpmath({digits + GUARD_DIGITS} digits)", u=u, exp_rel=8 * u, tiny=0.0, eta=0.0, input_rounding=0)


def _rounded(M: Matrix) -> np.ndarray:
    return np.array([[float(x) for x in row] for row in M], dtype=np.float64)


def _final_error(values: np.ndarray, mp_bound: float) -> float:
    """mp error plus the rounding to float64 (``u |x|``, ``|x| <= max + mp error``)."""
    top = float(np.abs(values).max()) if values.size else 0.0
    return (mp_bound + U64 * (top + mp_bound)) * (1 + 2.0**-30)


def _info(digits: int, bound: float, **extra: Any) -> dict[str, Any]:
    info = {
        "digits": digits,
        "guard_digits": GUARD_DIGITS,
        "mp_error_bound": bound,
        "bound": (
            "float64 rounding of the mp result (u |x|) plus the a-priori analysis of "
            "attention.oracle.error_bounds at the mp working precision"
        ),
    }
    info.update(extra)
    return info


def gradient(instance: AttentionInstance, *, digits: int = 50) -> GradientResult:
    """``dL/dX`` computed with ``digits`` significant digits, rounded to float64.

    Returns
    -------
    GradientResult
        ``gradient`` (float64), ``error_bound`` = float64 rounding + the mp error bound;
        ``info["mp_gradient"]`` the d x d mp matrix (lists of :class:`mpmath.mpf`),
        ``info["mp_loss"]``, ``info["mp_error_bound"]``.

    Notes
    -----
    THEORY 0.1 evaluated at ``digits + 10`` decimal digits (``mpmath.workdps``); ``(f o q) 1``
    is formed directly, not by the identity the float64 oracle uses, so the two are
    independent.  The mp error bound is :func:`attention.oracle.error_bounds` with the mp unit
    roundoff and no underflow.  Refuses (``ResourceError``) when ``n * n_k * d > MAX_WORK``.

    Examples
    --------
    >>> inst = AttentionInstance.random(n=3, d=2, seed=0)
    >>> res = gradient(inst, digits=30)
    >>> float(res.info["mp_error_bound"]) < 1e-25
    True
    """
    digits = _check(instance, digits)
    with mpmath.workdps(digits + GUARD_DIGITS):
        A1, A2, A3, E, X, Y = _inputs(instance)
        G, L = mp_gradient(A1, A2, A3, E, X, Y)
        bounds = error_bounds(magnitudes(instance), _mp_precision(digits))
    grad = _rounded(G)
    loss_value = float(L)
    return GradientResult(
        gradient=grad,
        loss=loss_value,
        error_bound=_final_error(grad, bounds.gradient),
        loss_error_bound=_final_error(np.array([loss_value]), bounds.loss),
        method="mp",
        info=_info(digits, bounds.gradient, mp_gradient=G, mp_loss=L, mp_loss_error_bound=bounds.loss),
    )


def forward(instance: AttentionInstance, *, digits: int = 50) -> ForwardResult:
    """``Att = f h`` in ``digits`` digits, rounded to float64 (``info["mp_att"]``: the mp matrix)."""
    digits = _check(instance, digits)
    with mpmath.workdps(digits + GUARD_DIGITS):
        parts = _pieces(*_inputs(instance))
        bounds = error_bounds(magnitudes(instance), _mp_precision(digits))
    att = _rounded(parts["att"])
    return ForwardResult(
        att=att, error_bound=_final_error(att, bounds.att), method="mp",
        info=_info(digits, bounds.att, mp_att=parts["att"]),
    )


def loss(instance: AttentionInstance, *, digits: int = 50) -> LossResult:
    """``L = 0.5 ||Att - E||_F^2`` in ``digits`` digits, rounded to float64 (``info["mp_loss"]``)."""
    digits = _check(instance, digits)
    with mpmath.workdps(digits + GUARD_DIGITS):
        L = mp_loss(*_inputs(instance))
        bounds = error_bounds(magnitudes(instance), _mp_precision(digits))
    value = float(L)
    return LossResult(
        loss=value, error_bound=_final_error(np.array([value]), bounds.loss), method="mp",
        info=_info(digits, bounds.loss, mp_loss=L),
    )


"""Decoder (b): composite Gauss-Legendre quadrature of ``f'`` with a certified error bound.

THEORY 4.4 and 4.6.  ``f(1) = f(0) + int_0^1 f'(lambda) dlambda`` where ``f(0)`` is exact
(uniform rows) and ``f'(lambda) = 2 tr(dL/dX (lambda I))`` is one gradient call.  With
``c = 3a / (2 pi)`` (``a`` the score rows' spread), ``|f^(k)| <= 4 n_q k! c^k`` on ``[0, 1]``
(:func:`~reductions.decoders.common.derivative_bound`).  Split ``[0, 1]`` into
``P = ceil(c/2)`` panels of width ``H = 1/P`` (so ``cH <= 2``) and use the ``m``-point
Gauss-Legendre rule on each; the panel error of the rule is
``H^{2m+1} (m!)^4 / ((2m+1) ((2m)!)^3) max |f^(2m+1)|``, so the total error is at most

    E(P, m) = 4 n_q c (cH)^{2m} (m!)^4 / ((2m)!)^2      (<= 16 n_q c m 4^{-m} <= 16 n_q c 2^{-m}).

``m`` is the smallest integer with ``E(P, m) <= delta_q``: ``P m = O(a log(n_q a / delta_q))``
oracle calls.  The weights are positive and sum to 1, so oracle errors ``eps_i`` on ``f'``
add at most ``sum_i w_i eps_i`` to the estimate.  The sum is accumulated with ``math.fsum``
(the H instance's ``f(1)`` is ``n/2 + (about -n/2)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from reductions.errors import InvalidInstance, ResourceError

#: Largest number of nodes per panel tried before giving up.
MAX_NODES = 400


def certified_error(spread: float, n_q: int, panels: int, nodes: int) -> float:
    """``E(P, m) = 4 n_q c (cH)^{2m} (m!)^4 / ((2m)!)^2`` (module docstring), computed in logs.

    Examples
    --------
    >>> certified_error(0.0, 10, 1, 1)
    0.0
    >>> round(certified_error(2 * math.pi / 3, 1, 1, 1), 6)    # c = 1, H = 1: 4 * 1 * 1 / 4
    1.0
    """
    c = 3.0 * spread / (2.0 * math.pi)
    if c == 0:
        return 0.0
    log = (
        math.log(4.0 * n_q * c)
        + 2 * nodes * math.log(c / panels)
        + 4 * math.lgamma(nodes + 1)
        - 2 * math.lgamma(2 * nodes + 1)
    )
    return math.exp(log)


def plan(spread: float, n_q: int, delta_q: float) -> tuple[int, int, float]:
    """``(P, m, E(P, m))``: ``P = max(1, ceil(c/2))`` panels and the fewest nodes reaching ``delta_q``.

    Raises
    ------
    InvalidInstance
        ``delta_q`` is not a positive number.
    ResourceError
        more than :data:`MAX_NODES` nodes per panel would be needed.

    Examples
    --------
    >>> plan(spread=90.0, n_q=64, delta_q=0.5 / 33**2)[:2]
    (22, 15)
    """
    if not (math.isfinite(delta_q) and delta_q > 0):
        raise InvalidInstance(f"delta_q: the quadrature error target must be positive, got {delta_q!r}")
    c = 3.0 * spread / (2.0 * math.pi)
    panels = max(1, math.ceil(c / 2))
    for nodes in range(1, MAX_NODES + 1):
        bound = certified_error(spread, n_q, panels, nodes)
        if bound <= delta_q:
            return panels, nodes, bound
    raise ResourceError(f"more than {MAX_NODES} Gauss-Legendre nodes per panel needed for delta_q = {delta_q:.3g}")


def nodes_and_weights(panels: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``lambda_{p,i} = (p + (x_i + 1)/2) / P`` and weights ``w_i / (2P)`` (they sum to 1)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    p = np.arange(panels)[:, None]
    lams = ((p + (x[None, :] + 1) / 2) / panels).ravel()
    weights = np.broadcast_to(w[None, :] / (2 * panels), (panels, nodes)).ravel()
    return lams, weights


@dataclass(frozen=True)
class Quadrature:
    """An estimate of ``f(1)`` and what it rests on."""

    estimate: float
    quadrature_error: float
    oracle_error: float
    calls: int
    panels: int
    nodes: int


def integrate(
    fprime_at: Callable[[float], tuple[float, float]], f0: float, spread: float, n_q: int, delta_q: float
) -> Quadrature:
    """``f(0) + sum_{p,i} w_{p,i} f'(lambda_{p,i})`` with the certified quadrature error.

    ``fprime_at(lambda) -> (f'(lambda), error)`` is the only access to the oracle.

    Examples
    --------
    >>> # f(lambda) = 1 + e^{-lambda}: spread 1, one row; f(1) = 1 + 1/e
    >>> q = integrate(lambda t: (-math.exp(-t), 0.0), 2.0, spread=1.0, n_q=1, delta_q=1e-12)
    >>> abs(q.estimate - (1 + math.exp(-1))) < 1e-14, q.quadrature_error <= 1e-12
    (True, True)
    """
    panels, nodes, bound = plan(spread, n_q, delta_q)
    lams, weights = nodes_and_weights(panels, nodes)
    values, errors = zip(*(fprime_at(float(lam)) for lam in lams))
    estimate = math.fsum([f0, *(w * v for w, v in zip(weights, values))])
    oracle_error = math.fsum(w * e for w, e in zip(weights, errors))
    return Quadrature(estimate, bound, oracle_error, len(lams), panels, nodes)

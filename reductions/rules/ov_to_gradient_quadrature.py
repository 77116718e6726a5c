"""OV -> attention gradient (AAttLGC) with ``E = 0``: Construction S or H + decoder (b) (Gauss-Legendre).

Embed the attention instance at ``X = lambda I`` (``A1 = sqrt(d) Q``, ``A2 = sqrt(d) K``,
``A3 = [v, 0, ...]``, ``Y = I``, ``E = 0``, THEORY 4.3): the loss is ``f(lambda)/2`` with
``f(lambda) = ||softmax_rows(lambda Q K^T) v||^2``, ``f'(lambda) = 2 tr(dL/dX)``, and
``f(0) = n_q (mean v)^2`` exactly.  Decoder (b) (:mod:`reductions.decoders.gauss_legendre`)
integrates ``f'`` with a certified error ``delta_q``.

**Lemma** (THEORY 4.2 I2, 4.6).  ``f(1) = sum_j T_j^2`` separates the answers:

- Construction S at ``s = ln(8 n^{3/2})`` (``n + 1`` tokens): YES ``=> f(1) >= 1/4``,
  NO ``=> f(1) <= (n+1) (n e^{-s})^2 <= 1/32``; margin ``>= 7/64``;
- Construction H at ``s = ln(8 n (n+1))`` (``2n`` tokens): YES ``=> f(1) >= 2/(n+1)^2``
  (the witness row and its copy), NO ``=> f(1) <= 2n e^{-2s} = 1/(32 n (n+1)^2)``;
  margin ``>= 63/(64 (n+1)^2)``.

Decide at the midpoint; refuse unless ``quadrature error + oracle error < margin``.  The
quadrature gets ``delta_q = share * margin`` (``share = 1/2`` by default) and the oracle
the rest: its entrywise error must be below ``(1 - share) margin / (2d)``: a constant
(``7/(256 d)``) for S, ``1/poly(n)`` for H.

Witness (decoder (b) reads one scalar): search to decision -- halve the U side, deciding
each half's sub-instance ``OV(U[C], V)`` the same way (``<= ceil(log2 n_U)`` more decisions),
then scan V for the remaining row's partner.

Sizes and bounds: S ``n + 1`` tokens, H ``2n``; ``d = 2m``; raw entries ``sqrt(s)``,
normalised ``B = sqrt(2 m s)``; row spread ``a = s m``.  Calls per decision
``P m_GL`` with ``P = ceil(3a/(4 pi))`` panels and ``m_GL <= ceil(log2(16 n_q c / delta_q))``
nodes (``c = 3a/(2 pi)``): ``O(log^2 n log n)`` (THEORY 4.8 item 2); the registered
``oracle_calls`` formula is this upper bound times ``1 + ceil(log2 n)`` decisions.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from reductions.decoders.common import Gap, f1_gap, fprime_oracle, halve, summarise
from reductions.decoders.gauss_legendre import integrate
from reductions.embedding import RawAttention, embed, padded_sides
from reductions.errors import InvalidInstance, PrecisionError
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_attention_h import attention_params, construction_h, orthogonal_partner, scale_gradient
from reductions.rules.ov_to_attention_s import construction_s, scale_quadrature

#: ``(raw, solver, gap) -> (estimate of f(1), quadrature error, oracle error, calls, extra)``.
Estimator = Callable[[RawAttention, Callable[[Any], Any], Gap], tuple[float, float, float, int, dict[str, Any]]]
Construction = Callable[[np.ndarray, np.ndarray], RawAttention]

_N = "Max(n_U, n_V, 1)"


def _calls_bound(s: str, n_q: str, delta: str) -> str:
    """``(1 + ceil(log2 n)) ceil(c/2) ceil(log2(16 n_q c / delta))`` with ``c = 3 m s / (2 pi)``."""
    c = f"(3*m*{s}/(2*pi))"
    return f"(1 + ceiling(log({_N}, 2)))*ceiling({c}/2)*ceiling(log(16*{n_q}*{c}/({delta}), 2))"


def check_share(share: Any) -> float:
    """The quadrature's share of the margin, a number strictly between 0 and 1."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(share, bool) or not 0 < value < 1:
        raise InvalidInstance(f"share: the quadrature's share of the margin must be in (0, 1), got {share!r}")
    return value


def gauss_legendre_estimator(share: float) -> Estimator:
    """Decoder (b) with ``delta_q = share * margin``."""

    def estimate(raw: RawAttention, solver: Callable[[Any], Any], gap: Gap) -> tuple:
        q = integrate(fprime_oracle(raw, solver), raw.f0(), raw.spread, raw.n_q, share * gap.margin)
        return q.estimate, q.quadrature_error, q.oracle_error, q.calls, {"panels": q.panels, "nodes": q.nodes}

    return estimate


def scalar_reduction(ov: OV, construction: Construction, estimator: Estimator, share: float) -> Reduced:
    """OV -> gradient for decoders reading the scalar ``f(1)``: decide, then halve U for a witness.

    ``construction(U, V)`` builds the attention instance of equal-size sides; ``estimator``
    estimates ``f(1)`` from gradient calls.  ``share`` only sets the reported precision
    ``(1 - share) margin / (2d)``.
    """
    U, V, empty = padded_sides(ov.U, ov.V)
    raw = construction(U, V)
    instance, _ = embed(raw, meta={"decoder": "scalar"})
    gap = f1_gap(raw)
    red = Reduced(ov, instance, lift=lambda solver: None,
                  params=attention_params(instance, raw, (1 - share) * gap.margin / (2 * raw.d)))

    def lift(solver: Callable[[Any], Any]) -> tuple[int, int] | None:
        log: list[dict[str, Any]] = []
        calls = [0]

        def holds_witness(rows: np.ndarray) -> bool:
            U2, V2, _ = padded_sides(ov.U[rows], ov.V)
            sub = construction(U2, V2)
            sub_gap = f1_gap(sub)
            value, quadrature_error, oracle_error, used, extra = estimator(sub, solver, sub_gap)
            calls[0] += used
            record = sub_gap.record(value, oracle_error, None, quadrature_error=quadrature_error,
                                    error=quadrature_error + oracle_error, calls=used, rows=int(rows.size), **extra)
            log.append(record)
            record["verdict"] = sub_gap.decide(value, quadrature_error + oracle_error, hint=extra.get("hint", ""))
            return record["verdict"]

        if empty:
            red.stats.update(oracle_calls=0)
            return None
        try:
            if not holds_witness(np.arange(ov.n_U)):
                return None
            i = halve(np.arange(ov.n_U), holds_witness)
        finally:
            red.stats.update(summarise(log, calls[0]))
        j = orthogonal_partner(ov.U, ov.V)(i)
        if j is None:
            raise PrecisionError(
                f"row {i} was decoded as a witness row but has no orthogonal partner: the oracle's "
                "output contradicts its stated error bound"
            )
        return i, j

    red.lift = lift
    return red


@reduction(
    source="ov",
    target="gradient",
    reference="AS24 Theorem E.5 (corrected, THEORY 4.8 item 2): Construction S + decoder (b), THEORY 4.6",
    formulas={
        "n": f"{_N} + 1",
        "n_k": f"{_N} + 1",
        "d": "2*m",
        "B": f"sqrt(2*m*log(8*{_N}**Rational(3, 2)))",
    },
    oracle_calls=_calls_bound(f"log(8*{_N}**Rational(3, 2))", f"({_N} + 1)", "Rational(7, 128)"),
)
def reduce(ov: OV, *, share: float = 0.5) -> Reduced:
    """OV -> AAttLGC (E = 0) by Construction S and Gauss-Legendre quadrature of f': constant precision.

    Parameters
    ----------
    ov : the OV instance (sides of any sizes; the smaller is padded by repeating a vector).
    share : fraction of the decision margin given to the quadrature error (default 1/2).

    Returns
    -------
    Reduced
        ``target``: the instance at ``lambda = 1``; ``lift(gradient_oracle)`` returns an
        orthogonal pair or ``None``; ``stats`` logs each decision's estimate of ``f(1)``,
        certified quadrature error, propagated oracle error, panels, nodes and calls.

    Notes
    -----
    THEORY 4.6 / 4.8 item 2 (module docstring): YES ``f(1) >= 1/4``, NO ``f(1) <= 1/32``,
    ``s = ln(8 n^{3/2})``, ``n + 1`` tokens, ``d = 2m``, ``B = sqrt(2m ln(8 n^{3/2}))``;
    the oracle's entrywise error must be below ``(1 - share) margin / (2d) >= 7/(256 d)``.
    Departure from AS24: Gauss-Legendre panels instead of the Riemann sum (whose error is
    ``Theta(n B^2 / m)``), and the sentinel shape instead of Lemma E.2's (``f(1)`` then
    separates with a constant gap).

    Examples
    --------
    >>> red = reduce(OV([[1, 0], [0, 1]], [[1, 1], [1, 0]]))
    >>> red.target.n, red.target.d, round(red.params["precision"], 4)
    (3, 4, 0.0071)
    """
    share = check_share(share)
    return scalar_reduction(
        ov, lambda U, V: construction_s(U, V, scale_quadrature(U.shape[0])), gauss_legendre_estimator(share), share
    )


@reduction(
    source="ov",
    target="gradient",
    reference="AS24 Theorem E.5 with Lemma E.2's instance shape: Construction H + decoder (b), THEORY 4.6",
    formulas={
        "n": f"2*{_N}",
        "n_k": f"2*{_N}",
        "d": "2*m",
        "B": f"sqrt(2*m*log(8*{_N}*({_N} + 1)))",
    },
    oracle_calls=_calls_bound(f"log(8*{_N}*({_N} + 1))", f"2*{_N}", f"63/(128*({_N} + 1)**2)"),
    name="ov_to_gradient_quadrature_h",
)
def reduce_h(ov: OV, *, share: float = 0.5) -> Reduced:
    """OV -> AAttLGC (E = 0) by Construction H (Lemma E.2's shape) and Gauss-Legendre quadrature of f'.

    Parameters
    ----------
    ov : the OV instance.
    share : fraction of the decision margin given to the quadrature error (default 1/2).

    Returns
    -------
    Reduced
        As :func:`reduce`.

    Notes
    -----
    THEORY 4.6 (module docstring): YES ``f(1) >= 2/(n+1)^2``, NO
    ``f(1) <= 1/(32 n (n+1)^2)``, ``s = ln(8n(n+1))``, ``2n`` tokens, ``d = 2m``,
    ``B = sqrt(2m ln(8n(n+1)))``.  The margin is ``Theta(1/n^2)``, so the oracle needs
    ``1/poly(n)`` entrywise precision (``(1 - share) margin / (2d)``): the instance shape of
    Lemma E.2 with ``E = 0`` cannot give the constant or ``1/polylog`` precision Theorem E.5
    claims (THEORY 4.2 I3).

    Examples
    --------
    >>> red = reduce_h(OV([[1, 0], [0, 1]], [[1, 1], [1, 0]]))
    >>> red.target.n, red.target.d
    (4, 4)
    """
    share = check_share(share)
    return scalar_reduction(
        ov, lambda U, V: construction_h(U, V, scale_gradient(U.shape[0])), gauss_legendre_estimator(share), share
    )

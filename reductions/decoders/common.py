"""What every numeric decoder shares: promise gaps, refusals, and reading an oracle's answer.

A decoder reads a *statistic* from one or more oracle answers and compares it with a
threshold.  The reduction guarantees a promise gap: on YES instances the exact statistic is
``>= yes_lower``, on NO instances ``<= no_upper``.  Deciding at the midpoint tolerates any
error below the *margin* ``(yes_lower - no_upper) / 2``.  The oracle states an error bound;
propagated to the statistic it must be below the margin, otherwise the decoder raises
:class:`~reductions.errors.PrecisionError` instead of guessing.  A NaN or infinite statistic
or error bound is refused the same way.

The oracle is only ever used through the callable a decoder is given, so float32, noisy or
failing oracles can be injected for reliability experiments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from reductions.embedding import RawAttention, embed, fprime, fprime_error
from reductions.errors import InvalidInstance, PrecisionError


@dataclass(frozen=True)
class Gap:
    """A promise gap for one statistic: YES ``=> >= yes_lower``, NO ``=> <= no_upper``.

    Examples
    --------
    >>> gap = Gap(yes_lower=0.5, no_upper=0.25, label="max T")
    >>> gap.threshold, gap.margin
    (0.375, 0.125)
    >>> gap.decide(0.49, error=0.01)
    True
    >>> gap.decide(0.49, error=0.2)
    Traceback (most recent call last):
    ...
    attention.errors.PrecisionError: max T: the error bound 0.2 (the oracle's error propagated to the statistic, plus the decoder's own) is not below the margin 0.125 of the decision; use a more precise oracle (e.g. method="mp")
    """

    yes_lower: float
    no_upper: float
    label: str = "statistic"

    def __post_init__(self) -> None:
        if not self.yes_lower > self.no_upper:
            raise InvalidInstance(
                f"{self.label}: no promise gap (YES lower bound {self.yes_lower:.3g} is not above "
                f"the NO upper bound {self.no_upper:.3g})"
            )

    @property
    def threshold(self) -> float:
        """The midpoint ``(yes_lower + no_upper) / 2``: decide YES iff the statistic exceeds it."""
        return 0.5 * (self.yes_lower + self.no_upper)

    @property
    def margin(self) -> float:
        """``(yes_lower - no_upper) / 2``: the error the decision tolerates."""
        return 0.5 * (self.yes_lower - self.no_upper)

    def check(self, error: float, hint: str = "") -> None:
        """Refuse (``PrecisionError``) unless ``error`` is a finite number below the margin.

        ``hint`` (how to get a smaller error) ends the message; by default: a more precise oracle.
        """
        if not (math.isfinite(error) and error >= 0):
            raise PrecisionError(f"{self.label}: the stated error bound is {error!r}; cannot decide")
        if not error < self.margin:
            raise PrecisionError(
                f"{self.label}: the error bound {error:.3g} (the oracle's error propagated to the "
                f"statistic, plus the decoder's own) is not below the margin {self.margin:.3g} of the "
                "decision; " + (hint or 'use a more precise oracle (e.g. method="mp")')
            )

    def decide(self, statistic: float, error: float, hint: str = "") -> bool:
        """YES iff ``statistic > threshold``, after checking ``error < margin`` and finiteness."""
        self.check(error, hint)
        if not math.isfinite(statistic):
            raise PrecisionError(f"{self.label}: the oracle's answer gives the statistic {statistic!r}; cannot decide")
        return statistic > self.threshold

    def record(self, statistic: float, oracle_error: float, verdict: bool | None, **extra: Any) -> dict[str, Any]:
        """One line of a decoder's log (``Reduced.stats["decisions"]``; a non-finite statistic as ``None``)."""
        return {
            "label": self.label,
            "statistic": float(statistic) if math.isfinite(statistic) else None,
            "threshold": self.threshold,
            "margin": self.margin,
            "oracle_error": float(oracle_error),
            "verdict": None if verdict is None else bool(verdict),
            **extra,
        }


def summarise(decisions: list[dict[str, Any]], calls: int) -> dict[str, Any]:
    """``Reduced.stats`` from a decoder's log: the tightest decision's numbers at top level.

    The tightest decision is the one with the largest ``error / margin`` (``error`` = the
    total error when a decoder adds its own, e.g. quadrature, else ``oracle_error``); its
    ``statistic``, ``threshold``, ``margin`` and errors are reported, so ``margin > error``
    at top level holds iff it holds for every decision.
    """
    stats: dict[str, Any] = {"oracle_calls": calls, "decisions": decisions}
    if decisions:
        tight = max(decisions, key=lambda r: r.get("error", r["oracle_error"]) / r["margin"])
        for key in ("statistic", "threshold", "margin"):
            stats[key] = tight[key]
        stats.update({k: v for k, v in tight.items() if k == "error" or k.endswith("_error")})
    return stats


def _error_bound(result: Any, what: str) -> float:
    try:
        error = float(result.error_bound)
    except (AttributeError, TypeError, ValueError):
        raise InvalidInstance(
            f"the oracle returned a {type(result).__name__} without a numeric error_bound; "
            f"an oracle must return an attention.{what}"
        ) from None
    if not (math.isfinite(error) and error >= 0):
        raise PrecisionError(f"the oracle stated the error bound {error!r}; cannot decide")
    return error


def read_gradient(result: Any, d: int) -> tuple[np.ndarray, float]:
    """``(G, error)`` from an oracle's :class:`~attention.GradientResult` (shape ``d x d`` checked).

    NaN entries are passed on: the statistic computed from them is NaN and the decision
    refuses.
    """
    error = _error_bound(result, "GradientResult")
    G = np.asarray(getattr(result, "gradient", None), dtype=np.float64)
    if G.shape != (d, d):
        raise InvalidInstance(f"the oracle returned a gradient of shape {G.shape}; expected ({d}, {d})")
    return G, error


def read_forward(result: Any, n_q: int, d: int) -> tuple[np.ndarray, float]:
    """``(att, error)`` from an oracle's :class:`~attention.ForwardResult` (shape ``n_q x d`` checked)."""
    error = _error_bound(result, "ForwardResult")
    att = np.asarray(getattr(result, "att", None), dtype=np.float64)
    if att.shape != (n_q, d):
        raise InvalidInstance(f"the oracle returned an output of shape {att.shape}; expected ({n_q}, {d})")
    return att, error


def derivative_bound(k: int, spread: float, n_q: int) -> float:
    """``4 n_q k! c^k`` with ``c = 3 a / (2 pi)``: a bound on ``|f^(k)(lambda)|`` for real lambda.

    Notes
    -----
    THEORY 4.4.  ``f(lambda) = sum_j T_j(lambda)^2`` with ``T_j`` a softmax average of a 0/1
    value column and score rows of spread at most ``a``.  On the strip
    ``|Im lambda| <= 2 pi / (3 a)`` every ``|T_j| <= 1 / cos(pi/3) = 2`` (rotate the
    denominator's summands into a half plane), so ``|f| <= 4 n_q``; Cauchy's estimate on a
    disc of radius ``2 pi / (3 a)`` gives the bound.  ``k = 1, 2`` is AS24 Lemma E.3 with
    explicit constants (``8 n_q c``, ``8 n_q c^2``).

    Examples
    --------
    >>> round(derivative_bound(2, spread=2 * math.pi / 3, n_q=1), 12)
    8.0
    """
    c = 3.0 * spread / (2.0 * math.pi)
    return 4.0 * n_q * math.factorial(k) * c**k


def halve(candidates: np.ndarray, holds_witness: Callable[[np.ndarray], bool]) -> int:
    """The one member left after halving ``candidates`` (known to hold a witness).

    Each round asks ``holds_witness(first_half)`` and keeps that half if yes, the other half
    if not (so the invariant survives): between ``floor(log2 k)`` and ``ceil(log2 k)``
    questions for ``k`` candidates (exactly ``log2 k`` for a power of 2).

    Examples
    --------
    >>> int(halve(np.arange(10), lambda half: 7 in half))
    7
    """
    candidates = np.asarray(candidates)
    while candidates.size > 1:
        half = candidates[: candidates.size // 2]
        candidates = half if holds_witness(half) else candidates[candidates.size // 2 :]
    return int(candidates[0])


def f1_gap(raw: RawAttention) -> Gap:
    """Promise gap of ``f(1) = sum_j T_j^2``: YES ``>= yes_copies t_yes^2``, NO ``<= n_q t_no^2``."""
    return Gap(raw.yes_copies * raw.t_yes**2, raw.n_q * raw.t_no**2, label="f(1) = ||T||^2")


def fprime_oracle(raw: RawAttention, solver: Callable[[Any], Any]) -> Callable[[float], tuple[float, float]]:
    """``lambda -> (f'(lambda), its error)`` from one gradient call at ``X = lambda I`` (THEORY 4.3).

    ``f'(lambda) = 2 tr(dL/dX)`` with ``E = 0``; an entrywise error ``eps`` gives ``2 d eps``.
    A gradient with non-finite entries, or whose trace overflows float64, gives ``f' = NaN``
    (the decision then refuses; ``math.fsum`` would raise on ``inf - inf``).
    """

    def at(lam: float) -> tuple[float, float]:
        instance, layout = embed(raw, lam=lam, meta={"decoder": "quadrature"})
        G, error = read_gradient(solver(instance), instance.d)
        return _finite_fprime(G, layout), fprime_error(error, layout)

    return at


def _finite_fprime(G: np.ndarray, layout: Any) -> float:
    """:func:`~reductions.embedding.fprime`, or NaN when ``G`` or its trace is not finite."""
    if not np.isfinite(G).all():
        return math.nan
    try:
        value = fprime(G, layout)
    except OverflowError:  # math.fsum: the partial sums of a finite diagonal overflow
        return math.nan
    return value if math.isfinite(value) else math.nan

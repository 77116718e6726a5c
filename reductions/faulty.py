"""Deliberately faulty attention oracles: negative controls for the decoders' refusals.

Every numeric decoder of the chain (THEORY 4.5-4.7, 2.4-2.5) trusts one number: the error
bound its oracle states.  It decides only when that bound, propagated to the decision
statistic, is below the margin of the promise gap, and raises
:class:`~reductions.errors.PrecisionError` otherwise.  The wrappers here break an oracle on
purpose so that this behaviour can be tested and demonstrated:

- :func:`float32_oracle`: the exact oracle computing in float32 arithmetic;
- :func:`noisy_oracle`: adds ``+-size`` to every entry of another oracle's answer;
- :func:`nan_oracle`: answers NaN (or states a NaN error bound).

**Honest or lying.**  With ``honest=True`` a wrapper states a bound that covers its fault
(float32's own bound, or the base bound plus ``size``): a decoder must refuse exactly when
that bound, propagated, reaches its margin, and decide correctly below it.  With
``honest=False`` (the default) it states the *base* oracle's float64 bound although its
answer is worse: the decoder cannot see the fault and decides.  The decision is still right
while the undeclared error, propagated, stays below the margin (the gap absorbs it); above,
a wrong verdict becomes possible, and it is the end-to-end checks that catch it: a YES
witness is checked on the source instance (a contradiction raises ``PrecisionError``) and
:func:`reductions.verify` compares the verdict with ground truth.  These are negative
controls: never use them to compute anything.

Each wrapper is a callable ``AttentionInstance -> GradientResult`` (``kind="gradient"``) or
``-> ForwardResult`` (``kind="forward"``), the interface every ``Reduced.lift`` takes; its
result's ``info["fault"]`` records what was done.

Examples
--------
>>> import numpy as np
>>> from attention import AttentionInstance
>>> inst = AttentionInstance.random(n=4, d=2, seed=0)
>>> exact = exact_oracle()(inst)
>>> noisy = noisy_oracle(size=1e-3, seed=0)(inst)
>>> bool(np.allclose(abs(noisy.gradient - exact.gradient), 1e-3, rtol=1e-9, atol=0))
True
>>> noisy.error_bound == exact.error_bound          # lying: the base oracle's bound
True
>>> honest = noisy_oracle(size=1e-3, seed=0, honest=True)(inst)
>>> honest.error_bound == exact.error_bound + 1e-3
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from attention.instance import AttentionInstance
from attention.results import ForwardResult, GradientResult
from reductions.errors import InvalidInstance

Oracle = Callable[[AttentionInstance], Any]

KINDS = ("gradient", "forward")
#: Which field of a result holds the answer, and which bound of ``ErrorBounds`` covers it.
_VALUE_FIELD = {"gradient": "gradient", "forward": "att"}
_NAN_PLACES = ("value", "bound")

__all__ = ["exact_oracle", "float32_oracle", "noisy_oracle", "nan_oracle", "Oracle", "KINDS"]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInstance(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def _kind_of(result: Any) -> str:
    if isinstance(result, GradientResult):
        return "gradient"
    if isinstance(result, ForwardResult):
        return "forward"
    raise InvalidInstance(
        f"the base oracle returned a {type(result).__name__}; expected a GradientResult or ForwardResult"
    )


def _altered(result: Any, value: np.ndarray | None, bound: float, fault: dict[str, Any]) -> Any:
    """``result`` with its answer and stated bound replaced and the fault recorded in ``info``."""
    field = _VALUE_FIELD[_kind_of(result)]
    changes: dict[str, Any] = {"error_bound": float(bound), "info": {**result.info, "fault": fault}}
    if value is not None:
        changes[field] = value
    return dataclasses.replace(result, **changes)


def exact_oracle(kind: str = "gradient") -> Oracle:
    """The float64 exact oracle (:func:`attention.gradient` / :func:`attention.forward`), as a callable."""
    import attention

    call = attention.gradient if _check_kind(kind) == "gradient" else attention.forward
    return lambda instance: call(instance, method="exact")


def float32_oracle(kind: str = "gradient", *, honest: bool = False) -> Oracle:
    """The exact oracle in float32 arithmetic; by default it states the float64 bound (lying).

    Parameters
    ----------
    kind : ``"gradient"`` or ``"forward"``.
    honest : state the float32 computation's own a-priori bound (:mod:`attention.oracle`
        with ``u = 2^-24``) instead of the float64 one.

    Notes
    -----
    A negative control.  The answer is :func:`attention.oracle.gradient` (or ``forward``)
    with ``dtype=np.float32``: inputs rounded to float32, every operation in float32.  Its
    true error is about ``2^29`` times the float64 one; the lying version hides that, so a
    decoder whose margin is below the float32 error can be driven to a wrong verdict.

    Examples
    --------
    >>> from attention import AttentionInstance
    >>> inst = AttentionInstance.random(n=4, d=2, seed=0)
    >>> lying, honest = float32_oracle()(inst), float32_oracle(honest=True)(inst)
    >>> bool(honest.error_bound > 1e6 * lying.error_bound)
    True
    """
    from attention import oracle
    from attention.oracle import error_bounds, magnitudes, precision

    compute = oracle.gradient if _check_kind(kind) == "gradient" else oracle.forward

    def call(instance: AttentionInstance) -> Any:
        result = compute(instance, dtype=np.float32)
        if honest:
            bound = result.error_bound
        else:
            bounds = error_bounds(magnitudes(instance), precision(np.float64))
            bound = bounds.gradient if kind == "gradient" else bounds.att
        return _altered(result, None, bound, {"kind": "float32", "honest": bool(honest)})

    return call


def noisy_oracle(
    base: Oracle | None = None,
    size: float = 0.0,
    seed: int | None = None,
    *,
    honest: bool = False,
    direction: int | None = None,
    kind: str = "gradient",
) -> Oracle:
    """``base``'s answer plus ``+-size`` in every entry; by default it states ``base``'s bound (lying).

    Parameters
    ----------
    base : the oracle to perturb (default: :func:`exact_oracle` of ``kind``).
    size : the injected entrywise error, a finite number ``>= 0``: every entry moves by
        exactly ``size``, so the answer's error is ``size`` up to the base's own.
    seed : seeds ``np.random.default_rng`` once; successive calls draw fresh signs.
    honest : state ``base``'s bound plus ``size`` (a bound that covers the noise).
    direction : ``+1`` or ``-1`` moves every entry the same way; ``None`` (default) draws
        an independent random sign per entry.
    kind : the base's kind when ``base`` is not given.

    Notes
    -----
    A negative control: for a decoder reading a statistic ``t = sum_a w_a G_a`` the noise
    moves ``t`` by at most ``size sum_a |w_a|`` (THEORY 4.6: ``2 d size`` for ``f'``; 4.7:
    ``d' size / mu`` for the one-call probe value).
    """
    size = _check_size(size)
    if direction not in (None, 1, -1):
        raise InvalidInstance(f"direction: expected +1, -1 or None, got {direction!r}")
    base = exact_oracle(kind) if base is None else base
    rng = np.random.default_rng(seed)

    def call(instance: AttentionInstance) -> Any:
        result = base(instance)
        value = np.asarray(getattr(result, _VALUE_FIELD[_kind_of(result)]), dtype=np.float64)
        signs = rng.choice(np.array([-1.0, 1.0]), size=value.shape) if direction is None else float(direction)
        bound = result.error_bound + (size if honest else 0.0)
        fault = {"kind": "noise", "size": size, "honest": bool(honest), "direction": direction}
        return _altered(result, value + size * signs, bound, fault)

    return call


def _check_size(size: Any) -> float:
    try:
        value = float(size)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(size, bool) or not (math.isfinite(value) and value >= 0):
        raise InvalidInstance(f"size: the injected error must be a finite number >= 0, got {size!r}")
    return value


def nan_oracle(
    base: Oracle | None = None, *, where: str = "value", value: float = math.nan, kind: str = "gradient"
) -> Oracle:
    """``base``'s answer with every entry (``where="value"``) or the stated bound (``"bound"``) set to ``value``.

    ``value`` is NaN by default; ``math.inf`` gives the overflow variant.  A negative
    control: every decoder must refuse (``PrecisionError``), never decide on a NaN.

    Examples
    --------
    >>> from attention import AttentionInstance
    >>> res = nan_oracle()(AttentionInstance.random(n=3, d=2, seed=0))
    >>> bool(np.isnan(res.gradient).all()), res.info["fault"]["where"]
    (True, 'value')
    """
    if where not in _NAN_PLACES:
        raise InvalidInstance(f"where: expected one of {', '.join(_NAN_PLACES)}, got {where!r}")
    base = exact_oracle(kind) if base is None else base
    fault = {"kind": "nan", "where": where, "value": repr(float(value))}

    def call(instance: AttentionInstance) -> Any:
        result = base(instance)
        if where == "bound":
            return _altered(result, None, value, fault)
        shape = np.shape(getattr(result, _VALUE_FIELD[_kind_of(result)]))
        return _altered(result, np.full(shape, float(value)), result.error_bound, fault)

    return call

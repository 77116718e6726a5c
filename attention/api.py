"""Method dispatch for the three oracles: ``"exact"`` (float64, blocked), ``"mp"`` (mpmath),
``"fast"`` (polynomial method).  Each method's module is imported on first use."""

from __future__ import annotations

from typing import Any

from attention.errors import InvalidInstance
from attention.instance import AttentionInstance
from attention.results import ForwardResult, GradientResult, LossResult

METHODS = ("exact", "mp", "fast")


def _module(method: str):
    if method == "exact":
        from attention import oracle as mod
    elif method == "mp":
        from attention import oracle_mp as mod
    elif method == "fast":
        from attention import fast as mod
    else:
        raise InvalidInstance(f"method: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return mod


def _check(instance: Any) -> AttentionInstance:
    if not isinstance(instance, AttentionInstance):
        raise InvalidInstance(
            f"instance: expected an AttentionInstance, got {type(instance).__name__}; "
            "build one with AttentionInstance(A1, A2, A3, E, X, Y)"
        )
    return instance


def gradient(instance: AttentionInstance, method: str = "exact", **options: Any) -> GradientResult:
    """``dL/dX`` of the instance's loss with the entrywise error the method guarantees.

    Notes
    -----
    ``dL/dX = (1/d) A1^T p A2`` with ``p = f o q - diag((f o q) 1) f``, ``q = c h^T``,
    ``c = f h - E``, ``h = A3 Y``, ``f = softmax_rows(A1 X A2^T / d)`` (AS24 Lemma C.7,
    with the 1/d factor the paper's Sections B-C leave out).
    """
    return _module(method).gradient(_check(instance), **options)


def forward(instance: AttentionInstance, method: str = "exact", **options: Any) -> ForwardResult:
    """``Att = softmax_rows(A1 X A2^T / d) A3 Y`` with its entrywise error bound."""
    return _module(method).forward(_check(instance), **options)


def loss(instance: AttentionInstance, method: str = "exact", **options: Any) -> LossResult:
    """``L = 0.5 ||Att - E||_F^2`` with its error bound."""
    return _module(method).loss(_check(instance), **options)

"""Attention instances and gradient oracles for the loss of Alman-Song (2024).

``L(X) = 0.5 || softmax_rows(A1 X A2^T / d) A3 Y - E ||_F^2``.  Public interface::

    from attention import AttentionInstance, forward, loss, gradient
    result = gradient(instance, method="exact")   # or "mp", "fast"
    result.gradient, result.error_bound           # d x d matrix, guaranteed entrywise error
"""

from __future__ import annotations

from attention.api import forward, gradient, loss
from attention.errors import FinegrainError, InvalidInstance, PrecisionError, ResourceError
from attention.instance import AttentionInstance
from attention.results import ForwardResult, GradientResult, LossResult

__all__ = [
    "AttentionInstance",
    "forward",
    "loss",
    "gradient",
    "GradientResult",
    "ForwardResult",
    "LossResult",
    "FinegrainError",
    "InvalidInstance",
    "PrecisionError",
    "ResourceError",
]

"""Result records returned by every oracle: the value and the error it guarantees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GradientResult:
    """``dL/dX`` (d x d) with the loss computed on the way and their guaranteed errors.

    ``error_bound`` bounds ``max_ab |gradient_ab - (dL/dX)_ab|`` (entrywise, absolute);
    ``loss_error_bound`` bounds ``|loss - L|``.  ``info`` carries method-specific data
    (block size, digits, rank and degree of the fast method, how the bound was obtained).
    """

    gradient: np.ndarray
    loss: float
    error_bound: float
    loss_error_bound: float
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        """Unpack as ``gradient, error_bound = result``."""
        yield self.gradient
        yield self.error_bound


@dataclass(frozen=True)
class ForwardResult:
    """``Att = softmax_rows(A1 X A2^T / d) A3 Y`` (n x d) with its entrywise error bound."""

    att: np.ndarray
    error_bound: float
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        yield self.att
        yield self.error_bound


@dataclass(frozen=True)
class LossResult:
    """``L = 0.5 ||Att - E||_F^2`` with its error bound."""

    loss: float
    error_bound: float
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        yield self.loss
        yield self.error_bound

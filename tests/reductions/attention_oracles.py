"""Oracles for the reduction tests: the project's exact oracles, and a naive independent reference.

:func:`attention_rows` is the textbook softmax on the full score matrix (float64),
independent of the oracles and decoders under test: the reference for ``T = softmax_rows(S) v``.
"""

from __future__ import annotations

import numpy as np

import attention
from attention.instance import AttentionInstance
from attention.results import ForwardResult, GradientResult


def _softmax(inst: AttentionInstance) -> np.ndarray:
    S = inst.A1 @ inst.X @ inst.A2.T / inst.d
    W = np.exp(S - S.max(axis=1, keepdims=True))
    return W / W.sum(axis=1, keepdims=True)


def forward_oracle(inst: AttentionInstance) -> ForwardResult:
    """The project's exact forward oracle (float64, with its a-priori error bound)."""
    return attention.forward(inst, method="exact")


def gradient_oracle(inst: AttentionInstance) -> GradientResult:
    """The project's exact gradient oracle (float64, with its a-priori error bound)."""
    return attention.gradient(inst, method="exact")


def attention_rows(inst: AttentionInstance) -> np.ndarray:
    """``T = column 0 of softmax_rows(A1 X A2^T / d) A3 Y``, computed naively (independent reference)."""
    return _softmax(inst) @ (inst.A3 @ inst.Y)[:, 0]

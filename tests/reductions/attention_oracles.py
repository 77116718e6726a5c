"""Oracles for the reduction tests: the project's exact oracle when present, else a naive one.

The naive oracle is the textbook formula of THEORY 0.1 on the full score matrix (float64),
with a deliberately generous error statement; it is independent of the decoders under test.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from attention.instance import AttentionInstance
from attention.results import ForwardResult, GradientResult

EPS = np.finfo(np.float64).eps


def _softmax(inst: AttentionInstance) -> np.ndarray:
    S = inst.A1 @ inst.X @ inst.A2.T / inst.d
    W = np.exp(S - S.max(axis=1, keepdims=True))
    return W / W.sum(axis=1, keepdims=True)


def naive_forward(inst: AttentionInstance) -> ForwardResult:
    """``softmax_rows(A1 X A2^T / d) A3 Y`` with error ``64 eps n_k ||A3 Y||_inf``."""
    h = inst.A3 @ inst.Y
    att = _softmax(inst) @ h
    return ForwardResult(att, 64 * EPS * inst.n_k * max(np.abs(h).max(), 1.0), "naive")


def naive_gradient(inst: AttentionInstance) -> GradientResult:
    """``dL/dX = (1/d) A1^T p A2`` (THEORY 0.1) with a generous magnitude-based error statement."""
    f = _softmax(inst)
    h = inst.A3 @ inst.Y
    c = f @ h - inst.E
    q = c @ h.T
    fq = f * q
    p = fq - fq.sum(axis=1, keepdims=True) * f
    G = inst.A1.T @ p @ inst.A2 / inst.d
    scale = (np.abs(inst.A1).T @ (f * np.abs(q)) @ np.abs(inst.A2)).max() / inst.d
    loss = 0.5 * float((c**2).sum())
    bound = 256 * EPS * (inst.n + inst.n_k + inst.d) * scale
    return GradientResult(G, loss, float(bound), 256 * EPS * max(loss, 1.0), "naive")


def _project_oracle_ready() -> bool:
    return importlib.util.find_spec("attention.oracle") is not None


def forward_oracle(inst: AttentionInstance) -> ForwardResult:
    """The project's exact forward oracle if it exists, else :func:`naive_forward`."""
    if _project_oracle_ready():
        import attention

        return attention.forward(inst, method="exact")
    return naive_forward(inst)


def gradient_oracle(inst: AttentionInstance) -> GradientResult:
    """The project's exact gradient oracle if it exists, else :func:`naive_gradient`."""
    if _project_oracle_ready():
        import attention

        return attention.gradient(inst, method="exact")
    return naive_gradient(inst)


def attention_rows(inst: AttentionInstance) -> np.ndarray:
    """``T = column 0 of the forward output`` computed naively (independent reference)."""
    return naive_forward(inst).att[:, 0]

"""OV -> attention forward (AAttC), Construction S ("one sentinel key"): constant precision.

Pad the sides to ``n = max(n_U, n_V)`` vectors.  Same encoding as Construction H
(``a''_i = (a_i, 1 - a_i)``, ``b''_j = (1 - b_j, 1_m)``, ``u = 1_{2m}``), but a single
sentinel key instead of ``n`` dummy keys:

    queries  q_i = sqrt(s) a''_i (i < n),  q_n = q_0        (n + 1 tokens, square)
    keys     k_j = sqrt(s) b''_j (j < n),  k_n = sqrt(s) u  (the sentinel, score s m)
    values   V = [v, 0, ..., 0],   v = (1_n ; 0)
    T_i = Z_i / (Z_i + 1),   Z_i = sum_j exp(-s <a_i, b_j>)

**Lemma** (THEORY 2.5).  A row with an orthogonal partner has ``Z_i >= 1``, ``T_i >= 1/2``;
a row without has ``T_i <= Z_i <= n e^{-s}``.  With ``s = ln(4n)``: YES iff
``max_i T_i > 3/8``; any estimate with ``||T^ - T||_inf < 1/8`` decides correctly
(constant precision).  Witness: a row above the threshold, then scan for its partner.

Sizes and bounds: ``n + 1`` tokens, ``d = 2m``, scores in ``[0, s m]``, raw entries
``B_raw = sqrt(ln(4n))``, normalised ``B = sqrt(2m ln(4n))``, precision ``1/8``.  It lacks
Lemma E.2's "half of each row at the maximum" (Lemma E.3 uses it; no decoder here needs
it), and its YES rows can have ``T_i`` near 1.  One oracle call.
"""

from __future__ import annotations

import math

import numpy as np

from reductions.embedding import RawAttention, integer_scale, padded_sides
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_attention_h import forward_reduction, orthogonal_partner, ov_decoder
from reductions.rules.ov_to_maxip import maxip_encoding

REFERENCE = (
    "Keles-Wijewardena-Hegde (ALT 2023) style OV -> attention with one normalising key; "
    "THEORY 2.5 (Construction S)"
)


def scale_decision(n: int) -> float:
    """``s = ln(4n)``: NO rows have ``T_i <= 1/4`` (forward decision)."""
    return math.log(4 * n)


def scale_quadrature(n: int) -> float:
    """``s = ln(8 n^{3/2})``: NO gives ``f(1) <= 1/32`` (decoder (b), THEORY 4.6)."""
    return math.log(8 * n**1.5)


def sentinel(
    Aq: np.ndarray, Bk: np.ndarray, u: np.ndarray, s: float, *, t_no: float, max_score: float, meta: dict
) -> RawAttention:
    """The S shape: queries ``[Aq; Aq[0]]``, keys ``[Bk; u]``, ``v = (1_n; 0)``.

    ``t_yes = 1/2`` assumes a witness score is at least the sentinel's; the caller states
    ``t_no`` (THEORY 2.5: ``n e^{-s}``; 2.6: ``n e^{-s eps t}``).
    """
    n = Aq.shape[0]
    Qp = np.concatenate([Aq, Aq[:1]], axis=0).astype(np.float64)
    Kp = np.concatenate([Bk, u[None, :]], axis=0).astype(np.float64)
    v = np.concatenate([np.ones(n), np.zeros(1)])
    return RawAttention(
        Qp, Kp, v, s, rows=n, t_yes=0.5, t_no=t_no, yes_copies=1,
        max_score=max_score, spread=max_score, meta=meta,
    )


def construction_s(U: np.ndarray, V: np.ndarray, s: float, *, integer: bool = False) -> RawAttention:
    """Construction S on equal-size sides ``U, V`` (``n x m``) at scale ``s``.

    ``integer=True`` raises ``s`` to ``ceil(sqrt(s))^2`` (integer ``Q, K``; THEORY 2.7).

    Examples
    --------
    >>> raw = construction_s(np.array([[1, 0], [0, 1]]), np.array([[0, 1], [1, 1]]), s=1.0)
    >>> raw.scores().tolist()
    [[2.0, 1.0, 2.0], [1.0, 1.0, 2.0], [2.0, 1.0, 2.0]]
    """
    n, m = U.shape
    s = integer_scale(s) if integer else float(s)
    Aq, Bk = maxip_encoding(OV(U, V))
    meta = {"construction": "S", "m": m, "n_ov": n}
    return sentinel(Aq, Bk, np.ones(2 * m), s, t_no=n * math.exp(-s), max_score=s * m, meta=meta)


@reduction(
    source="ov",
    target="attention",
    reference=REFERENCE,
    formulas={
        "n": "Max(n_U, n_V, 1) + 1",
        "n_k": "Max(n_U, n_V, 1) + 1",
        "d": "2*m",
        "B": "sqrt(2*m*log(4*Max(n_U, n_V, 1)))",
    },
    default=True,
)
def reduce(ov: OV) -> Reduced:
    """OV -> AAttC by Construction S: one sentinel key, constant precision 1/8, one forward call.

    Parameters
    ----------
    ov : the OV instance (sides of any sizes; the smaller is padded by repeating a vector).

    Returns
    -------
    Reduced
        ``target``: an :class:`~attention.AttentionInstance` with ``meta["problem"] =
        "attention"``; ``lift(forward_oracle)`` returns an orthogonal pair or ``None``.

    Notes
    -----
    THEORY 2.5 (module docstring): YES rows ``T_i >= 1/2``, NO rows ``T_i <= n e^{-s} = 1/4``;
    threshold ``3/8``, margin ``1/8``.  Sizes ``n + 1`` tokens, ``d = 2m``,
    ``B = sqrt(2m ln(4n))``, ``B_raw = sqrt(ln(4n))``, max score ``m ln(4n)``
    (``n = max(n_U, n_V)``).  An empty side gives NO without oracle calls.

    Examples
    --------
    >>> red = reduce(OV([[1, 0], [0, 1]], [[1, 1], [1, 0]]))
    >>> red.target.n, red.target.d, round(red.params["precision"], 12)
    (3, 4, 0.125)
    """
    U, V, empty = padded_sides(ov.U, ov.V)
    raw = construction_s(U, V, scale_decision(U.shape[0]))
    return forward_reduction(ov, raw, empty, orthogonal_partner(U, V), ov_decoder(ov))

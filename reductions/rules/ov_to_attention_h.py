"""OV -> attention forward (AAttC), Construction H ("half dummy keys"), shaped like AS24 Lemma E.2.

Pad the sides to ``n = max(n_U, n_V)`` vectors (repeat one).  With the exact-gap encoding
``a''_i = (a_i, 1 - a_i)``, ``b''_j = (1 - b_j, 1_m)``, ``u = 1_{2m}`` (``<a'', b''> = m - <a, b>``,
``<a'', u> = m``) and a scale ``s``:

    queries  q_i = q_{n+i} = sqrt(s) a''_i                    (2n tokens, d = 2m)
    keys     k_j = sqrt(s) b''_j,  k_{n+j} = sqrt(s) u        (n real, n dummy)
    values   V = [v, 0, ..., 0],   v = (1_n ; 0_n)
    scores   S_{i,j} = s (m - <a_i, b_j>),   S_{i,n+j} = s m  (the row maximum)

so every row has at least half of its entries at the maximum ``s m``, and

    T_i = (softmax_rows(S) v)_i = Z_i / (Z_i + n),   Z_i = sum_j exp(-s <a_i, b_j>).

**Lemma** (THEORY 2.4).  If ``a_i`` has an orthogonal partner then ``Z_i >= 1`` and
``T_i >= 1/(n+1)``; if not, ``Z_i <= n e^{-s}`` and ``T_i <= e^{-s}``.  With
``s = ln(4(n+1))``: the OV instance is YES iff ``max_i T_i > 5/(8(n+1))``, and any estimate
with ``||T^ - T||_inf < 3/(8(n+1))`` decides correctly.  Witness: a row above the threshold
has an orthogonal partner; scan ``j`` (``O(n m)``).

Sizes and bounds: ``n = n_k = 2 max(n_U, n_V)`` tokens, ``d = 2m``, scores in ``[0, s m]``
(max score ``s m = O(log^2 n)``, the ``B`` of Lemma E.2), raw entries
``B_raw = sqrt(s) = sqrt(ln(4(n+1)))``, normalised entries
``B = sqrt(d) sqrt(s) = sqrt(2m ln(4(n+1)))``; precision (the oracle's entrywise error
must be below) ``3/(8(n+1))``.  One oracle call.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from reductions.decoders.forward import decide_forward, row_gap
from reductions.embedding import RawAttention, embed, integer_scale, original_index, padded_sides
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_maxip import maxip_encoding

REFERENCE = (
    "AS24 Lemma E.2 (= AS23 Lemma 4.7) instance shape; exact-gap encoding of THEORY 1.5; "
    "THEORY 2.4 (Construction H)"
)


def scale_decision(n: int) -> float:
    """``s = ln(4(n+1))``: NO rows have ``T_i <= 1/(4(n+1))`` (forward decision)."""
    return math.log(4 * (n + 1))


def scale_gradient(n: int) -> float:
    """``s = ln(8 n (n+1))``: the slack the gradient decoders need (THEORY 4.6, 4.7)."""
    return math.log(8 * n * (n + 1))


def half_dummy(
    Aq: np.ndarray, Bk: np.ndarray, u: np.ndarray, s: float, *, t_yes: float, t_no: float, max_score: float,
    meta: dict,
) -> RawAttention:
    """The H shape: queries ``[Aq; Aq]``, keys ``[Bk; u ... u]``, ``v = (1_n; 0_n)``.

    The caller states the row promise ``t_yes``, ``t_no`` (THEORY 2.4: ``1/(n+1)``,
    ``e^{-s}``; 2.6: ``e^{-st}/(n+1)``, ``e^{-s(1+eps)t}``); ``max_score`` is the dummy's
    score, which must be every row's maximum.
    """
    n = Aq.shape[0]
    Qp = np.concatenate([Aq, Aq], axis=0).astype(np.float64)
    Kp = np.concatenate([Bk, np.repeat(u[None, :], n, axis=0)], axis=0).astype(np.float64)
    v = np.concatenate([np.ones(n), np.zeros(n)])
    return RawAttention(
        Qp, Kp, v, s, rows=n, t_yes=t_yes, t_no=t_no, yes_copies=2,
        max_score=max_score, spread=max_score, meta=meta,
    )


def construction_h(U: np.ndarray, V: np.ndarray, s: float, *, integer: bool = False) -> RawAttention:
    """Construction H on equal-size sides ``U, V`` (``n x m``) at scale ``s``.

    ``integer=True`` raises ``s`` to ``ceil(sqrt(s))^2`` so that ``Q, K`` have integer
    entries (THEORY 2.7; a larger ``s`` only widens the gap).

    Examples
    --------
    >>> raw = construction_h(np.array([[1, 0]]), np.array([[0, 1]]), s=2.0)
    >>> raw.scores().tolist(), raw.v.tolist()
    ([[4.0, 4.0], [4.0, 4.0]], [1.0, 0.0])
    """
    n, m = U.shape
    s = integer_scale(s) if integer else float(s)
    Aq, Bk = maxip_encoding(OV(U, V))
    meta = {"construction": "H", "m": m, "n_ov": n}
    return half_dummy(
        Aq, Bk, np.ones(2 * m), s, t_yes=1.0 / (n + 1), t_no=math.exp(-s), max_score=s * m, meta=meta
    )


def orthogonal_partner(U: np.ndarray, V: np.ndarray) -> Callable[[int], int | None]:
    """``i -> `` the first ``j`` with ``<U[i], V[j]> = 0`` (or ``None``): the witness scan."""
    Vi = np.asarray(V, dtype=np.int64)

    def partner(i: int) -> int | None:
        hits = np.flatnonzero(Vi @ np.asarray(U[i], dtype=np.int64) == 0)
        return int(hits[0]) if hits.size else None

    return partner


def attention_params(instance: Any, raw: RawAttention, precision: float) -> dict[str, Any]:
    """``Reduced.params`` of an attention/gradient target: sizes, both entry bounds, scale, precision."""
    return {
        "n": instance.n,
        "n_k": instance.n_k,
        "d": instance.d,
        "B": instance.B,
        "B_raw": raw.B_raw,
        "max_score": raw.max_score,
        "s": raw.s,
        "precision": precision,
    }


def forward_reduction(source: Any, raw: RawAttention, empty: bool, partner: Callable[[int], int | None],
                      decode: Callable[[int, int], tuple[int, int]]) -> Reduced:
    """The Reduced of an X -> attention rule: one forward call, ``max T`` decision, witness scan."""
    instance, _ = embed(raw, problem="attention")
    red = Reduced(source, instance, lift=lambda solver: None,
                  params=attention_params(instance, raw, row_gap(raw).margin))

    def lift(solver: Callable[[Any], Any]) -> tuple[int, int] | None:
        if empty:
            red.stats.update(oracle_calls=0, statistic=None)
            return None
        found = decide_forward(solver, instance, raw, partner, red.stats)
        return None if found is None else decode(*found)

    red.lift = lift
    return red


def ov_decoder(ov: OV) -> Callable[[int, int], tuple[int, int]]:
    """Padded indices -> original indices of ``ov``."""
    return lambda i, j: (original_index(i, ov.n_U), original_index(j, ov.n_V))


@reduction(
    source="ov",
    target="attention",
    reference=REFERENCE,
    formulas={
        "n": "2*Max(n_U, n_V, 1)",
        "n_k": "2*Max(n_U, n_V, 1)",
        "d": "2*m",
        "B": "sqrt(2*m*log(4*(Max(n_U, n_V, 1) + 1)))",
    },
)
def reduce(ov: OV) -> Reduced:
    """OV -> AAttC by Construction H: half of every score row at the maximum, one forward call.

    Parameters
    ----------
    ov : the OV instance (sides of any sizes; the smaller is padded by repeating a vector).

    Returns
    -------
    Reduced
        ``target``: an :class:`~attention.AttentionInstance` with ``meta["problem"] =
        "attention"`` (``A1 = sqrt(d) Q``, ``A2 = sqrt(d) K``, ``A3 = V``, ``X = Y = I``,
        ``E = 0``).  ``lift(forward_oracle)`` returns an orthogonal pair or ``None``;
        ``params``: ``n, n_k, d, B`` (= ``instance.B``), ``B_raw``, ``max_score``, ``s``,
        ``precision``.

    Notes
    -----
    THEORY 2.4 (module docstring): ``T_i = Z_i/(Z_i + n)``; YES rows ``T_i >= 1/(n+1)``, NO
    rows ``T_i <= e^{-s} = 1/(4(n+1))``; threshold ``5/(8(n+1))``, margin ``3/(8(n+1))``.
    Sizes ``2n`` tokens, ``d = 2m``, ``B = sqrt(2m ln(4(n+1)))``, ``B_raw = sqrt(ln(4(n+1)))``,
    max score ``m ln(4(n+1))``.  An empty side gives NO without oracle calls.  The decoder
    refuses (``PrecisionError``) when the oracle's stated error is not below the margin.

    Examples
    --------
    >>> red = reduce(OV([[1, 0], [0, 1]], [[1, 1], [1, 0]]))
    >>> red.target.n, red.target.d, round(red.params["precision"], 4)
    (4, 4, 0.125)
    """
    U, V, empty = padded_sides(ov.U, ov.V)
    raw = construction_h(U, V, scale_decision(U.shape[0]))
    return forward_reduction(ov, raw, empty, orthogonal_partner(U, V), ov_decoder(ov))

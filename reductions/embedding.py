"""Attention instances built by the lower-bound reductions, and their AAttLGC embedding.

A reduction from OV (or Gap-ANN) first builds a :class:`RawAttention`: queries ``Q``, keys
``K`` in the *raw* score convention ``S = Q K^T`` (AS24 Definition E.1), one 0/1 value
column ``v``, and the promise the construction guarantees on the row outputs
``T = softmax_rows(S) v``.  :func:`embed` turns it into an
:class:`~attention.AttentionInstance` in the *normalised* convention the oracles use
(``S = A1 X A2^T / d'``, AS24 Definitions 1.2 and 1.4), optionally with probe columns.

Entry bounds are reported in both conventions: ``B_raw = max(||Q||_inf, ||K||_inf)``
(Lemma E.2's ``||Q||, ||K||``) and ``B = max(||A1 X||_inf, ||A2||_inf)`` (Definition 1.4;
``= sqrt(d') B_raw`` for the scaled embedding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attention.instance import AttentionInstance
from reductions.errors import InvalidInstance


@dataclass(frozen=True, eq=False)
class RawAttention:
    """A raw-convention attention instance ``S = s Qp Kp^T``, values ``v``, and its promise.

    Parameters
    ----------
    Qp, Kp : (n_q, d), (n_k, d) arrays, the score patterns; ``Q = sqrt(s) Qp``, ``K = sqrt(s) Kp``.
    v : (n_k,) 0/1 array, the only nonzero value column.
    s : float > 0, the scale.
    rows : the real queries: rows ``0 .. rows-1`` carry the answer (the others are copies).
    t_yes, t_no : promise on ``T_i = (softmax_rows(S) v)_i`` for ``i < rows``: a row with a
        witness has ``T_i >= t_yes``, a row without one ``T_i <= t_no``.
    yes_copies : how many rows of ``S`` repeat a witness row (H: 2, S: at least 1).
    max_score : ``max_jk S_jk``.
    spread : a bound on every row's ``max_k S_jk - min_k S_jk`` (the ``a`` of THEORY 4.4).
    meta : JSON-serialisable description (construction, parameters).
    """

    Qp: np.ndarray
    Kp: np.ndarray
    v: np.ndarray
    s: float
    rows: int
    t_yes: float
    t_no: float
    yes_copies: int
    max_score: float
    spread: float
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.Qp.ndim != 2 or self.Kp.ndim != 2 or self.Qp.shape[1] != self.Kp.shape[1]:
            raise InvalidInstance(f"Qp, Kp: shapes {self.Qp.shape}, {self.Kp.shape} do not share d")
        if self.v.shape != (self.Kp.shape[0],):
            raise InvalidInstance(f"v: shape {self.v.shape}, expected ({self.Kp.shape[0]},)")
        if not (math.isfinite(self.s) and self.s > 0):
            raise InvalidInstance(f"s: the scale must be a positive finite number, got {self.s!r}")

    @property
    def n_q(self) -> int:
        return self.Qp.shape[0]

    @property
    def n_k(self) -> int:
        return self.Kp.shape[0]

    @property
    def d(self) -> int:
        return self.Qp.shape[1]

    @property
    def Q(self) -> np.ndarray:
        return math.sqrt(self.s) * self.Qp

    @property
    def K(self) -> np.ndarray:
        return math.sqrt(self.s) * self.Kp

    @property
    def B_raw(self) -> float:
        """``max(||Q||_inf, ||K||_inf)``: the entry bound in the raw convention."""
        return math.sqrt(self.s) * float(max(np.abs(self.Qp).max(), np.abs(self.Kp).max()))

    def scores(self) -> np.ndarray:
        """``S = Q K^T`` (``n_q x n_k``; for tests and small instances)."""
        return self.s * (self.Qp @ self.Kp.T)

    def f0(self) -> float:
        """``f(0) = n_q (mean_k v_k)^2``: at lambda = 0 every row of softmax is uniform."""
        return self.n_q * (float(self.v.sum()) / self.n_k) ** 2

    def derivatives(self, lam: float) -> np.ndarray:
        """``[f, f', f'', f''']`` at ``lambda``, ``f = ||softmax_rows(lambda S) v||^2`` (a reference).

        Notes
        -----
        Under row ``j``'s softmax distribution ``P_j``, ``T_j = E v`` and its lambda-derivatives
        are joint cumulants: ``T' = E[v~ S~]``, ``T'' = E[v~ S~^2]``,
        ``T''' = E[v~ S~^3] - 3 E[v~ S~] E[S~^2]`` (``~`` = centred).  Then ``f' = 2 sum T T'``,
        ``f'' = 2 sum (T'^2 + T T'')``, ``f''' = 2 sum (3 T' T'' + T T''')``.  Forms the
        ``n_q x n_k`` score matrix: for small instances, audits and tests.

        Examples
        --------
        >>> raw = RawAttention(np.eye(2), np.eye(2), np.array([1.0, 0.0]), s=1.0, rows=2,
        ...                    t_yes=0.5, t_no=0.1, yes_copies=1, max_score=1.0, spread=1.0)
        >>> f, f1, f2, f3 = raw.derivatives(0.0)     # T_1 = e^l/(e^l+1), T_2 = 1/(e^l+1)
        >>> float(f), float(f1), float(f2)
        (0.5, 0.0, 0.25)
        """
        S = self.scores()
        W = np.exp(lam * (S - S.max(axis=1, keepdims=True)))
        P = W / W.sum(axis=1, keepdims=True)
        T = P @ self.v
        St = S - (P * S).sum(axis=1, keepdims=True)
        vt = self.v[None, :] - T[:, None]
        d1 = (P * vt * St).sum(axis=1)
        d2 = (P * vt * St**2).sum(axis=1)
        d3 = (P * vt * St**3).sum(axis=1) - 3 * d1 * (P * St**2).sum(axis=1)
        return np.array([
            (T**2).sum(),
            2 * (T * d1).sum(),
            2 * (d1**2 + T * d2).sum(),
            2 * (3 * d1 * d2 + T * d3).sum(),
        ])


@dataclass(frozen=True)
class Layout:
    """Columns of an embedded instance: ``d`` main, ``r1`` query probes, ``r2`` key probes."""

    d: int
    r1: int = 0
    r2: int = 0
    integer: bool = False

    @property
    def total(self) -> int:
        """``d' = d + r1 + r2``."""
        return self.d + self.r1 + self.r2

    @property
    def main(self) -> slice:
        return slice(0, self.d)

    @property
    def query_probes(self) -> slice:
        return slice(self.d, self.d + self.r1)

    @property
    def key_probes(self) -> slice:
        return slice(self.d + self.r1, self.total)


def integer_scale(s_min: float) -> float:
    """``beta^2`` for ``beta = ceil(sqrt(s_min))``: the integer-entry option (THEORY 2.7).

    Examples
    --------
    >>> integer_scale(8.32)
    9.0
    """
    beta = math.ceil(math.sqrt(s_min) - 1e-12)
    return float(max(beta, 1) ** 2)


def _probe(value: np.ndarray | None, rows: int, name: str) -> np.ndarray:
    if value is None:
        return np.zeros((rows, 0))
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise InvalidInstance(f"{name}: expected {rows} rows (one per token), got shape {arr.shape}")
    return arr


def embed(
    raw: RawAttention,
    *,
    lam: float = 1.0,
    e: np.ndarray | None = None,
    R: np.ndarray | None = None,
    Z: np.ndarray | None = None,
    integer: bool = False,
    problem: str = "gradient",
    meta: dict[str, Any] | None = None,
) -> tuple[AttentionInstance, Layout]:
    """The AAttLGC instance of ``raw`` at ``X = lambda I``, with optional probe columns.

    Parameters
    ----------
    raw : the raw-convention instance.
    lam : the point ``lambda``; the scores of the result are ``lambda S``.
    e : (n_q,) target column: ``E[:, 0] = e``, other columns 0 (default ``E = 0``).
    R : (n_q, r1) query probes: columns of ``A1`` whose ``A2`` columns are 0.
    Z : (n_k, r2) key probes: columns of ``A2`` whose ``A1`` columns are 0.
    integer : integer entries: ``A1 = beta Qp``, ``A2 = beta Kp``, ``X = lambda d' I``
        (needs ``sqrt(s) = beta`` an integer and integer patterns).  Default: the scaled form
        ``A1 = sqrt(d') Q``, ``A2 = sqrt(d') K``, ``X = lambda I``.
    problem : ``"gradient"`` or ``"attention"`` (recorded in ``meta["problem"]``).

    Returns
    -------
    (AttentionInstance, Layout)
        ``A3 = [v, 0, ...]``, ``Y = I``.

    Notes
    -----
    THEORY 4.3 and 4.7.  Scores ``A1 X A2^T / d' = lambda Q K^T``: the probe columns meet
    zeros on the other side, so they leave the scores unchanged, and
    ``dL/dX[P, P] = dL/dX[W, W] = 0`` (``dL/dX = (1/d') A1^T p A2``).  With ``E = 0``,
    ``L(lambda) = f(lambda) / 2`` and ``f'(lambda) = 2 tr(dL/dX)`` (scaled) or
    ``2 d' tr(dL/dX)`` (integer); see :func:`fprime`.  The probe block is
    ``dL/dX[R, Z] = (1/d') R^T diag((T - e) o (1 - T)) f Z`` for ``Z`` supported on
    ``{k : v_k = 1}`` (THEORY 0.2).  Entry bound ``B = sqrt(d') B_raw`` (scaled; probes of
    size <= that) or ``max(lambda d' beta, beta) ||patterns||`` (integer).

    Examples
    --------
    >>> raw = RawAttention(np.eye(2), np.eye(2), np.array([1.0, 0.0]), s=4.0, rows=2,
    ...                    t_yes=0.5, t_no=0.1, yes_copies=1, max_score=4.0, spread=4.0)
    >>> inst, layout = embed(raw, R=np.ones(2))
    >>> (inst.d, layout.total, inst.B)
    (3, 3, 3.4641016151377544)
    >>> bool(np.allclose(inst.A1 @ inst.X @ inst.A2.T / inst.d, raw.scores()))
    True
    """
    Rm, Zm = _probe(R, raw.n_q, "R"), _probe(Z, raw.n_k, "Z")
    layout = Layout(raw.d, Rm.shape[1], Zm.shape[1], integer)
    dt = layout.total
    if integer:
        beta = round(math.sqrt(raw.s))
        if beta * beta != raw.s or not (_is_integer(raw.Qp) and _is_integer(raw.Kp)):
            raise InvalidInstance(
                f"integer=True needs sqrt(s) and the patterns to be integers (s = {raw.s}); "
                "build the construction with integer=True"
            )
        factor, X = float(beta), lam * dt * np.eye(dt)
    else:
        factor, X = math.sqrt(dt * raw.s), lam * np.eye(dt)
    A1 = np.concatenate([factor * raw.Qp, Rm, np.zeros((raw.n_q, Zm.shape[1]))], axis=1)
    A2 = np.concatenate([factor * raw.Kp, np.zeros((raw.n_k, Rm.shape[1])), Zm], axis=1)
    A3 = np.zeros((raw.n_k, dt))
    A3[:, 0] = raw.v
    E = np.zeros((raw.n_q, dt))
    if e is not None:
        E[:, 0] = np.asarray(e, dtype=np.float64)
    info = {
        **raw.meta,
        **(meta or {}),
        "problem": problem,
        "lambda": float(lam),
        "s": raw.s,
        "embedding": "integer" if integer else "scaled",
        "layout": [layout.d, layout.r1, layout.r2],
    }
    return AttentionInstance(A1, A2, A3, E, X, np.eye(dt), meta=info), layout


def _is_integer(M: np.ndarray) -> bool:
    return bool(np.all(M == np.round(M)))


def fprime(G: np.ndarray, layout: Layout) -> float:
    """``f'(lambda) = 2 tr(dL/dX)`` over the main columns (``2 d' tr`` for the integer form).

    Probe columns contribute exactly 0 to the trace, so only the ``d`` main diagonal entries
    are read: an oracle error ``eps`` per entry gives ``f'`` within ``2 d eps``
    (``2 d d' eps`` integer) -- see :func:`fprime_error`.
    """
    diag = np.diagonal(G)[layout.main]
    return 2.0 * (layout.total if layout.integer else 1) * math.fsum(diag.tolist())


def fprime_error(error: float, layout: Layout) -> float:
    """The error of :func:`fprime` when every gradient entry has error ``<= error``."""
    return 2.0 * layout.d * (layout.total if layout.integer else 1) * error


def padded_sides(U: np.ndarray, V: np.ndarray, *, far: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """Equal-size sides ``(U', V', empty)``: the smaller side padded by repeating its row 0.

    Repeating a vector adds no new pair, so the answer is unchanged (THEORY 1.3); an index
    ``i >= n_U`` of ``U'`` decodes to 0 (likewise for V).  If a side is empty the answer is
    NO: ``empty`` is true and the sides are ``max(n_U, n_V, 1)`` rows of ones against rows of
    ones (no pair orthogonal), or against rows of zeros when ``far`` (every distance is the
    dimension), so the target still has the size the formulas state.

    Examples
    --------
    >>> U2, V2, empty = padded_sides(np.array([[1, 0]]), np.array([[0, 1], [1, 1]]))
    >>> U2.tolist(), empty
    ([[1, 0], [1, 0]], False)
    """
    n = max(U.shape[0], V.shape[0], 1)
    if U.shape[0] == 0 or V.shape[0] == 0:
        ones = np.ones((n, U.shape[1]), dtype=np.uint8)
        return ones, (1 - ones) if far else ones.copy(), True
    return _repeat_first(U, n), _repeat_first(V, n), False


def _repeat_first(M: np.ndarray, n: int) -> np.ndarray:
    if M.shape[0] == n:
        return np.asarray(M)
    return np.concatenate([M, np.repeat(M[:1], n - M.shape[0], axis=0)], axis=0)


def original_index(i: int, size: int) -> int:
    """The original index of padded row ``i`` (:func:`padded_sides` repeats row 0)."""
    return int(i) if int(i) < size else 0

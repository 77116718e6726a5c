"""k-SAT -> Orthogonal Vectors by split and list (Williams 2005).

Split the N variables into ``V1 = x_1..x_N1`` (``N1 = ceil(N/2)``) and ``V2 = x_N1+1..x_N``.
For each assignment ``alpha`` of V1, ``U[alpha][c] = 1`` iff no literal of clause ``C_c`` on
a V1 variable is true under ``alpha``; ``V[beta]`` likewise for V2.  Clause c is satisfied by
``(alpha, beta)`` iff ``U[alpha][c] = 0`` or ``V[beta][c] = 0``, so the formula is satisfied
by ``(alpha, beta)`` iff ``<U[alpha], V[beta]> = 0``: the orthogonal pairs *are* the models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pysat.formula import CNF

from reductions.errors import InvalidInstance
from reductions.guards import require_ksat_side_limit
from reductions.problems.cnf import check_cnf
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction

#: Largest side built (2^MAX_SIDE_BITS vectors); beyond it the OV instance does not fit in memory.
MAX_SIDE_BITS = 26
_BLOCK = 1 << 16


def split_point(N: int) -> int:
    """``N1 = ceil(N/2)``: the number of variables on the U side."""
    return (N + 1) // 2


def clause_literals(cnf: CNF) -> tuple[int, list[list[int]]]:
    """``(N, clauses)`` of a well-formed formula (literals nonzero integers with ``|lit| <= N``).

    ``N`` is ``cnf.nv``, the DIMACS header's variable count when the formula was read by
    :mod:`reductions.problems.cnf` (variables in no clause count).
    """
    check_cnf(cnf)
    return int(cnf.nv), [[int(lit) for lit in clause] for clause in cnf.clauses]


def side_vectors(clauses: list[list[int]], first: int, count: int) -> np.ndarray:
    """The ``2^count x m`` 0/1 matrix of one side (variables ``first .. first+count-1``).

    Row ``r`` is the assignment with ``x_(first+t) = (r >> t) & 1``; entry ``[r, c]`` is 1 iff
    no literal of clause ``c`` on these variables is true under it.
    """
    m = max(len(clauses), 1)
    pos = np.zeros(m, dtype=np.int64)
    neg = np.zeros(m, dtype=np.int64)
    for c, clause in enumerate(clauses):
        for lit in clause:
            t = abs(lit) - first
            if 0 <= t < count:
                if lit > 0:
                    pos[c] |= 1 << t
                else:
                    neg[c] |= 1 << t
    rows = 1 << count
    out = np.empty((rows, m), dtype=np.uint8)
    for start in range(0, rows, _BLOCK):
        idx = np.arange(start, min(rows, start + _BLOCK), dtype=np.int64)[:, None]
        satisfied = ((idx & pos) != 0) | ((~idx & neg) != 0)
        out[start : start + idx.shape[0]] = ~satisfied
    out[:, len(clauses) :] = 0  # the padding coordinate of a formula without clauses
    return out


def pair_to_model(pair: tuple[int, int], N: int) -> list[int]:
    """The assignment ``(alpha_i, beta_j)`` as DIMACS literals ``[+-1, ..., +-N]``.

    Examples
    --------
    >>> pair_to_model((0b10, 0b1), 3)   # x1 = 0, x2 = 1 (U side), x3 = 1 (V side)
    [-1, 2, 3]
    """
    i, j = (int(x) for x in pair)
    N1 = split_point(N)
    bits = [(i >> t) & 1 for t in range(N1)] + [(j >> t) & 1 for t in range(N - N1)]
    return [v if bit else -v for v, bit in enumerate(bits, start=1)]


def model_to_pair(model: list[int], N: int) -> tuple[int, int]:
    """Inverse of :func:`pair_to_model` (a model's literals in any order, all N variables)."""
    value = {abs(int(lit)): int(lit) > 0 for lit in model}
    missing = [v for v in range(1, N + 1) if v not in value]
    if missing:
        raise InvalidInstance(f"model: no value for variable(s) {missing[:5]}")
    N1 = split_point(N)
    i = sum(1 << (v - 1) for v in range(1, N1 + 1) if value[v])
    j = sum(1 << (v - 1 - N1) for v in range(N1 + 1, N + 1) if value[v])
    return i, j


@reduction(
    source="ksat",
    target="ov",
    reference="R. Williams, A new algorithm for optimal 2-constraint satisfaction and its "
    "implications, TCS 348 (2005); THEORY 1.3",
    formulas={"n_U": "2**ceiling(N/2)", "n_V": "2**floor(N/2)", "m": "Max(m, 1)"},
    default=True,
)
def reduce(cnf: CNF) -> Reduced:
    """k-SAT -> OV by split and list: orthogonal pairs are exactly the models (Williams 2005).

    Parameters
    ----------
    cnf : pysat.formula.CNF
        ``N = cnf.nv`` variables (the header's count: variables in no clause count),
        ``m`` clauses of any width.

    Returns
    -------
    Reduced
        ``target`` an :class:`~reductions.problems.ov.OV` instance; ``lift(solve_ov)``
        returns a model (DIMACS literals for all N variables) or ``None``.

    Notes
    -----
    THEORY 1.3 (Williams 2005, the step from SETH to the OV hypothesis).  ``N1 = ceil(N/2)``;
    row ``i`` of U is the assignment ``x_v = (i >> (v-1)) & 1`` of ``x_1..x_N1``, row ``j``
    of V the assignment ``x_(N1+1+t) = (j >> t) & 1`` of the rest.  ``U[i][c] = 1`` iff no
    V1-literal of clause c is true, so ``<U[i], V[j]> = 0`` iff ``(i, j)`` satisfies every
    clause: the map pair -> model is a bijection between orthogonal pairs and models.

    Sizes: ``n_U = 2^ceil(N/2)``, ``n_V = 2^floor(N/2)``, dimension ``max(m, 1)``; time
    ``O((n_U + n_V) m)`` (vectorised over assignments, 64 K rows per block).

    Edge cases.  An empty clause gives a coordinate equal to 1 in every vector: no pair is
    orthogonal, as the formula is unsatisfiable.  A tautological clause keeps its
    coordinate, which is 0 in every vector of the side holding its variable, so it never
    blocks a pair (THEORY drops such clauses; keeping them keeps the dimension exactly
    ``m``, which the size formulas state).  Variables in no clause take both values, so
    each model is counted once per assignment of them, as pairs are.  A formula without
    clauses gets one all-zero coordinate (OV needs ``m >= 1``).  Decoding is deterministic:
    every variable, free or not, is read from the pair's indices.

    References
    ----------
    R. Williams, TCS 348 (2005) 357-365; AS24 Theorem 1.5 starts from it.

    Examples
    --------
    >>> red = reduce(CNF(from_clauses=[[1, -2], [2, 3]]))
    >>> red.target.U.tolist(), red.target.V.tolist()
    ([[0, 1], [0, 1], [1, 0], [0, 0]], [[1, 1], [1, 0]])
    >>> red.lift(lambda ov: (0, 1))     # <U[0], V[1]> = 0: x1 = x2 = 0, x3 = 1
    [-1, -2, 3]
    """
    N, clauses = clause_literals(cnf)
    N1 = split_point(N)
    require_ksat_side_limit(N, len(clauses))  # the estimate and the option that works (per-block generation)
    meta: dict[str, Any] = {"reduction": "ksat_to_ov", "N": N, "N1": N1, "m": len(clauses)}
    ov = OV(side_vectors(clauses, 1, N1), side_vectors(clauses, N1 + 1, N - N1), meta=meta)
    return Reduced.karp(
        cnf,
        ov,
        lambda pair: None if pair is None else pair_to_model(pair, N),
        params={"n_U": ov.n_U, "n_V": ov.n_V, "m": ov.m, "N1": N1},
    )

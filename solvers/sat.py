"""Ground truth for CNF-SAT: python-sat's solvers, a brute-force solver and model counter.

Every answer is checked: a model returned by :func:`solve_sat` is verified with
:func:`~reductions.problems.cnf.is_satisfying` before it is returned.  Models are complete:
one DIMACS literal per variable ``1..cnf.nv`` (variables the solver left free are set false).

Examples
--------
>>> from reductions.problems.cnf import make_cnf
>>> cnf = make_cnf([[1, 2], [-1], [-2, 3]], nv=4)
>>> result = solve_sat(cnf)
>>> result.satisfiable, result.model
(True, [-1, 2, 3, -4])
>>> solve_sat_bruteforce(cnf).model, count_models_bruteforce(cnf)
([-1, 2, 3, -4], 2)
>>> print(competition_output(result, comments=False))
s SATISFIABLE
v -1 2 3 -4 0
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pysat.formula import CNF
from pysat.solvers import Solver, SolverNames

from attention.errors import FinegrainError, ResourceError
from reductions.errors import VerificationFailed
from reductions.problems.cnf import check_cnf, is_satisfying

#: The solver :func:`solve_sat` uses unless told otherwise (CaDiCaL 1.9.5 through python-sat).
DEFAULT_SOLVER = "cadical195"
#: Largest variable count the brute-force solver and counter accept (2^20 assignments).
MAX_BRUTEFORCE_VARS = 20
_BLOCK = 1 << 16  # assignments evaluated at once: memory O(_BLOCK) per clause test


@dataclass(frozen=True)
class SatResult:
    """Answer of a SAT solver.

    Attributes
    ----------
    satisfiable : bool
    model : list of int or None
        A satisfying assignment as DIMACS literals, one per variable ``1..nv`` in order
        (None when unsatisfiable).
    solver : str
        The solver's name (``"bruteforce"`` for :func:`solve_sat_bruteforce`).
    time : float
        Wall-clock seconds spent solving (not counting the check of the model).
    """

    satisfiable: bool
    model: list[int] | None
    solver: str
    time: float


def solver_names() -> list[str]:
    """The python-sat solver names :func:`solve_sat` accepts (each with its pysat aliases)."""
    return sorted(name for name in vars(SolverNames) if not name.startswith("_"))


def canonical_solver(name: str) -> str:
    """The python-sat solver called ``name`` (a name or alias such as ``"g4"``), or an error listing them."""
    for canonical in solver_names():
        if name == canonical or name in getattr(SolverNames, canonical):
            return canonical
    raise FinegrainError(f"unknown SAT solver {name!r}; choose one of: {', '.join(solver_names())}")


def solve_sat(cnf: CNF, solver: str = DEFAULT_SOLVER) -> SatResult:
    """Decide ``cnf`` with a python-sat solver; the model is complete and verified.

    Parameters
    ----------
    cnf : pysat.formula.CNF
        With ``cnf.nv`` variables (the header's count: variables in no clause get ``-v``).
    solver : str
        A python-sat solver name, default ``"cadical195"``; ``"glucose4"``, ``"minisat22"``,
        ... or their pysat aliases (see :func:`solver_names`).

    Raises
    ------
    VerificationFailed
        The solver returned a model that does not satisfy ``cnf`` (a solver bug).
    """
    check_cnf(cnf)
    name = canonical_solver(solver)
    from reductions.guards import require_model_memory

    require_model_memory(cnf)  # the model lists all cnf.nv variables: refuse before solving
    with Solver(name=name, bootstrap_with=cnf.clauses) as oracle:
        start = time.perf_counter()
        satisfiable = bool(oracle.solve())
        elapsed = time.perf_counter() - start
        raw = oracle.get_model() if satisfiable else None
    model = complete_model(raw, cnf.nv) if satisfiable else None
    if model is not None and not is_satisfying(cnf, model):
        raise VerificationFailed(f"solver {name} returned a model that does not satisfy the formula")
    return SatResult(satisfiable, model, name, elapsed)


def complete_model(literals: list[int] | None, nv: int) -> list[int]:
    """One literal per variable ``1..nv``: those in ``literals``, ``-v`` for the variables not set."""
    true = {lit for lit in literals or () if abs(lit) <= nv}
    return [v if v in true else -v for v in range(1, nv + 1)]


# --------------------------------------------------------------------------- brute force


def solve_sat_bruteforce(cnf: CNF) -> SatResult:
    """Decide ``cnf`` (at most 20 variables) by trying all ``2^nv`` assignments.

    Independent of python-sat: used to cross-check the solvers.  The model is the first in
    binary order (variable 1 is the least significant bit, false = 0).

    Raises
    ------
    ResourceError
        ``cnf.nv > 20``.
    """
    start = time.perf_counter()
    for offset, ok in _satisfied_blocks(cnf):
        hits = np.flatnonzero(ok)
        if hits.size:
            model = _assignment(int(offset + hits[0]), cnf.nv)
            return SatResult(True, model, "bruteforce", time.perf_counter() - start)
    return SatResult(False, None, "bruteforce", time.perf_counter() - start)


def count_models_bruteforce(cnf: CNF) -> int:
    """The number of satisfying assignments of all ``cnf.nv`` variables (at most 20).

    Variables in no clause count: each doubles the number.  For the k-SAT -> OV reduction
    (Williams 2005) this equals the number of orthogonal pairs.
    """
    return sum(int(np.count_nonzero(ok)) for _, ok in _satisfied_blocks(cnf))


def _satisfied_blocks(cnf: CNF) -> Iterator[tuple[int, np.ndarray]]:
    """Blocks of assignments ``a`` (bit ``v - 1`` = value of variable v) and whether each satisfies ``cnf``.

    A clause with positive-literal mask ``P`` and negative-literal mask ``N`` is satisfied by
    ``a`` iff ``a & P != 0`` or ``~a & N != 0``.
    """
    check_cnf(cnf)
    if cnf.nv > MAX_BRUTEFORCE_VARS:
        raise ResourceError(
            f"brute force tries 2^nv assignments; nv = {cnf.nv} > {MAX_BRUTEFORCE_VARS}: use solve_sat"
        )
    masks = {_clause_masks(clause) for clause in cnf.clauses}
    total = 1 << cnf.nv
    for offset in range(0, total, _BLOCK):
        a = np.arange(offset, min(offset + _BLOCK, total), dtype=np.int64)
        ok = np.ones(a.shape, dtype=bool)
        for positive, negative in masks:
            ok &= ((a & positive) != 0) | ((~a & negative) != 0)
        yield offset, ok


def _clause_masks(clause: list[int]) -> tuple[int, int]:
    positive = negative = 0
    for lit in clause:
        if lit > 0:
            positive |= 1 << (lit - 1)
        else:
            negative |= 1 << (-lit - 1)
    return positive, negative


def _assignment(index: int, nv: int) -> list[int]:
    return [v if index >> (v - 1) & 1 else -v for v in range(1, nv + 1)]


# --------------------------------------------------------------------------- output


def competition_output(result: SatResult, comments: bool = True, width: int = 78) -> str:
    """The SAT competition's output: ``s SATISFIABLE`` and ``v ... 0`` lines, or ``s UNSATISFIABLE``.

    ``v`` lines are wrapped at ``width`` characters; the final ``0`` ends the model.  With
    ``comments`` the solver and time come first as ``c`` lines.
    """
    lines = [f"c solver {result.solver}", f"c time {result.time:.6f} s"] if comments else []
    if not result.satisfiable:
        return "\n".join([*lines, "s UNSATISFIABLE"])
    lines.append("s SATISFIABLE")
    current = "v"
    for token in [*map(str, result.model or ()), "0"]:
        if len(current) + 1 + len(token) > width:
            lines.append(current)
            current = "v"
        current += " " + token
    lines.append(current)
    return "\n".join(lines)

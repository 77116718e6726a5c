"""SAT ground truth: python-sat solvers against brute force, model counting, competition output."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pysat.formula import CNF

from attention.errors import FinegrainError, ResourceError
from reductions.errors import VerificationFailed
from reductions.generators.ksat import planted_ksat, random_ksat
from reductions.problems.cnf import is_satisfying, make_cnf
from reductions.testing import cnfs
from solvers import sat
from solvers.sat import (
    SatResult,
    canonical_solver,
    competition_output,
    count_models_bruteforce,
    solve_sat,
    solve_sat_bruteforce,
)


@st.composite
def any_cnf(draw: st.DrawFn, max_vars: int = 12) -> CNF:
    """Unstructured CNFs: unused variables, empty clauses, tautologies, repeated literals."""
    nv = draw(st.integers(0, max_vars))
    if nv == 0:
        return make_cnf(draw(st.lists(st.just([]), max_size=1)), nv=0)
    literal = st.integers(1, nv).flatmap(lambda v: st.sampled_from([v, -v]))
    return make_cnf(draw(st.lists(st.lists(literal, max_size=4), max_size=30)), nv=nv)


def _assignments(nv: int):  # type: ignore[no-untyped-def]
    """All assignments in binary order, variable 1 the least significant bit (pure Python)."""
    for index in range(2**nv):
        yield [v if index >> (v - 1) & 1 else -v for v in range(1, nv + 1)]


def _satisfies(clauses: list[list[int]], model: list[int]) -> bool:
    true = set(model)
    return all(any(lit in true for lit in clause) for clause in clauses)


@given(st.one_of(any_cnf(), cnfs(max_vars=12)), st.sampled_from(["cadical195", "glucose4", "minisat22"]))
def test_pysat_solver_agrees_with_brute_force(cnf: CNF, solver: str) -> None:
    result = solve_sat(cnf, solver=solver)
    truth = solve_sat_bruteforce(cnf)
    assert result.satisfiable == truth.satisfiable
    assert result.solver == solver and result.time >= 0
    for model in (result.model, truth.model):
        if result.satisfiable:
            assert [abs(lit) for lit in model] == list(range(1, cnf.nv + 1))  # complete, in order
            assert _satisfies(cnf.clauses, model) and is_satisfying(cnf, model)
        else:
            assert model is None


@given(any_cnf(max_vars=8))
def test_brute_force_against_a_pure_python_enumeration(cnf: CNF) -> None:
    models = [m for m in _assignments(cnf.nv) if _satisfies(cnf.clauses, m)]
    assert count_models_bruteforce(cnf) == len(models)
    assert solve_sat_bruteforce(cnf).model == (models[0] if models else None)


def test_brute_force_crosses_block_boundaries() -> None:
    # 18 variables: 4 blocks of 2^16; the only models set variables 17 and 18 true
    cnf = make_cnf([[17], [18]], nv=18)
    assert count_models_bruteforce(cnf) == 2**16
    result = solve_sat_bruteforce(cnf)
    assert result.model == [-v for v in range(1, 17)] + [17, 18]


def test_brute_force_refuses_more_than_20_variables() -> None:
    with pytest.raises(ResourceError, match="nv = 21 > 20"):
        solve_sat_bruteforce(make_cnf([[1]], nv=21))


def test_larger_formulas_by_planting() -> None:
    cnf, model = planted_ksat(200, ratio=4.2, seed=3, hiding="q-hidden")
    result = solve_sat(cnf)
    assert result.satisfiable and is_satisfying(cnf, result.model)
    unsat = random_ksat(40, ratio=8.0, seed=3)  # far above the threshold
    assert not solve_sat(unsat).satisfiable and not solve_sat(unsat, "glucose4").satisfiable


def test_trivial_formulas() -> None:
    assert solve_sat(make_cnf([], nv=0)).model == []
    assert not solve_sat(make_cnf([[]], nv=0)).satisfiable
    assert solve_sat(make_cnf([], nv=3)).model == [-1, -2, -3]


def test_solver_names_and_aliases() -> None:
    assert canonical_solver("g4") == "glucose4"
    assert canonical_solver("cadical195") == "cadical195"
    with pytest.raises(FinegrainError, match="unknown SAT solver 'nope'; choose one of: .*glucose4"):
        solve_sat(make_cnf([[1]]), solver="nope")


def test_a_wrong_model_from_the_solver_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    class Liar:
        def __init__(self, **kwargs: object) -> None: ...
        def __enter__(self) -> "Liar":
            return self
        def __exit__(self, *exc: object) -> None: ...
        def solve(self) -> bool:
            return True
        def get_model(self) -> list[int]:
            return [-1]

    monkeypatch.setattr(sat, "Solver", Liar)
    with pytest.raises(VerificationFailed, match="does not satisfy"):
        solve_sat(make_cnf([[1]]))


@given(st.lists(st.integers(1, 10**6), max_size=60), st.integers(20, 100))
def test_competition_output_parses_back(values: list[int], width: int) -> None:
    model = [v if values[v - 1] % 2 else -v for v in range(1, len(values) + 1)]
    text = competition_output(SatResult(True, model, "cadical195", 0.5), width=width)
    lines = text.splitlines()
    assert lines[:3] == ["c solver cadical195", "c time 0.500000 s", "s SATISFIABLE"]
    assert all(line.startswith("v ") and len(line) <= width for line in lines[3:])
    tokens = [int(t) for line in lines[3:] for t in line.split()[1:]]
    assert tokens == [*model, 0]
    unsat = competition_output(SatResult(False, None, "glucose4", 0.0), comments=False)
    assert unsat == "s UNSATISFIABLE"


def test_sat_answer_is_exhaustive_on_all_2cnf_on_3_variables() -> None:
    literals = [1, -1, 2, -2, 3, -3]
    clauses = [list(c) for c in itertools.combinations(literals, 2)]
    for pick in itertools.combinations(clauses, 4):
        cnf = make_cnf(pick, nv=3)
        assert solve_sat(cnf).satisfiable == solve_sat_bruteforce(cnf).satisfiable

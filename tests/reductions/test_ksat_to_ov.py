"""k-SAT -> OV (Williams split and list): models <-> orthogonal pairs, edge cases, known families."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
import networkx as nx
from pysat.formula import CNF
from pysat.solvers import Solver

from reductions.errors import InvalidInstance, ResourceError
from reductions.generators.families import (
    decode_coloring,
    graph_coloring,
    mutilated_chessboard,
    ordering_principle,
    parity_principle,
    pigeonhole,
)
from reductions.generators.ksat import planted_ksat
from reductions.problems.ov import is_orthogonal_pair
from reductions.registry import check_formulas, get_rule
from reductions.rules import ksat_to_ov
from reductions.testing import cnfs
from solvers.ov import count_orthogonal_pairs, solve_ov


def brute_models(cnf: CNF) -> set[tuple[int, ...]]:
    """Every model over variables 1..nv, by enumeration (independent of the reduction)."""
    models = set()
    for bits in itertools.product((False, True), repeat=cnf.nv):
        if all(any((lit > 0) == bits[abs(lit) - 1] for lit in clause) for clause in cnf.clauses):
            models.add(tuple(v if b else -v for v, b in enumerate(bits, start=1)))
    return models


def orthogonal_pairs(ov) -> np.ndarray:
    return np.argwhere(ov.U.astype(np.int64) @ ov.V.T.astype(np.int64) == 0)


def sat_solver_says(cnf: CNF) -> bool:
    with Solver(name="cadical153", bootstrap_with=cnf.clauses) as solver:
        return solver.solve()


def satisfies(cnf: CNF, model: list[int]) -> bool:
    true = set(model)
    return all(any(lit in true for lit in clause) for clause in cnf.clauses)


@given(cnfs(max_vars=12, max_clauses=20))
def test_orthogonal_pairs_are_exactly_the_models(cnf):
    red = ksat_to_ov.reduce(cnf)
    pairs = orthogonal_pairs(red.target)
    decoded = [tuple(ksat_to_ov.pair_to_model(p, cnf.nv)) for p in pairs]
    models = brute_models(cnf)
    assert len(pairs) == len(models)                    # #models = #orthogonal pairs
    assert set(decoded) == models and len(set(decoded)) == len(decoded)   # distinct, all models
    for model in list(models)[:8]:
        assert ksat_to_ov.model_to_pair(list(model), cnf.nv) in {tuple(p) for p in pairs}


@given(cnfs(max_vars=12, max_clauses=20))
def test_answer_and_witness_preserved_against_the_sat_solver(cnf):
    red = ksat_to_ov.reduce(cnf)
    pairs = orthogonal_pairs(red.target)
    answer = red.lift(lambda ov: tuple(pairs[0]) if len(pairs) else None)
    assert (answer is not None) == sat_solver_says(cnf)
    if answer is not None:
        assert satisfies(cnf, answer) and sorted(map(abs, answer)) == list(range(1, cnf.nv + 1))
    assert all(check.ok for check in check_formulas(red))
    assert red.params["N1"] == (cnf.nv + 1) // 2


def test_sizes_follow_the_header_count_not_the_variables_used():
    cnf = CNF(from_clauses=[[1, -2]])
    cnf.nv = 5                                           # x3, x4, x5 occur in no clause
    red = ksat_to_ov.reduce(cnf)
    assert (red.target.n_U, red.target.n_V, red.target.m) == (8, 4, 1)
    assert len(orthogonal_pairs(red.target)) == len(brute_models(cnf)) == 3 * 8


def test_empty_clause_gives_no_orthogonal_pair():
    red = ksat_to_ov.reduce(CNF(from_clauses=[[1, 2], [], [-1]]))
    assert red.target.U[:, 1].all() and red.target.V[:, 1].all()
    assert len(orthogonal_pairs(red.target)) == 0


def test_tautology_never_blocks_a_pair_and_keeps_its_coordinate():
    plain = CNF(from_clauses=[[1, 3], [-1, -4]])
    with_taut = CNF(from_clauses=[[1, 3], [2, -2, 4], [-1, -4]])
    red = ksat_to_ov.reduce(with_taut)
    assert red.target.m == 3
    assert len(orthogonal_pairs(red.target)) == len(brute_models(plain)) == len(brute_models(with_taut))
    # the tautology's variable x2 is on the U side: its coordinate is 0 on every U vector
    assert not red.target.U[:, 1].any()


def test_formula_without_clauses_or_variables():
    red = ksat_to_ov.reduce(CNF())
    assert (red.target.n_U, red.target.n_V, red.target.m) == (1, 1, 1)
    assert red.lift(lambda ov: (0, 0)) == []
    red = ksat_to_ov.reduce(CNF(from_clauses=[[]]))
    assert red.lift(lambda ov: None) is None and len(orthogonal_pairs(red.target)) == 0


def test_decoding_every_pair_is_deterministic_and_covers_all_assignments():
    N = 5
    seen = {tuple(ksat_to_ov.pair_to_model((i, j), N)) for i in range(8) for j in range(4)}
    assert len(seen) == 32
    assert all(ksat_to_ov.model_to_pair(list(m), N) == ksat_to_ov.model_to_pair(list(m), N) for m in seen)


@pytest.mark.parametrize(
    "clauses, nv, match",
    [([[1, 7]], 3, "literal 7 is out of range"), ([[1, 0]], 2, "literal 0 is not allowed"), ([[1.5]], 2, "not an integer")],
)
def test_bad_formulas_are_refused_with_the_clause_named(clauses, nv, match):
    cnf = CNF()
    cnf.clauses, cnf.nv = clauses, nv
    with pytest.raises(InvalidInstance, match=match):
        ksat_to_ov.reduce(cnf)


def test_not_a_cnf_is_refused():
    with pytest.raises(InvalidInstance, match="pysat.formula.CNF"):
        ksat_to_ov.reduce([[1, 2]])


def test_too_many_variables_is_a_resource_error():
    cnf = CNF(from_clauses=[[1]])
    cnf.nv = 2 * ksat_to_ov.MAX_SIDE_BITS + 2
    with pytest.raises(ResourceError, match="vectors per side"):
        ksat_to_ov.reduce(cnf)


def test_rule_is_registered_as_the_default_ksat_to_ov():
    rule = get_rule("ksat_to_ov")
    assert (rule.source, rule.target, rule.default) == ("ksat", "ov", True)


# ----------------------------------------------------------------------------- known families
def _first_pair(ov):
    return solve_ov(ov)


@pytest.mark.parametrize(
    "cnf",
    [pigeonhole(3), pigeonhole(2), pigeonhole(2, kval=2), ordering_principle(4), parity_principle(3),
     mutilated_chessboard(2)],
    ids=["PHP4-3", "PHP3-2", "PHP5-2-k2", "GT4", "PAR3", "CB2"],
)
def test_unsatisfiable_families_have_no_orthogonal_pair(cnf):
    assert cnf.nv <= 24
    red = ksat_to_ov.reduce(cnf)
    assert red.lift(_first_pair) is None
    assert count_orthogonal_pairs(red.target) == 0
    assert not sat_solver_says(cnf)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("hiding", ["naive", "q-hidden"])
def test_planted_formulas_are_satisfiable_through_the_chain(seed, hiding):
    cnf, planted = planted_ksat(18, ratio=4.26, k=3, seed=seed, hiding=hiding)
    red = ksat_to_ov.reduce(cnf)
    model = red.lift(_first_pair)
    assert model is not None and satisfies(cnf, model)
    assert is_orthogonal_pair(red.target, ksat_to_ov.model_to_pair(planted, cnf.nv))   # the planted one too


def _chromatic_number(G: nx.Graph) -> int:
    """By brute force over colourings (independent of the CNF encoding); tiny graphs only."""
    nodes = list(G)
    for k in range(1, len(nodes) + 1):
        for colours in itertools.product(range(k), repeat=len(nodes)):
            c = dict(zip(nodes, colours))
            if all(c[u] != c[v] for u, v in G.edges()):
                return k
    return 0


@pytest.mark.parametrize(
    "graph",
    [nx.cycle_graph(5), nx.complete_graph(4), nx.path_graph(6), nx.wheel_graph(5), nx.cycle_graph(6),
     nx.star_graph(4)],
    ids=["C5", "K4", "P6", "W5", "C6", "star4"],
)
def test_colourings_of_small_graphs_match_the_chromatic_number(graph):
    chi = _chromatic_number(graph)
    for k in (chi - 1, chi):
        cnf = graph_coloring(graph, k)
        if cnf.nv > 24:
            continue
        red = ksat_to_ov.reduce(cnf)
        model = red.lift(_first_pair)
        assert (model is not None) == (k >= chi)
        if model is not None:
            colouring = decode_coloring(graph, k, model)
            assert all(colouring[u] != colouring[v] for u, v in graph.edges())


@settings(max_examples=10)
@given(cnfs(min_vars=14, max_vars=20, max_clauses=60))
def test_larger_formulas_agree_with_the_sat_solver(cnf):
    red = ksat_to_ov.reduce(cnf)
    model = red.lift(_first_pair)
    assert (model is not None) == sat_solver_says(cnf)
    if model is not None:
        assert satisfies(cnf, model)

"""Random and planted k-CNF generators and the structured families (colouring, PHP, GT, PAR, CB)."""

from __future__ import annotations

import itertools
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from pysat.formula import CNF

from reductions.errors import InvalidInstance
from reductions.generators.families import (
    GRAPHS,
    decode_coloring,
    graph_coloring,
    mutilated_chessboard,
    named_graph,
    ordering_principle,
    parity_principle,
    pigeonhole,
)
from reductions.generators.ksat import hiding_q, planted_ksat, random_ksat
from reductions.problems.cnf import is_satisfying, planted_model
from solvers.sat import count_models_bruteforce, solve_sat, solve_sat_bruteforce

sizes = st.integers(1, 25).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, min(n, 5)), st.integers(0, 60)))
seeds = st.integers(0, 2**32 - 1)


def _check_shape(cnf: CNF, n: int, k: int, m: int) -> None:
    assert cnf.nv == n and len(cnf.clauses) == m
    for clause in cnf.clauses:
        variables = [abs(lit) for lit in clause]
        assert len(variables) == k and variables == sorted(set(variables))  # k distinct, in order
        assert 1 <= variables[0] and variables[-1] <= n


@given(sizes, seeds)
def test_random_ksat_shape_and_reproducibility(size: tuple[int, int, int], seed: int) -> None:
    n, k, m = size
    cnf = random_ksat(n, m, k=k, seed=seed)
    _check_shape(cnf, n, k, m)
    assert random_ksat(n, m, k=k, seed=seed).clauses == cnf.clauses


def test_random_ksat_ratio_and_seeds() -> None:
    assert len(random_ksat(20, ratio=4.26, seed=1).clauses) == round(4.26 * 20)
    assert random_ksat(30, 50, seed=1).clauses != random_ksat(30, 50, seed=2).clauses


def test_random_ksat_is_uniform_over_k_subsets_and_signs() -> None:
    n, k, m = 8, 3, 28_000
    cnf = random_ksat(n, m, k=k, seed=11)
    subsets = Counter(tuple(abs(lit) for lit in clause) for clause in cnf.clauses)
    assert len(subsets) == 56  # every 3-subset of 8 variables occurs
    expected = m / 56
    chi2 = sum((count - expected) ** 2 / expected for count in subsets.values())
    assert chi2 < 110  # 55 degrees of freedom: P(chi2 > 110) < 1e-5
    positive = sum(lit > 0 for clause in cnf.clauses for lit in clause)
    assert abs(positive / (k * m) - 0.5) < 0.01  # 4.6 standard deviations


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_vars": 2, "n_clauses": 3, "k": 3}, "k = 3 > n_vars = 2"),
        ({"n_vars": 5}, "exactly one of n_clauses"),
        ({"n_vars": 5, "n_clauses": 3, "ratio": 1.0}, "exactly one of n_clauses"),
        ({"n_vars": 5, "n_clauses": -1}, "n_clauses = -1"),
        ({"n_vars": 0, "n_clauses": 1}, "n_vars = 0"),
        ({"n_vars": 5, "ratio": float("nan")}, "ratio = nan"),
    ],
)
def test_random_ksat_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInstance, match=message):
        random_ksat(**kwargs)


@settings(max_examples=40)
@given(sizes, seeds, st.sampled_from(["naive", "q-hidden"]))
def test_planted_ksat_is_satisfied_by_its_model(size: tuple[int, int, int], seed: int, hiding: str) -> None:
    n, k, m = size
    if hiding == "q-hidden" and k < 2:
        with pytest.raises(InvalidInstance, match="k >= 2"):
            planted_ksat(n, m, k=k, seed=seed, hiding=hiding)
        return
    cnf, model = planted_ksat(n, m, k=k, seed=seed, hiding=hiding)
    _check_shape(cnf, n, k, m)
    assert sorted(map(abs, model)) == list(range(1, n + 1))
    assert is_satisfying(cnf, model)
    assert planted_model(cnf) == model  # recorded in the formula, so a written file keeps it
    assert solve_sat(cnf).satisfiable
    assert planted_ksat(n, m, k=k, seed=seed, hiding=hiding).cnf.clauses == cnf.clauses


@pytest.mark.parametrize(("hiding", "agreement"), [("naive", 4 / 7), ("q-hidden", 0.5)])
def test_planted_literal_signs_leak_only_in_the_naive_model(hiding: str, agreement: float) -> None:
    cnf, model = planted_ksat(200, 4000, k=3, seed=5, hiding=hiding)
    value = {abs(lit): lit > 0 for lit in model}
    agree = np.mean([(lit > 0) == value[abs(lit)] for clause in cnf.clauses for lit in clause])
    assert abs(agree - agreement) < 0.02  # 12000 literals: standard deviation 0.0046


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_hiding_q_is_the_root_of_the_balance_polynomial(k: int) -> None:
    q = sympy.Symbol("q")
    poly = sum(sympy.binomial(k, t) * q ** (t - 1) * (2 * t - k) for t in range(1, k + 1))
    roots = [r for r in sympy.Poly(sympy.expand(poly), q).nroots(n=30) if r.is_real and 0 <= r < 1]
    assert len(roots) == 1
    assert hiding_q(k) == pytest.approx(float(roots[0]), abs=1e-12)


# --------------------------------------------------------------------------- families


def _canonical(clauses: list[list[int]]) -> list[tuple[int, ...]]:
    return sorted(tuple(sorted(c)) for c in clauses)


def _incidence(clauses: list[list[int]], nv: int) -> nx.Graph:
    """Literal/clause incidence graph: isomorphic iff the formulas agree up to renaming variables."""
    G = nx.Graph()
    for v in range(1, nv + 1):
        G.add_node((v, True), kind="+")
        G.add_node((v, False), kind="-")
        G.add_edge((v, True), (v, False))
    for i, clause in enumerate(clauses):
        G.add_node(i, kind="clause")
        G.add_edges_from((i, (abs(lit), lit > 0)) for lit in clause)
    return G


def _same_up_to_renaming(ours: CNF, theirs) -> bool:  # type: ignore[no-untyped-def]
    a = _incidence(ours.clauses, ours.nv)
    b = _incidence([list(c) for c in theirs.clauses()], theirs.number_of_variables())
    return nx.is_isomorphic(a, b, node_match=lambda x, y: x["kind"] == y["kind"])


@pytest.mark.parametrize("holes", [1, 2, 3, 4, 5])
def test_pigeonhole_is_unsat_and_equals_cnfgen(holes: int) -> None:
    import cnfgen

    php = pigeonhole(holes)
    assert type(php) is CNF and php.nv == (holes + 1) * holes
    assert not solve_sat(php).satisfiable
    if php.nv <= 12:
        assert count_models_bruteforce(php) == 0
    theirs = cnfgen.PigeonholePrinciple(holes + 1, holes)
    assert _canonical(php.clauses) == _canonical([list(c) for c in theirs.clauses()])


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: ordering_principle(3), lambda c: c.OrderingPrinciple(3)),
        (lambda: ordering_principle(4), lambda c: c.OrderingPrinciple(4)),
        (lambda: parity_principle(2), lambda c: c.PerfectMatchingPrinciple(nx.complete_graph(5))),
        (lambda: mutilated_chessboard(2, exhaustive=True), lambda c: c.MutilatedChessboard(4, 4)),
    ],
    ids=["GT3", "GT4", "PAR2", "CB2"],
)
def test_genhard_families_equal_cnfgen_up_to_renaming(ours, theirs) -> None:  # type: ignore[no-untyped-def]
    import cnfgen

    assert _same_up_to_renaming(ours(), theirs(cnfgen))


@pytest.mark.parametrize(
    "build",
    [
        *(lambda n=n: ordering_principle(n) for n in (1, 2, 3, 6)),
        *(lambda n=n: parity_principle(n) for n in (1, 2, 3)),
        *(lambda n=n, e=e: mutilated_chessboard(n, exhaustive=e) for n in (2, 3) for e in (False, True)),
        lambda: pigeonhole(3, kval=2),
    ],
)
def test_families_are_unsatisfiable(build) -> None:  # type: ignore[no-untyped-def]
    cnf = build()
    assert "status=UNSAT" in cnf.comments[0]
    assert not solve_sat(cnf, solver="glucose4").satisfiable
    if cnf.nv <= 16:
        assert not solve_sat_bruteforce(cnf).satisfiable


def test_family_parameters_are_checked() -> None:
    with pytest.raises(InvalidInstance, match="size must be >= 2"):
        mutilated_chessboard(1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInstance, match="expected an integer >= 1"):
            pigeonhole(bad)  # type: ignore[arg-type]


def _chromatic_number(G: nx.Graph) -> int:
    """Smallest k with a proper k-colouring, by trying every colouring (tiny graphs only)."""
    nodes, edges = list(G), list(G.edges())
    for k in range(len(nodes) + 1):
        for colours in itertools.product(range(k), repeat=len(nodes)):
            c = dict(zip(nodes, colours))
            if all(c[u] != c[v] for u, v in edges):
                return k
    raise AssertionError("unreachable: n colours always suffice for a loopless graph")


small_graphs = st.builds(
    lambda n, p, seed: nx.gnp_random_graph(n, p, seed=seed), st.integers(0, 6), st.floats(0, 1), seeds
)


@settings(max_examples=40)
@given(small_graphs, st.integers(0, 4))
def test_coloring_is_sat_iff_k_reaches_the_chromatic_number(G: nx.Graph, k: int) -> None:
    cnf = graph_coloring(G, k)
    result = solve_sat(cnf)
    assert result.satisfiable == (k >= _chromatic_number(G))
    if result.satisfiable:
        colouring = decode_coloring(G, k, result.model)
        assert all(colouring[u] != colouring[v] for u, v in G.edges())
        assert set(colouring.values()) <= set(range(k))


@settings(max_examples=30)
@given(small_graphs, st.integers(0, 4))
def test_coloring_models_are_counted_by_the_chromatic_polynomial(G: nx.Graph, k: int) -> None:
    cnf = graph_coloring(G, k)
    if cnf.nv > 20:
        return
    x = sympy.Symbol("x")
    P = nx.chromatic_polynomial(G) if G.number_of_nodes() else sympy.Integer(1)
    assert count_models_bruteforce(cnf) == int(sympy.sympify(P).subs(x, k))


@pytest.mark.parametrize("spec", ["petersen", "cycle:5", "mycielski:4", "grid:2,3", "gnp:7,0.5"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_coloring_equals_cnfgen(spec: str, k: int) -> None:
    import cnfgen

    G = named_graph(spec, seed=2)
    ours = graph_coloring(G, k)
    theirs = cnfgen.GraphColoringFormula(G, k)
    assert ours.nv == theirs.number_of_variables()
    assert _canonical(ours.clauses) == _canonical([list(c) for c in theirs.clauses()])


def test_coloring_handles_loops_directions_and_parallel_edges() -> None:
    loop = nx.Graph([(0, 1)])
    loop.add_edge(1, 1)
    assert not solve_sat(graph_coloring(loop, 3)).satisfiable
    multi = nx.MultiDiGraph([(0, 1), (1, 0), (0, 1), (1, 2), (2, 0)])
    assert _canonical(graph_coloring(multi, 3).clauses) == _canonical(graph_coloring(nx.cycle_graph(3), 3).clauses)
    assert not solve_sat(graph_coloring(multi, 2)).satisfiable


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_named_graphs_build(name: str) -> None:
    _, types, seeded = GRAPHS[name]
    args = {(): "", (int,): ":4", (int, int): ":3,4", (int, float): ":9,0.4"}[types]
    G = named_graph(name + args, seed=3)
    assert G.number_of_nodes() > 0
    if seeded:
        assert set(named_graph(name + args, seed=3).edges) == set(G.edges)


def test_named_graph_errors_list_the_choices() -> None:
    with pytest.raises(InvalidInstance, match="unknown graph 'nope'; choose one of: .*petersen"):
        named_graph("nope")
    with pytest.raises(InvalidInstance, match="expected cycle:int"):
        named_graph("cycle")
    with pytest.raises(InvalidInstance, match="arguments must be int, float"):
        named_graph("gnp:x,0.1")
    with pytest.raises(InvalidInstance, match="regular:3,5"):
        named_graph("regular:3,5", seed=1)  # n d must be even


def test_seed_none_draws_a_fresh_seed_and_records_it() -> None:
    import re

    first, second = random_ksat(16, 40), random_ksat(16, 40)
    seeds = [int(re.search(r"seed=(\d+)", cnf.comments[0]).group(1)) for cnf in (first, second)]
    assert seeds[0] != seeds[1]
    assert random_ksat(16, 40, seed=seeds[0]).clauses == first.clauses
    with pytest.raises(InvalidInstance, match="seed = -3"):
        planted_ksat(5, 5, seed=-3)

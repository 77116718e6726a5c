"""The registry: names, duplicates, path finding, composition, formulas, SETH arithmetic."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from pysat.formula import CNF

from reductions import registry
from reductions.errors import InvalidInstance, NoReductionPath
from reductions.problems.maxip import MaxIP, solve_maxip
from reductions.problems.ov import OV
from reductions.registry import (
    GRAPH,
    Reduced,
    check_formulas,
    compose,
    find_path,
    get_rule,
    normalise,
    problem_name,
    reduce,
    reduction,
    seth_arithmetic,
)
from reductions.testing import cnfs, registry_snapshot


@pytest.fixture
def scratch_graph():
    """Register test rules freely; the registry is restored afterwards."""
    with registry_snapshot():
        yield GRAPH


def _identity_maxip(ov: OV) -> Reduced:
    """A second (non-default) OV -> Max-IP rule for the preference tests."""
    return get_rule("ov_to_maxip").apply(ov)


def test_problem_names_ignore_case_punctuation_and_aliases():
    assert problem_name("k-SAT") == problem_name("CNF") == problem_name("ksat") == "ksat"
    assert problem_name("Max-IP") == "maxip"
    assert problem_name("Gap-ANN") == "gapann"
    assert problem_name("AAttC") == "attention"
    assert problem_name("AAttLGC") == problem_name("grad") == "gradient"
    with pytest.raises(NoReductionPath, match="known problems"):
        problem_name("tsp")


def test_rule_names_are_normalised_before_lookup_and_duplicate_check(scratch_graph):
    reduction(source="OV", target="Max-IP", reference="test", name="OV to MaxIP alt")(_identity_maxip)
    assert get_rule("ov-to-maxip ALT").name == "ov_to_maxip_alt"
    assert get_rule("ov_to_maxip_alt").source == "ov" and get_rule("ov_to_maxip_alt").target == "maxip"

    def other(ov):
        return _identity_maxip(ov)

    with pytest.raises(ValueError, match="registered twice"):
        reduction(source="ov", target="maxip", reference="test", name="ov-to-maxip-alt")(other)
    # re-registering the same function (a module re-import) replaces it, no duplicate edge
    before = GRAPH.number_of_edges()
    reduction(source="ov", target="maxip", reference="test", name="ov_to_maxip_alt")(_identity_maxip)
    assert GRAPH.number_of_edges() == before


def test_every_rule_formula_parses_in_its_source_parameters():
    for rule in registry.all_rules():
        target = registry.PROBLEMS[rule.target].params
        assert set(rule.formulas) <= set(target), (rule.name, set(rule.formulas) - set(target))
        params = set(registry.problem_symbols(rule.source).values())
        for expr in [*rule.expressions.values(), rule.calls_expression]:
            assert expr.free_symbols <= params


def test_unknown_formula_names_are_refused():
    with pytest.raises(ValueError, match="not parameters of ov"):
        registry.parse_formula("2*n_U + N", "ov")


def test_find_path_prefers_default_rules_then_fewer_rules(scratch_graph):
    assert [r.name for r in find_path("ksat", "maxip")] == ["ksat_to_ov", "ov_to_maxip"]
    reduction(source="ov", target="maxip", reference="test", name="alt")(_identity_maxip)
    assert [r.name for r in find_path("ov", "maxip")] == ["ov_to_maxip"]       # default wins
    assert [r.name for r in find_path("ov", "maxip", via="alt")] == ["alt"]
    GRAPH.remove_edge("ov", "maxip", key="ov_to_maxip")
    assert [r.name for r in find_path("ov", "maxip")] == ["alt"]               # the only one left


def test_find_path_via_problems_and_unreachable_targets():
    path = find_path("ksat", "gapann", via=["bhcp"])
    assert [r.source for r in path] == ["ksat", "ov", "bhcp"] and path[-1].target == "gapann"
    with pytest.raises(NoReductionPath, match="one can reach"):
        find_path("maxip", "ksat")
    with pytest.raises(NoReductionPath):
        find_path("ksat", "maxip", via=["bhcp"])


def test_find_path_agrees_with_networkx_shortest_path():
    """Independent check: the chosen path has as many rules as networkx's shortest path."""
    registry.all_rules()
    for src, dst in itertools.permutations(registry.PROBLEMS, 2):
        if src in GRAPH and dst in GRAPH and nx.has_path(GRAPH, src, dst):
            assert len(find_path(src, dst)) == nx.shortest_path_length(GRAPH, src, dst)


def test_compose_refuses_broken_chains():
    with pytest.raises(NoReductionPath, match="chain is at"):
        compose(["ov_to_maxip", "ksat_to_ov"])
    with pytest.raises(NoReductionPath):
        compose([])


def _brute_sat(cnf: CNF) -> bool:
    for bits in itertools.product((False, True), repeat=cnf.nv):
        if all(any((lit > 0) == bits[abs(lit) - 1] for lit in c) for c in cnf.clauses):
            return True
    return False


@settings(max_examples=25)
@given(cnfs(max_vars=8, max_clauses=12))
def test_composed_ksat_to_maxip_lifts_answer_and_model(cnf):
    red = reduce(cnf, to="maxip")
    assert isinstance(red.target, MaxIP)
    model = red.lift(solve_maxip)
    assert (model is not None) == _brute_sat(cnf)
    if model is not None:
        assert sorted(abs(x) for x in model) == list(range(1, cnf.nv + 1))
        true = {lit for lit in model}
        assert all(any(lit in true for lit in c) for c in cnf.clauses)
    assert red.stats["oracle_calls"] == 1
    checks = check_formulas(red)
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]


def test_reduce_refuses_options_no_rule_accepts():
    with pytest.raises(InvalidInstance, match="not accepted"):
        reduce(CNF(from_clauses=[[1]]), to="ov", colour="blue")


def test_composed_formulas_are_substitutions():
    f = compose(["ksat_to_ov", "ov_to_maxip"]).formulas()
    N, m = registry.symbol("N"), registry.symbol("m")
    assert sympy.simplify(f["d"] - 2 * sympy.Max(m, 1)) == 0
    assert sympy.simplify(f["n_U"] - 2 ** sympy.ceiling(N / 2)) == 0


def test_tidy_drops_dominated_max_arguments_and_keeps_the_value():
    N = registry.symbol("N")
    expr = 2 * sympy.Max(2 ** sympy.ceiling(N / 2), 2 ** sympy.floor(N / 2))
    tidy = registry._tidy(expr)
    assert not tidy.has(sympy.Max)
    for value in range(0, 41):
        assert int(tidy.subs(N, value)) == int(expr.subs(N, value)) == 2 * 2 ** ((value + 1) // 2)
    mixed = sympy.Max(sympy.floor(N / 2), 3 - sympy.ceiling(N / 2))   # not comparable: kept
    assert registry._tidy(mixed) == mixed


def test_seth_arithmetic_for_the_williams_split(scratch_graph):
    """An n^(2-delta) algorithm after a 2^(N/2)-size split gives k-SAT in 2^((1-delta/2)N)."""

    def fake(ov: OV) -> Reduced:
        raise NotImplementedError

    reduction(
        source="ov", target="gradient", reference="test", name="fake_probe",
        formulas={"n": "2*Max(n_U, n_V)", "d": "2*m + 2"}, oracle_calls="ceiling(log(n_U, 2)) + 2",
    )(fake)
    arith = seth_arithmetic(find_path("ksat", "gradient", via="fake_probe"))
    delta = arith.delta
    assert sympy.simplify(arith.exponent - (1 - delta / 2)) == 0
    assert arith.base(0.5) == pytest.approx(2 ** 0.75)
    N = registry.symbol("N")
    assert sympy.simplify(arith.n - 2 * 2 ** sympy.ceiling(N / 2)) == 0
    # the exponent is an honest rate: log2(time)/N decreases towards it as N grows
    m = registry.symbol("m")

    def rate(size: int) -> float:
        at = {N: size, m: 4 * size, delta: sympy.Rational(1, 2), arith.c: 2}
        return float(sympy.log(arith.time.subs(at), 2) / size)

    assert rate(500) > rate(4000) > 0.75 and rate(4000) < 0.77


def test_measure_names_the_problem_on_bad_instances():
    with pytest.raises(InvalidInstance, match="as a ov instance"):
        registry.measure("ov", object())


def test_formula_check_catches_a_wrong_formula(scratch_graph):
    def wrong(ov: OV) -> Reduced:
        return get_rule("ov_to_maxip").apply(ov)

    reduction(source="ov", target="maxip", reference="test", name="wrong", formulas={"d": "2*m + 1"})(wrong)
    red = get_rule("wrong")(OV(np.eye(3, dtype=np.uint8), np.eye(3, dtype=np.uint8)))
    (check,) = check_formulas(red)
    assert not check.ok and check.predicted == 7 and check.measured == 6


def test_resolve_path_accepts_rules_names_and_problems():
    resolve = registry.resolve_path
    assert [r.name for r in resolve(None, "ksat", "maxip")] == ["ksat_to_ov", "ov_to_maxip"]
    assert [r.name for r in resolve("ksat_to_ov,ov_to_bhcp", "ksat", None)] == ["ksat_to_ov", "ov_to_bhcp"]
    # a rule list that starts later is completed by the preferred path into it
    assert [r.name for r in resolve(["ov_to_bhcp"], "ksat", None)] == ["ksat_to_ov", "ov_to_bhcp"]
    assert [r.name for r in resolve("bhcp", "ksat", "gapann")] == ["ksat_to_ov", "ov_to_bhcp", "bhcp_to_gapann"]
    with pytest.raises(NoReductionPath, match="ends at"):
        resolve("ksat_to_ov", "ksat", "maxip")
    with pytest.raises(NoReductionPath, match="give a target"):
        resolve(None, "ksat", None)

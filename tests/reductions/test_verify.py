"""verify(): ground truth vs the chain, witness on the original, refusals, counterexample search."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysat.formula import CNF

from reductions import registry
from reductions.errors import InvalidInstance, NoReductionPath, PrecisionError
from reductions.problems.ov import OV
from reductions.registry import GRAPH, Reduced, get_rule, reduction
from reductions.rules import ksat_to_ov
from reductions.testing import cnfs, ov_instances, registry_snapshot
from reductions.verify import Report, check_witness, find_counterexample, satisfies, verify
from solvers.sat import solve_sat_bruteforce


@pytest.fixture
def scratch_graph():
    """Register test rules freely; the registry is restored afterwards."""
    with registry_snapshot():
        yield GRAPH


def _pairs(ov):
    return np.argwhere(ov.U.astype(np.int64) @ ov.V.T.astype(np.int64) == 0)


@settings(max_examples=30)
@given(cnfs(max_vars=10, max_clauses=16))
def test_report_on_cnfs_matches_brute_force_and_checks_the_witness(cnf):
    report = verify(cnf, to="maxip")
    assert report.ground_truth == solve_sat_bruteforce(cnf).satisfiable
    assert report.agree and report.ok and report.formulas_ok
    if report.chain_answer:
        assert report.witness_ok is True and satisfies(cnf, report.chain_witness)
    else:
        assert report.witness_ok is None and report.chain_witness is None
    assert [s.problem for s in report.steps] == ["ov", "maxip"]
    assert report.steps[0].n == 2 ** ((cnf.nv + 1) // 2) and report.steps[1].d == 2 * max(len(cnf.clauses), 1)
    assert report.oracle_calls == 1


@settings(max_examples=20)
@given(ov_instances(max_n=32, max_m=12))
def test_report_on_ov_instances(ov):
    report = verify(ov, to="maxip")
    assert report.ground_truth == (len(_pairs(ov)) > 0)
    assert report.agree and report.witness_ok in (None, True)


def test_to_json_has_the_documented_keys_and_is_json():
    report = verify(CNF(from_clauses=[[1, 2], [-1], [-2, 3]]), to="maxip")
    data = json.loads(json.dumps(report.to_json()))
    assert {"ground_truth", "chain_answer", "agree", "witness_ok", "steps"} <= set(data)
    for step in data["steps"]:
        assert {"problem", "n", "d", "B", "margin", "oracle_error"} <= set(step)
    assert data["ground_truth"] is True and data["agree"] is True and data["chain_witness"] == [-1, 2, 3]


def test_a_wrong_solver_is_caught_as_disagreement_and_invalid_witness():
    cnf = CNF(from_clauses=[[1, 2], [-1, -2]])
    report = verify(cnf, to="ov", oracle=lambda ov: None)        # claims "no pair"
    assert report.ground_truth and not report.chain_answer and not report.agree and not report.ok
    report = verify(cnf, to="ov", oracle=lambda ov: (0, 0))      # x1 = x2 = 0: not a model
    assert report.agree and report.witness_ok is False and not report.ok
    assert report.chain_witness == [-1, -2]


def test_a_wrong_formula_makes_the_report_fail(scratch_graph):
    def sloppy(cnf: CNF) -> Reduced:
        return ksat_to_ov.reduce(cnf)

    reduction(source="ksat", target="ov", reference="test", name="sloppy", formulas={"m": "m + 1"})(sloppy)
    report = verify(CNF(from_clauses=[[1]]), path="sloppy", to="ov")
    assert report.agree and not report.formulas_ok and not report.ok


def _refusing(ov: OV, margin: float = 1e-3, error: float = 1e-2) -> Reduced:
    """A fake numeric rule: reports a margin below its oracle's error (and does not raise itself)."""
    red = get_rule("ov_to_maxip").apply(ov)
    inner = red.lift

    def lift(solver):
        answer = inner(solver)
        red.stats.update(margin=margin, oracle_error=error)
        return answer

    red.lift = lift
    return red


def test_a_margin_not_above_the_error_is_refused_never_guessed(scratch_graph):
    reduction(source="ov", target="maxip", reference="test", name="refusing")(_refusing)
    ov = OV([[1, 0]], [[0, 1]])
    with pytest.raises(PrecisionError, match="margin"):
        verify(ov, path="refusing", to="maxip")
    report = verify(ov, path="refusing", to="maxip", margin=0.5)   # option reaches the rule
    assert report.steps[0].margin == 0.5 and report.steps[0].oracle_error == 1e-2


def test_bad_arguments_are_refused_clearly():
    cnf = CNF(from_clauses=[[1]])
    with pytest.raises(InvalidInstance, match="unknown oracle"):
        verify(cnf, to="maxip", oracle="quantum")
    with pytest.raises(NoReductionPath):
        verify(cnf, to="ksat")
    with pytest.raises(InvalidInstance, match="cannot tell"):
        verify([[1]], to="ov")


def test_check_witness_rejects_partial_and_inconsistent_models():
    cnf = CNF(from_clauses=[[1, 2]])
    assert check_witness("ksat", cnf, [1, -2]) is True
    assert check_witness("ksat", cnf, [1]) is False                # not all variables
    assert check_witness("ksat", cnf, [1, -1]) is False
    assert check_witness("ksat", cnf, None) is None


def test_counterexample_search_finds_and_shrinks_a_planted_bug(scratch_graph):
    """A rule that forgets the last clause is wrong; hypothesis finds a tiny witness of it."""

    def forgetful(cnf: CNF) -> Reduced:
        short = CNF(from_clauses=cnf.clauses[:-1])
        short.nv = cnf.nv
        red = ksat_to_ov.reduce(short)
        return Reduced.karp(cnf, red.target, lambda pair: red.lift(lambda _: pair), params=red.params)

    reduction(source="ksat", target="ov", reference="test", name="forgetful")(forgetful)
    found = find_counterexample("forgetful", source="ksat", to="ov", max_examples=200)
    assert found is not None
    assert not verify(found, path="forgetful", to="ov").ok
    assert len(found.clauses) <= 2 and found.nv <= 2
    assert find_counterexample("ksat_to_ov", source="ksat", to="ov", max_examples=30) is None


def test_report_summary_names_every_step():
    report = verify(OV([[1, 0]], [[0, 1]]), to="maxip")
    assert isinstance(report, Report)
    text = report.summary()
    assert "ov_to_maxip" in text and "agree" in text


def test_a_refused_gradient_verdict_is_recomputed_with_the_mp_oracle_when_asked():
    """An oracle stating a huge error makes decoder (c) refuse; recompute=True reruns in mpmath."""
    import dataclasses

    import attention

    def sloppy(instance):
        return dataclasses.replace(attention.gradient(instance, method="exact"), error_bound=1e6)

    ov = OV([[1, 0, 1], [0, 1, 0]], [[0, 1, 1], [1, 0, 1]])
    with pytest.raises(PrecisionError):
        verify(ov, oracle=sloppy)
    report = verify(ov, oracle=sloppy, recompute=True)
    assert report.recomputed and report.oracle == "mp"
    assert report.agree and report.witness_ok and report.chain_witness == (1, 1)
    last = report.steps[-1]
    assert last.margin is not None and last.oracle_error is not None and last.margin > last.oracle_error


@settings(max_examples=15)
@given(ov_instances(min_n=4, max_n=32, max_m=8), st.sampled_from(["scan", "halving"]))
def test_witness_halving_through_the_gradient_with_many_yes_rows(ov, key_search):
    """Half of U replaced by sparse vectors: many rows have partners; the halving must still land on one."""
    U = ov.U.copy()
    U[::2] = 0
    U[::2, 0] = 1                                    # rows orthogonal to every V vector with V[:, 0] = 0
    V = ov.V.copy()
    V[: max(1, len(V) // 2), 0] = 0
    many = OV(U, V)
    yes_rows = int(((U.astype(int) @ V.T.astype(int)) == 0).any(axis=1).sum())
    assert yes_rows >= len(U) // 2
    report = verify(many, key_search=key_search)
    assert report.ground_truth and report.agree and report.witness_ok is True

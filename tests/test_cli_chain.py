"""The chain's CLI (list, reduce, verify, solve --via) through ``main([...])``: output, exit codes, library == CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
from pysat.formula import CNF

from reductions import registry
from reductions.cli import main
from reductions.commands.list import listing
from reductions.problems.cnf import read_cnf, write_dimacs
from reductions.problems.ov import OV, read_ov, write_ov
from reductions.registry import GRAPH, Reduced, reduce, reduction
from reductions.rules import ksat_to_ov
from reductions.testing import registry_snapshot
from reductions.verify import verify

CLAUSES = [[1, 2], [-1, 3], [-3, -2], [4, -5], [2, 5]]


@pytest.fixture
def cnf_file(tmp_path):
    path = tmp_path / "f.cnf"
    write_dimacs(CNF(from_clauses=CLAUSES), path)
    return path


@pytest.fixture
def scratch_graph():
    """Register test rules freely; the registry is restored afterwards."""
    with registry_snapshot():
        yield GRAPH


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# ----------------------------------------------------------------------------- list
def test_list_prints_every_rule_with_its_reference(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0
    for rule in registry.all_rules():
        assert rule.name in out and rule.reference in out


def test_list_json_equals_the_library(capsys):
    status, out, _ = run(capsys, "list", "--json", "--formulas", "--seth")
    assert status == 0
    assert json.loads(out) == json.loads(json.dumps(listing(formulas=True, seth=True)))


def test_list_formulas_give_n_d_b_of_ksat_to_gradient_in_n_and_m(capsys):
    status, out, _ = run(capsys, "list", "--formulas", "--json")
    routes = json.loads(out)["formulas"]
    preferred = next(r for r in routes if r["preferred"])
    assert preferred["path"] == [r.name for r in registry.find_path("ksat", "gradient")]
    N, m = registry.symbol("N"), registry.symbol("m")
    for key in ("n", "d", "B"):
        expr = registry.parse_formula(preferred["formulas"][key], "ksat")
        assert expr.free_symbols <= {N, m}, key
    # the formulas are the composition that verify() checks against measured sizes
    cnf = CNF(from_clauses=CLAUSES)
    report = verify(cnf)
    last = report.steps[-1]
    for key in ("n", "d", "B"):
        value = registry.evaluate(registry.parse_formula(preferred["formulas"][key], "ksat"), {"N": 5, "m": 5})
        assert value == pytest.approx(last.params[key], rel=1e-9)


def test_list_seth_prints_the_exponent(capsys):
    status, out, _ = run(capsys, "list", "--seth")
    assert status == 0 and "SETH" in out
    delta = sympy.Symbol("delta", positive=True)
    assert sympy.simplify(registry.seth_arithmetic().exponent - (1 - delta / 2)) == 0
    assert "1 - delta/2" in out


# ----------------------------------------------------------------------------- reduce
def test_reduce_to_ov_writes_the_library_result_with_decoding_data(capsys, cnf_file, tmp_path):
    out_file = tmp_path / "f.ov"
    status, _, err = run(capsys, "reduce", str(cnf_file), "--to", "ov", "-o", str(out_file))
    assert status == 0 and "wrote" in err
    written = read_ov(out_file)
    library = reduce(read_cnf(cnf_file), to="ov").target
    assert np.array_equal(written.U, library.U) and np.array_equal(written.V, library.V)
    chain = written.meta["chain"]
    assert chain["path"] == ["ksat_to_ov"] and chain["source"]["params"]["N"] == 5
    assert written.meta["N1"] == 3 and "provenance" in written.meta


def test_reduce_refuses_to_overwrite_and_leaves_the_file(capsys, cnf_file, tmp_path):
    out_file = tmp_path / "f.ov"
    out_file.write_text("keep me")
    status, _, err = run(capsys, "reduce", str(cnf_file), "--to", "ov", "-o", str(out_file))
    assert status == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    assert out_file.read_text() == "keep me"


def test_reduce_to_gradient_writes_an_instance_file(capsys, cnf_file, tmp_path):
    from attention.instance import AttentionInstance

    out_file = tmp_path / "inst.npz"
    status, out, _ = run(capsys, "reduce", str(cnf_file), "--to", "gradient", "-o", str(out_file), "--json")
    assert status == 0
    inst = AttentionInstance.load(out_file)
    library = reduce(read_cnf(cnf_file), to="gradient").target
    for name in ("A1", "A2", "A3", "E", "X", "Y"):
        assert np.array_equal(getattr(inst, name), getattr(library, name)), name
    chain = inst.meta["chain"]
    assert chain["path"] == [r.name for r in registry.find_path("ksat", "gradient")]
    assert chain["steps"][0]["meta"]["N1"] == 3          # what maps an OV pair back to a model
    assert json.loads(out)["params"]["n"] == inst.n


@pytest.mark.parametrize(
    "to, path, options",
    [
        ("ov", None, []),
        ("gradient", None, []),
        (None, "ksat_to_ov,ov_to_gradient_probe", ["mu=16"]),
    ],
)
def test_reduce_json_equals_the_library(capsys, cnf_file, tmp_path, to, path, options):
    out_file = tmp_path / ("r.ov" if to == "ov" else "r.npz")
    argv = ["reduce", str(cnf_file), "-o", str(out_file), "--json"] + (["--to", to] if to else [])
    argv += (["--path", path] if path else []) + [a for o in options for a in ("--option", o)]
    status, out, err = run(capsys, *argv)
    assert status == 0 and err == ""
    data = json.loads(out)
    cnf = read_cnf(cnf_file)
    library = reduce(cnf, to=to, path=path, **{k: int(v) for k, v in (o.split("=") for o in options)})
    assert data["output"] == str(out_file) and data["problem"] == library.rules[-1].target
    assert data["path"] == [r.name for r in library.rules] and data["problems"] == library.problems()
    assert data["params"] == json.loads(json.dumps(library.steps[-1].params))
    width = max(len(c) for c in cnf.clauses)
    assert data["source"] == {"problem": "ksat", "params": {"N": cnf.nv, "m": len(cnf.clauses), "k": width}}
    assert data["seconds_reduce"] > 0
    if to != "ov":  # the sizes printed are those of the instance written
        from attention.instance import AttentionInstance

        inst = AttentionInstance.load(out_file)
        assert (data["params"]["n"], data["params"]["d"]) == (inst.n, inst.d)
        if options:
            assert data["params"]["mu"] == 16


def test_reduce_progress_bar_has_one_step_per_rule_and_the_write(capsys, cnf_file, tmp_path, monkeypatch):
    """The bar (forced on, into a buffer) counts the rules of the path, names each, then the write."""
    import io

    from reductions.commands import reduce as reduce_command

    buffer, bars = io.StringIO(), []

    def forced(**kwargs):
        from tqdm import tqdm

        kwargs.update(disable=False, file=buffer, delay=0, mininterval=0, miniters=1)
        bars.append(tqdm(**kwargs))
        return bars[-1]

    monkeypatch.setattr(reduce_command, "progress", forced)
    assert run(capsys, "reduce", str(cnf_file), "--to", "gradient", "-o", str(tmp_path / "r.npz"))[0] == 0
    path = [r.name for r in registry.find_path("ksat", "gradient")]
    (bar,) = bars
    assert bar.total == bar.n == len(path) + 1
    shown = buffer.getvalue()
    assert all(name in shown for name in path) and "write r.npz" in shown


@pytest.mark.parametrize(
    "argv, match",
    [
        (["reduce", "missing.cnf", "--to", "ov", "-o", "x.ov"], "missing.cnf"),
        (["reduce", "{cnf}", "--to", "tsp", "-o", "{tmp}/x.ov"], "unknown problem"),
        (["reduce", "{cnf}", "--to", "maxip", "-o", "{tmp}/x.ov"], "no file format"),
        (["reduce", "{cnf}", "--to", "ov", "--option", "colour=blue", "-o", "{tmp}/x.ov"], "not accepted"),
        (["verify", "{bad}"], "line"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, cnf_file, tmp_path, argv, match):
    bad = tmp_path / "bad.cnf"
    bad.write_text("p cnf 2 1\n1 3 0\n")
    argv = [a.format(cnf=cnf_file, tmp=tmp_path, bad=bad) for a in argv]
    status, _, err = run(capsys, *argv)
    assert status == 2 and match in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- verify
def test_verify_json_equals_the_library_and_exits_0(capsys, cnf_file):
    status, out, _ = run(capsys, "verify", str(cnf_file), "--to", "maxip", "--json")
    assert status == 0
    cli = json.loads(out)
    library = verify(read_cnf(cnf_file), to="maxip").to_json()
    for data in (cli, library):
        data.pop("seconds")
        for step in data["steps"]:
            step.pop("seconds_reduce"), step["stats"].pop("seconds_reduce")
    assert cli == json.loads(json.dumps(library))
    assert {"ground_truth", "chain_answer", "agree", "witness_ok", "steps"} <= set(cli)


def test_verify_through_the_gradient_default_route(capsys, cnf_file):
    status, out, _ = run(capsys, "verify", str(cnf_file), "--json")
    data = json.loads(out)
    assert status == 0 and data["agree"] and data["witness_ok"] is True
    assert data["steps"][-1]["problem"] == "gradient" and data["steps"][-1]["B"] > 0


def test_verify_exits_1_when_the_chain_disagrees_and_saves_a_counterexample(capsys, scratch_graph, cnf_file, tmp_path):
    def broken(cnf: CNF) -> Reduced:
        red = ksat_to_ov.reduce(cnf)
        flipped = OV(1 - red.target.U, red.target.V)          # wrong vectors: wrong answers
        return Reduced.karp(cnf, flipped, lambda pair: red.lift(lambda _: pair), params=red.params)

    reduction(source="ksat", target="ov", reference="test", name="broken")(broken)
    out_file = tmp_path / "ce.cnf"
    status, out, err = run(
        capsys, "verify", str(cnf_file), "--path", "broken", "--to", "ov", "--json",
        "--counterexample", str(out_file), "--max-examples", "100",
    )
    assert status == 1
    assert json.loads(out)["counterexample"] == str(out_file)
    found = read_cnf(out_file)
    assert not verify(found, path="broken", to="ov").ok
    assert len(found.clauses) <= 3


def test_verify_on_an_ov_file(capsys, tmp_path):
    path = tmp_path / "x.ov"
    write_ov(OV([[1, 0, 1], [0, 1, 0]], [[0, 1, 1], [1, 0, 1]]), path)
    status, out, _ = run(capsys, "verify", str(path), "--to", "maxip", "--json")
    data = json.loads(out)
    assert status == 0 and data["ground_truth"] and data["chain_witness"] == [1, 1]   # the only orthogonal pair


# ----------------------------------------------------------------------------- solve --via
@pytest.mark.parametrize(
    "clauses, nv",
    [(CLAUSES, 5), ([[1, 2], [-1, 2], [1, -2], [-1, -2]], 2), ([[1, -2, 3], [-1], [2, -3], [3]], 4)],
    ids=["sat", "unsat", "unsat-4"],
)
def test_solve_via_gradient_equals_the_library_and_the_direct_solver(capsys, tmp_path, clauses, nv):
    from reductions.problems.cnf import make_cnf
    from reductions.verify import satisfies, solve_through

    path = tmp_path / "g.cnf"
    cnf = make_cnf(clauses, nv=nv)
    write_dimacs(cnf, path)
    status, out, _ = run(capsys, "solve", str(path), "--via", "gradient", "--json")
    via = json.loads(out)
    status_direct, out_direct, _ = run(capsys, "solve", str(path), "--json")
    direct = json.loads(out_direct)
    assert status == status_direct == 0
    assert via["satisfiable"] == direct["satisfiable"]
    answer, red = solve_through(read_cnf(path), to="gradient")
    assert via["witness"] == answer and via["path"] == [r.name for r in red.rules]
    assert via["path"] == [r.name for r in registry.find_path("ksat", "gradient")]   # the default route
    assert via["oracle_calls"] == red.stats["oracle_calls"] >= 1
    if via["satisfiable"]:
        assert satisfies(cnf, via["witness"])


def test_solve_via_gradient_text_output_on_an_ov_file_with_the_mp_oracle(capsys, tmp_path):
    path = tmp_path / "x.ov"
    write_ov(OV([[1, 0, 1], [0, 1, 0]], [[0, 1, 1], [1, 0, 1]]), path)
    status, out, _ = run(capsys, "solve", str(path), "--via", "gradient", "--oracle", "mp")
    assert status == 0 and "s ORTHOGONAL PAIR" in out and "v 1 1" in out and "oracle mp" in out


def test_solve_via_an_unknown_problem_is_exit_2(capsys, cnf_file):
    status, _, err = run(capsys, "solve", str(cnf_file), "--via", "tsp")
    assert status == 2 and "unknown problem" in err

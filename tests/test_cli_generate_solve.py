"""``finegrain generate`` and ``finegrain solve``: library == CLI, provenance, safe output, errors."""

from __future__ import annotations

import json
import shlex
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from reductions.cli import main
from reductions.generators import families
from reductions.generators.ksat import planted_ksat, random_ksat
from reductions.generators.ov import no_pair_ov, planted_ov, random_ov, random_ov_mu
from reductions.problems.cnf import is_satisfying, parse_dimacs, planted_model, read_cnf, read_provenance
from reductions.problems.ov import is_orthogonal_pair, read_ov
from solvers.ov import count_orthogonal_pairs
from solvers.sat import solve_sat_bruteforce

BAD_DIMACS = sorted((Path(__file__).parent / "data" / "bad" / "dimacs").iterdir())


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``finegrain argv``, as the console script would run it (``sys.argv`` set): status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["finegrain", *argv])
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    return lambda *argv: run_cli(monkeypatch, capsys, *map(str, argv))


def _same_formula(a, b) -> bool:  # type: ignore[no-untyped-def]
    """Same header, clauses and comments except the provenance record (first comment of a written file)."""
    strip = [c for c in a.comments if not c.startswith("c finegrain {")]
    return (a.nv, a.clauses, strip) == (b.nv, b.clauses, [c for c in b.comments if not c.startswith("c finegrain {")])


# --------------------------------------------------------------------------- generate


def test_generate_ksat_equals_library_and_records_provenance(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.cnf"
    argv = ["generate", "ksat", "--vars", "20", "--clauses", "85", "--k", "3", "--seed", "7", "-o", str(path)]
    status, out, err = cli(*argv)
    assert (status, out) == (0, "")
    assert "wrote" in err
    cnf = read_cnf(path)
    assert _same_formula(cnf, random_ksat(20, 85, k=3, seed=7))
    record = read_provenance(cnf)
    assert record["finegrain_version"] == version("finegrain")
    assert record["command"] == shlex.join(["finegrain", *argv])
    assert record["seed"] == 7


def test_generate_prints_to_stdout_without_output(cli) -> None:  # type: ignore[no-untyped-def]
    status, out, _ = cli("generate", "ksat", "--vars", "12", "--ratio", "4.0", "--k", "4", "--seed", "3")
    assert status == 0
    assert _same_formula(parse_dimacs(out), random_ksat(12, k=4, ratio=4.0, seed=3))


@pytest.mark.parametrize("hiding", ["naive", "q-hidden"])
def test_generate_planted_ksat(cli, tmp_path: Path, hiding: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.cnf.gz"
    argv = ["generate", "ksat", "--vars", "30", "--ratio", "4.5", "--planted", "--hiding", hiding, "--seed", "5"]
    assert cli(*argv, "-o", path)[0] == 0
    cnf = read_cnf(path)
    expected = planted_ksat(30, ratio=4.5, seed=5, hiding=hiding)
    assert _same_formula(cnf, expected.cnf)
    assert planted_model(cnf) == expected.model and is_satisfying(cnf, expected.model)


def test_seed_is_drawn_and_recorded_when_not_given(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seeds = []
    for name in ("a.cnf", "b.cnf"):
        assert cli("generate", "ksat", "--vars", "15", "--clauses", "40", "-o", tmp_path / name)[0] == 0
        cnf = read_cnf(tmp_path / name)
        seed = read_provenance(cnf)["seed"]
        assert isinstance(seed, int)
        assert _same_formula(cnf, random_ksat(15, 40, seed=seed))  # the recorded seed rebuilds it
        seeds.append(seed)
    assert seeds[0] != seeds[1]


@pytest.mark.parametrize(
    ("argv", "build"),
    [
        (["php", "--holes", "4"], lambda: families.pigeonhole(4)),
        (["php", "--holes", "3", "--kval", "2"], lambda: families.pigeonhole(3, kval=2)),
        (["gt", "--size", "4"], lambda: families.ordering_principle(4)),
        (["par", "--size", "3"], lambda: families.parity_principle(3)),
        (["cb", "--size", "2", "--exhaustive"], lambda: families.mutilated_chessboard(2, exhaustive=True)),
        (
            ["coloring", "--graph", "gnp:9,0.4", "--colors", "3", "--seed", "4"],
            lambda: families.graph_coloring(families.named_graph("gnp:9,0.4", seed=4), 3),
        ),
        (["coloring", "--graph", "petersen", "--colors", "2", "--at-least-one"],
         lambda: families.graph_coloring(families.named_graph("petersen"), 2, exactly_one=False)),
    ],
)
def test_generate_families_equal_library(cli, tmp_path: Path, argv: list[str], build) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fam.cnf"
    assert cli("generate", *argv, "-o", path)[0] == 0
    assert _same_formula(read_cnf(path), build())


@pytest.mark.parametrize(
    ("argv", "build"),
    [
        (["--n", "40", "--m", "10", "--seed", "3"], lambda: random_ov(40, 40, 10, p=0.5, seed=3)),
        (["--n-U", "30", "--n-V", "20", "--m", "9", "--p", "0.3", "--seed", "3"], lambda: random_ov(30, 20, 9, 0.3, 3)),
        (["--n", "64", "--m", "12", "--mu", "2", "--seed", "1"], lambda: random_ov_mu(64, 64, 12, 2.0, seed=1)),
        (["--n", "50", "--m", "12", "--planted", "3", "--seed", "2"], lambda: planted_ov(50, 50, 12, 3, seed=2)),
        (["--n", "50", "--m", "8", "--no-pair", "--seed", "2"], lambda: no_pair_ov(50, 50, 8, seed=2)),
    ],
)
@pytest.mark.parametrize("suffix", [".ov", ".npz"])
def test_generate_ov_equals_library(cli, tmp_path: Path, argv: list[str], build, suffix: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"inst{suffix}"
    assert cli("generate", "ov", *argv, "-o", path)[0] == 0
    ov, expected = read_ov(path), build()
    assert np.array_equal(ov.U, expected.U) and np.array_equal(ov.V, expected.V)
    record = ov.meta.pop("provenance")
    assert ov.meta == json.loads(json.dumps(expected.meta))
    assert record["seed"] == expected.meta["seed"] and record["finegrain_version"] == version("finegrain")


# --json: a summary of the file written, equal to the library generator's result


def _json_of(cli, tmp_path: Path, *argv: str) -> tuple[dict, Path, str]:  # type: ignore[no-untyped-def]
    path = tmp_path / ("inst.ov" if argv[0] == "ov" else "f.cnf")
    status, out, err = cli("generate", *argv, "-o", path, "--json")
    assert status == 0 and "wrote" in err
    return json.loads(out), path, shlex.join(["finegrain", "generate", *argv, "-o", str(path), "--json"])


@pytest.mark.parametrize("planted", [False, True])
def test_generate_ksat_json_equals_library(cli, tmp_path: Path, planted: bool) -> None:  # type: ignore[no-untyped-def]
    argv = ["ksat", "--vars", "16", "--ratio", "4.2", "--k", "3", "--seed", "11"] + (["--planted"] if planted else [])
    data, path, command = _json_of(cli, tmp_path, *argv)
    library = planted_ksat(16, ratio=4.2, k=3, seed=11) if planted else random_ksat(16, ratio=4.2, k=3, seed=11)
    cnf = library.cnf if planted else library
    assert (data["kind"], data["problem"], data["output"], data["seed"]) == ("ksat", "ksat", str(path), 11)
    assert (data["n_vars"], data["n_clauses"]) == (cnf.nv, len(cnf.clauses)) == (16, round(4.2 * 16))
    assert data["max_clause_width"] == max(len(c) for c in cnf.clauses) == 3
    assert data["generator"] == ("planted_ksat" if planted else "random_ksat")
    assert data["provenance"] == read_provenance(read_cnf(path)) and data["provenance"]["command"] == command
    if planted:
        assert data["planted_model"] == library.model and data["known_answer"] is True
        assert is_satisfying(read_cnf(path), data["planted_model"])
    else:
        assert "planted_model" not in data and data["known_answer"] is None
    assert _same_formula(read_cnf(path), cnf)


@pytest.mark.parametrize(
    ("argv", "build", "pairs"),
    [
        (["--n", "40", "--m", "10", "--seed", "3"], lambda: random_ov(40, 40, 10, p=0.5, seed=3), None),
        (["--n", "64", "--m", "12", "--mu", "2", "--seed", "1"], lambda: random_ov_mu(64, 64, 12, 2.0, seed=1), None),
        (["--n-U", "50", "--n-V", "30", "--m", "12", "--planted", "3", "--seed", "2"],
         lambda: planted_ov(50, 30, 12, 3, seed=2), 3),
        (["--n", "50", "--m", "8", "--no-pair", "--seed", "2"], lambda: no_pair_ov(50, 50, 8, seed=2), 0),
    ],
)
def test_generate_ov_json_equals_library(cli, tmp_path: Path, argv: list[str], build, pairs: int | None) -> None:  # type: ignore[no-untyped-def]
    data, path, command = _json_of(cli, tmp_path, "ov", *argv)
    library = build()
    cli_only = {"kind", "problem", "output", "known_answer", "provenance"}
    assert {k: v for k, v in data.items() if k not in cli_only} == json.loads(json.dumps(library.meta))
    assert (data["kind"], data["problem"], data["output"]) == ("ov", "ov", str(path))
    assert data["provenance"] == read_ov(path).meta["provenance"] and data["provenance"]["command"] == command
    written = read_ov(path)
    if pairs is None:
        assert data["known_answer"] is None
    else:  # the planted information is the truth: a brute-force count finds exactly those pairs
        assert data["known_answer"] is (pairs > 0)
        assert count_orthogonal_pairs(written) == pairs == len(data.get("planted_pairs", []))
        assert all(is_orthogonal_pair(written, tuple(pair)) for pair in data.get("planted_pairs", []))


@pytest.mark.parametrize(
    ("argv", "build", "answer"),
    [
        (["php", "--holes", "3"], lambda: families.pigeonhole(3), False),
        (["coloring", "--graph", "petersen", "--colors", "3"],
         lambda: families.graph_coloring(families.named_graph("petersen"), 3), None),
    ],
)
def test_generate_family_json_equals_library(cli, tmp_path: Path, argv: list[str], build, answer) -> None:  # type: ignore[no-untyped-def]
    data, path, _ = _json_of(cli, tmp_path, *argv)
    cnf = build()
    assert (data["n_vars"], data["n_clauses"]) == (cnf.nv, len(cnf.clauses))
    assert data["description"] == cnf.comments and data["known_answer"] is answer
    if answer is False:
        assert solve_sat_bruteforce(cnf).satisfiable is False


def test_generate_json_without_output_is_one_line_and_writes_nothing(cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    status, out, err = cli("generate", "ksat", "--vars", "5", "--clauses", "3", "--json")
    assert (status, out) == (2, "") and err.count("\n") == 1 and "-o FILE" in err
    assert list(tmp_path.iterdir()) == []


def test_output_is_not_overwritten_without_force(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.cnf"
    assert cli("generate", "php", "--holes", "2", "-o", path)[0] == 0
    before = path.read_bytes()
    status, out, err = cli("generate", "php", "--holes", "3", "-o", path)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "--force" in err
    assert path.read_bytes() == before
    assert cli("generate", "php", "--holes", "3", "-o", path, "--force")[0] == 0
    assert read_cnf(path).nv == 12


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["ksat", "--vars", "2", "--clauses", "3", "--k", "3"], "k = 3 > n_vars = 2"),
        (["ksat", "--vars", "5", "--clauses", "3", "--seed", "-1"], "seed = -1"),
        (["ksat", "--vars", "5", "--clauses", "3", "--planted", "--hiding", "q-hidden", "--k", "1"], "k >= 2"),
        (["coloring", "--graph", "nope", "--colors", "3"], "unknown graph 'nope'"),
        (["cb", "--size", "1"], "size must be >= 2"),
        (["ov", "--m", "4"], "give --n"),
    ],
)
def test_bad_generator_parameters_give_one_line(cli, argv: list[str], fragment: str) -> None:  # type: ignore[no-untyped-def]
    status, out, err = cli("generate", *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err and err.startswith("finegrain generate: error: ")


def test_usage_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        cli("generate", "ksat", "--clauses", "3")  # --vars missing
    assert info.value.code == 2


# --------------------------------------------------------------------------- solve


def _formulas(tmp_path: Path) -> list[Path]:
    """Satisfiable and unsatisfiable formulas on <= 20 variables, written by the library."""
    from reductions.problems.cnf import write_dimacs

    cnfs = [random_ksat(12, ratio=r, seed=s) for r in (3.0, 5.0, 7.0) for s in (1, 2)]
    cnfs += [families.pigeonhole(3), planted_ksat(20, ratio=4.2, seed=9).cnf, families.ordering_principle(4)]
    paths = []
    for i, cnf in enumerate(cnfs):
        paths.append(tmp_path / f"f{i}.cnf")
        write_dimacs(cnf, paths[-1])
    return paths


@pytest.mark.parametrize("solver", [None, "glucose4", "bruteforce"])
def test_solve_json_against_brute_force(cli, tmp_path: Path, solver: str | None) -> None:  # type: ignore[no-untyped-def]
    answers = set()
    for path in _formulas(tmp_path):
        status, out, _ = cli("solve", path, "--json", *(["--solver", solver] if solver else []))
        record = json.loads(out)
        cnf = read_cnf(path)
        truth = solve_sat_bruteforce(cnf).satisfiable
        assert status == 0 and record["problem"] == "ksat" and record["satisfiable"] == truth
        assert record["solver"] == (solver or "cadical195")
        assert (record["n_vars"], record["n_clauses"]) == (cnf.nv, len(cnf.clauses))
        if truth:
            assert len(record["witness"]) == cnf.nv and is_satisfying(cnf, record["witness"])
        else:
            assert record["witness"] is None
        answers.add(truth)
    assert answers == {True, False}


def test_solve_text_is_competition_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for path in _formulas(tmp_path):
        status, out, _ = cli("solve", path)
        lines = out.splitlines()
        status_line = [line for line in lines if line.startswith("s ")]
        assert status == 0 and len(status_line) == 1
        cnf = read_cnf(path)
        if status_line[0] == "s SATISFIABLE":
            values = [int(t) for line in lines if line.startswith("v ") for t in line.split()[1:]]
            assert values[-1] == 0 and is_satisfying(cnf, values[:-1])
        else:
            assert status_line[0] == "s UNSATISFIABLE" and not solve_sat_bruteforce(cnf).satisfiable


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("suffix", [".ov", ".npz", ".data"])
def test_solve_ov(cli, tmp_path: Path, seed: int, suffix: str) -> None:  # type: ignore[no-untyped-def]
    from reductions.problems.ov import write_ov

    ov = random_ov_mu(20, 30, 8, mu=0.7, seed=seed)
    path = tmp_path / f"inst{suffix}"
    write_ov(ov, path)
    status, out, _ = cli("solve", path, "--json")
    record = json.loads(out)
    assert status == 0 and record["problem"] == "ov"
    assert record["has_pair"] == (count_orthogonal_pairs(ov) > 0)
    assert record["witness"] is None if not record["has_pair"] else is_orthogonal_pair(ov, record["witness"])
    status, out, _ = cli("solve", path, "--solver", "blas")
    assert ("s ORTHOGONAL PAIR" in out) == record["has_pair"]


def test_solve_detects_dimacs_by_content(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "formula.data"
    path.write_bytes(b"c no suffix\np cnf 2 2\n1 2 0\n-1 0\n")
    status, out, _ = cli("solve", path, "--json")
    assert status == 0 and json.loads(out)["witness"] == [-1, 2]


@pytest.mark.parametrize("path", BAD_DIMACS, ids=[p.name for p in BAD_DIMACS])
def test_bad_dimacs_files_give_one_line_and_exit_2(cli, path: Path) -> None:  # type: ignore[no-untyped-def]
    status, out, err = cli("solve", path)
    assert status == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"finegrain solve: error: {path}")


def test_lenient_flag_reads_layout_variants(cli) -> None:  # type: ignore[no-untyped-def]
    path = next(p for p in BAD_DIMACS if p.name == "satlib_percent_trailer.cnf")
    assert cli("solve", path)[0] == 2
    status, out, _ = cli("solve", path, "--lenient", "--json")
    assert status == 0 and json.loads(out)["satisfiable"] is True


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["missing.cnf"], "cannot read the file"),
        (["{php}", "--solver", "nope"], "unknown SAT solver 'nope'"),
        (["{ov}", "--solver", "nope"], "method"),
    ],
)
def test_solve_errors_give_one_line(cli, tmp_path: Path, argv: list[str], fragment: str) -> None:  # type: ignore[no-untyped-def]
    from reductions.problems.cnf import write_dimacs
    from reductions.problems.ov import write_ov

    write_dimacs(families.pigeonhole(2), tmp_path / "php.cnf")
    write_ov(random_ov(3, 3, 4, seed=1), tmp_path / "a.ov")
    argv = [a.format(php=tmp_path / "php.cnf", ov=tmp_path / "a.ov") for a in argv]
    status, out, err = cli("solve", *argv)
    assert status == 2 and out == "" and err.count("\n") == 1 and fragment in err

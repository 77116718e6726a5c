"""DIMACS reading and writing, the CNF helpers and the checker (reductions.problems.cnf)."""

from __future__ import annotations

import gzip
import io
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysat.formula import CNF

from attention.errors import FinegrainError
from reductions.errors import DimacsError, InvalidInstance
from reductions.problems.cnf import (
    dimacs_string,
    drop_tautologies,
    is_satisfying,
    make_cnf,
    parse_dimacs,
    planted_comment,
    planted_model,
    read_cnf,
    read_provenance,
    write_dimacs,
)

BAD = Path(__file__).resolve().parents[1] / "data" / "bad" / "dimacs"
#: The equivalent clean formula of the files that lenient mode accepts.
CLEAN = b"p cnf 3 2\n1 -2 0\n2 3 0\n"

#: file -> (line the strict error names, what the message says, lenient mode reads it).
BAD_FILES = {
    "missing_header.cnf": ("2", "before the 'p cnf", False),
    "bad_header.cnf": ("2", "bad header", False),
    "bad_header_kind.cnf": ("1", "bad header", False),
    "second_header.cnf": ("3", "second header (the first is at line 1)", False),
    "literal_out_of_range.cnf": ("4", "literal -4 is out of range: the header declares 3 variables", False),
    "non_integer_token.cnf": ("3", "'x3' is not an integer literal", False),
    "missing_final_zero.cnf": ("3", "does not end in 0", False),
    "too_few_clauses.cnf": ("3 (end of file)", "declares 3 clauses but the file has 2", False),
    "too_many_clauses.cnf": ("3", "more clauses than the 1 the header declares", False),
    "two_clauses_one_line.cnf": ("2", "0 in the middle of the line", True),
    "clause_spanning_lines.cnf": ("2", "does not end in 0", True),
    "satlib_percent_trailer.cnf": ("5", "'%' end marker", True),
    "empty.cnf": ("1 (end of file)", "the file is empty", False),
    "only_comments.cnf": ("2 (end of file)", "no 'p cnf", False),
    "bom.cnf": ("1", "byte-order mark", True),
    "crlf.cnf": ("1", "Windows line ending", True),
    "huge_literal.cnf": ("2", "literal 12345678901234567890... (30 digits) is out of range", False),
    "huge_variable_count.cnf": ("1", "at most 2147483647 are supported", False),
    "binary_garbage.cnf": ("2", "binary data (byte 0x1a)", False),
    "latin1_comment.cnf": ("1", "comment is not valid UTF-8 (byte 0xe9 at column 14)", True),
    "indented_header.cnf": ("1", "blanks before 'p'", True),
}


def test_every_bad_file_is_in_the_table() -> None:
    assert {p.name for p in BAD.glob("*.cnf")} == set(BAD_FILES)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_gives_one_clear_error_naming_file_and_line(name: str) -> None:
    line, text, lenient_ok = BAD_FILES[name]
    path = BAD / name
    with pytest.raises(DimacsError) as info:
        read_cnf(path)
    message = str(info.value)
    assert message.startswith(f"{path} line {line}: "), message
    assert text in message
    assert "\n" not in message
    if lenient_ok:
        cnf = read_cnf(path, strict=False)
        clean = parse_dimacs(CLEAN)
        assert (cnf.nv, cnf.clauses) == (clean.nv, clean.clauses)
    else:
        with pytest.raises(DimacsError, match=rf"^{re.escape(str(path))} line "):
            read_cnf(path, strict=False)


def test_bad_gzip_names_the_file() -> None:
    path = BAD / "bad_gzip.cnf.gz"
    for strict in (True, False):
        with pytest.raises(DimacsError, match=rf"^{re.escape(str(path))}: starts like a gzip file"):
            read_cnf(path, strict=strict)


def test_missing_file_is_a_finegrain_error(tmp_path: Path) -> None:
    with pytest.raises(FinegrainError, match="cannot read the file"):
        read_cnf(tmp_path / "absent.cnf")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("p cnf 2 1\n1 +2 0\n", 2, "'+2' is not an integer"),
        ("p cnf 2 1\n1 -0 0\n", 2, "'-0' is not an integer"),
        ("p cnf 2 1\n1 2.0 0\n", 2, "'2.0' is not an integer"),
        ("p cnf -1 0\n", 1, "bad header"),
        ("p cnf 2\n", 1, "bad header"),
        ("p cnf 2 1 7\n1 0\n", 1, "bad header"),
        ("c\np cnf 2 1\n\n   \n1 3 0\n", 5, "literal 3 is out of range"),
    ],
)
def test_strict_error_lines(text: str, line: int, fragment: str) -> None:
    with pytest.raises(DimacsError, match=rf"^f\.cnf line {line}: .*{re.escape(fragment)}"):
        parse_dimacs(text, source="f.cnf")


def test_edge_cases_are_legal_dimacs() -> None:
    empty = parse_dimacs("p cnf 0 0\n")
    assert (empty.nv, empty.clauses) == (0, [])
    cnf = parse_dimacs("c x\np cnf 5 4\n0\n1 -1 0\n2 2 -3 0\n  4   -1\t0\n")
    assert cnf.nv == 5  # variable 5 occurs in no clause: the header's count is kept
    assert cnf.clauses == [[], [1, -1], [2, 2, -3], [4, -1]]
    assert cnf.comments == ["c x"]
    assert parse_dimacs("p cnf 2 1\n1 2 0").clauses == [[1, 2]]  # no final newline


def test_lenient_mode_spans_and_shares_lines() -> None:
    cnf = parse_dimacs("p cnf 4 3\n1\n-2\n0 3 0\n4 -1 0", strict=False)
    assert cnf.clauses == [[1, -2], [3], [4, -1]]
    with pytest.raises(DimacsError, match=r"line 2 \(end of file\): the last clause \(from line 2\)"):
        parse_dimacs("p cnf 4 1\n1 2", strict=False)


def test_gzip_is_read_in_both_modes(tmp_path: Path) -> None:
    path = tmp_path / "f.cnf.gz"
    path.write_bytes(gzip.compress(CLEAN))
    for strict in (True, False):
        assert read_cnf(path, strict=strict).clauses == [[1, -2], [2, 3]]


# --------------------------------------------------------------------------- round trips


@st.composite
def formulas(draw: st.DrawFn, max_vars: int = 12) -> CNF:
    """CNFs with unused variables, empty clauses, tautologies and repeated literals."""
    top = draw(st.integers(0, max_vars))
    nv = top + draw(st.integers(0, 3))
    literal = st.integers(1, max(top, 1)).flatmap(lambda v: st.sampled_from([v, -v]))
    clause = st.lists(literal, max_size=5) if top else st.just([])
    clauses = draw(st.lists(clause, max_size=12))
    text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
    comments = draw(st.lists(text, max_size=2))
    return make_cnf(clauses, nv=nv, comments=comments)


@given(formulas(), st.booleans())
def test_write_read_round_trip_is_exact(cnf: CNF, compressed: bool) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.cnf.gz" if compressed else "f.cnf")
        write_dimacs(cnf, path, provenance={"seed": 7, "command": "finegrain test"})
        back = read_cnf(path)
        assert gzip.decompress(path.read_bytes()) if compressed else True
    assert (back.nv, back.clauses) == (cnf.nv, cnf.clauses)
    assert back.comments[1:] == cnf.comments
    assert read_provenance(back) == {"seed": 7, "command": "finegrain test"}


@given(formulas())
def test_parser_agrees_with_pysat_and_cnfgen_readers(cnf: CNF) -> None:
    from cnfgen.utils.parsedimacs import parse_dimacs as cnfgen_parse

    text = dimacs_string(cnf)
    ours = parse_dimacs(text)
    pysat = CNF(from_string=text)
    assert pysat.clauses == ours.clauses
    assert pysat.nv == max((abs(lit) for c in ours.clauses for lit in c), default=0)  # pysat drops the header count
    n, m, *clauses = cnfgen_parse(io.StringIO(text))
    assert (n, m) == (ours.nv, len(ours.clauses))
    assert [list(c) for c in clauses] == ours.clauses


@pytest.mark.parametrize("seed", range(3))
def test_parser_reads_cnfgen_and_pysat_output(seed: int) -> None:
    import cnfgen

    F = cnfgen.RandomKCNF(3, 12, 40, seed=seed)
    ours = parse_dimacs(F.to_dimacs())
    assert ours.nv == F.number_of_variables()
    assert ours.clauses == [list(c) for c in F.clauses()]
    pysat = CNF(from_clauses=ours.clauses)
    pysat.nv = 15
    again = parse_dimacs(pysat.to_dimacs())
    assert (again.nv, again.clauses) == (15, ours.clauses)


def test_pysat_keeps_nv_only_as_the_module_docstring_says() -> None:
    cnf = CNF(from_clauses=[[1, -2]])
    assert cnf.nv == 2  # from_clauses recomputes: the header count must be set afterwards
    cnf.nv = 6
    cnf.append([3])
    cnf.extend([[-4, 1]])
    assert cnf.nv == 6 and cnf.copy().nv == 6
    assert parse_dimacs(cnf.to_dimacs()).nv == 6
    cnf.append([9])
    assert cnf.nv == 9


def test_write_refuses_overwrite_and_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "f.cnf"
    write_dimacs(make_cnf([[1]]), path)
    with pytest.raises(FinegrainError, match="--force"):
        write_dimacs(make_cnf([[2]]), path)
    assert read_cnf(path).clauses == [[1]]
    write_dimacs(make_cnf([[2]]), path, force=True)
    assert read_cnf(path).clauses == [[2]]
    bad = make_cnf([[1]])
    bad.clauses.append([5])  # out of range for nv = 1: nothing may be written
    with pytest.raises(InvalidInstance, match="clause 2: literal 5 is out of range"):
        write_dimacs(bad, tmp_path / "g.cnf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.cnf"]


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    cnf = make_cnf([[1, -2], [3]], nv=4)
    for name in ("a.cnf.gz", "b.cnf.gz"):
        write_dimacs(cnf, tmp_path / name, provenance={"seed": 1})
    assert (tmp_path / "a.cnf.gz").read_bytes() == (tmp_path / "b.cnf.gz").read_bytes()


def test_make_cnf_validates() -> None:
    with pytest.raises(InvalidInstance, match="nv = 2 but a clause uses variable 3"):
        make_cnf([[1, -3]], nv=2)
    with pytest.raises(InvalidInstance, match="not an integer"):
        make_cnf([[1, "2"]])
    with pytest.raises(InvalidInstance, match="nv = -1"):
        make_cnf([], nv=-1)


def test_planted_model_comment_round_trip() -> None:
    cnf = make_cnf([[1, -2]], nv=3, comments=[planted_comment([1, -2, 3])])
    assert planted_model(parse_dimacs(dimacs_string(cnf))) == [1, -2, 3]
    assert planted_model(make_cnf([[1]])) is None


# --------------------------------------------------------------------------- fuzzing


def _check_read(data: bytes, strict: bool) -> CNF | None:
    try:
        cnf = parse_dimacs(data, strict=strict)
    except DimacsError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("<string>")
        return None
    assert all(0 < abs(lit) <= cnf.nv for c in cnf.clauses for lit in c)
    return cnf


@given(st.binary(max_size=200), st.booleans(), st.booleans())
def test_random_bytes_give_a_cnf_or_a_dimacs_error(data: bytes, strict: bool, compressed: bool) -> None:
    _check_read(gzip.compress(data) if compressed else data, strict)


TOKENS = [b" ", b"\n", b"\t", b"\r\n", b"0", b"1", b"-", b"7", b"c ", b"p ", b"cnf", b"%", b"x", b"\xef\xbb\xbf"]
TOKENS += [b"\xe9", b"\x00"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid DIMACS file with a few bytes deleted, inserted or replaced, or lines swapped."""
    data = bytearray(dimacs_string(draw(formulas(max_vars=6))).encode())
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "swap"]))
        if action == "swap":
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
            continue
        stop = where + (draw(st.integers(1, 3)) if action != "insert" else 0)
        data[where:stop] = b"" if action == "delete" else draw(st.sampled_from(TOKENS))
    return bytes(data)


@given(mutated())
def test_mutated_files_give_a_cnf_or_a_dimacs_error(data: bytes) -> None:
    from cnfgen.utils.parsedimacs import parse_dimacs as cnfgen_parse

    strict = _check_read(data, strict=True)
    lenient = _check_read(data, strict=False)
    if strict is not None:  # lenient mode accepts everything strict mode does, with the same result
        assert lenient is not None and (lenient.nv, lenient.clauses) == (strict.nv, strict.clauses)
    if lenient is not None and b"%" not in data and not data.startswith(b"\xef\xbb\xbf"):
        # cnfgen's reader is at least as permissive as our lenient mode (minus '%' and BOM)
        n, m, *clauses = cnfgen_parse(io.StringIO(data.decode("utf-8", errors="replace")))
        assert (n, [list(c) for c in clauses]) == (lenient.nv, lenient.clauses)


# --------------------------------------------------------------------------- checker


@settings(max_examples=40)
@given(formulas(max_vars=8), st.data())
def test_is_satisfying_matches_clause_by_clause_evaluation(cnf: CNF, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.booleans(), min_size=cnf.nv, max_size=cnf.nv))
    model = [v if values[v - 1] else -v for v in range(1, cnf.nv + 1)]
    expected = all(any(values[abs(lit) - 1] == (lit > 0) for lit in clause) for clause in cnf.clauses)
    assert is_satisfying(cnf, model) == expected
    assert is_satisfying(drop_tautologies(cnf), model) == expected


def test_is_satisfying_rejects_non_assignments() -> None:
    cnf = make_cnf([[1, 2]], nv=2)
    assert not is_satisfying(cnf, [1, -1])
    assert not is_satisfying(cnf, [3])
    assert not is_satisfying(cnf, [0, 1])
    assert is_satisfying(cnf, [2])  # partial, but every clause has a true literal
    with pytest.raises(InvalidInstance, match="not an integer literal"):
        is_satisfying(cnf, ["1"])


def test_drop_tautologies_keeps_models() -> None:
    cnf = make_cnf([[1, -1], [2, 2, -3], [-3, 3, 1]], nv=3)
    clean = drop_tautologies(cnf)
    assert clean.clauses == [[2, -3]] and clean.nv == 3
    for values in itertools.product([False, True], repeat=3):
        model = [v if values[v - 1] else -v for v in (1, 2, 3)]
        assert is_satisfying(cnf, model) == is_satisfying(clean, model)

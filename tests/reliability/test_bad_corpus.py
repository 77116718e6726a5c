"""Every malformed file under ``tests/data/bad`` gets one clear error: in the library and on the CLI.

Library: the reader raises exactly the catalogued :class:`~attention.errors.FinegrainError`
subclass, on one line, naming the file and the problem.  CLI: ``finegrain solve FILE``,
``grad FILE``, ``reduce FILE -o OUT`` and ``verify FILE`` exit with status 2 and print exactly
one line on stderr (no traceback, nothing on stdout, no output file), whatever the file's
format.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import attention.errors as attention_errors
import reductions.errors as reduction_errors
from attention import AttentionInstance
from reductions.cli import main
from reductions.problems.cnf import read_cnf
from reductions.problems.ov import read_ov

_spec = importlib.util.spec_from_file_location("bad_corpus", Path(__file__).with_name("bad_corpus.py"))
bad_corpus = importlib.util.module_from_spec(_spec)
sys.modules["bad_corpus"] = bad_corpus
_spec.loader.exec_module(bad_corpus)

ROOT = bad_corpus.ROOT
CASES = {case.path.relative_to(ROOT).as_posix(): case for case in bad_corpus.CASES}
DIMACS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "dimacs").iterdir())
EVERY_FILE = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file())


def error_class(name: str) -> type:
    return getattr(reduction_errors, name, None) or getattr(attention_errors, name)


def test_the_catalogue_lists_exactly_the_files_on_disk():
    on_disk = {f for f in EVERY_FILE if not f.startswith("dimacs/")}
    assert on_disk == set(CASES)
    assert len(EVERY_FILE) == len(CASES) + len(DIMACS) >= 80


def test_the_builder_reproduces_the_committed_files(tmp_path):
    bad_corpus.build(tmp_path)
    for name, case in CASES.items():
        assert (tmp_path / name).read_bytes() == case.path.read_bytes(), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_library_reader_raises_one_clear_error(name):
    case = CASES[name]
    reader = AttentionInstance.load if case.name.startswith("att_") else read_ov
    with pytest.raises(attention_errors.FinegrainError) as info:
        reader(case.path)
    assert type(info.value) is error_class(case.error)
    message = str(info.value)
    assert case.phrase in message
    assert str(case.path) in message and "\n" not in message


@pytest.mark.parametrize("name", DIMACS)
def test_the_dimacs_reader_names_file_and_line(name):
    path = ROOT / name
    with pytest.raises(reduction_errors.DimacsError) as info:
        read_cnf(path)
    message = str(info.value)
    assert message.startswith(f"{path}") and "\n" not in message
    assert " line " in message or "gzip" in message


COMMANDS = {
    "solve": lambda path, out: ["solve", path],
    "grad": lambda path, out: ["grad", path],
    "reduce": lambda path, out: ["reduce", path, "--to", "ov", "-o", out],
    "verify": lambda path, out: ["verify", path],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name", EVERY_FILE)
def test_the_cli_exits_2_with_one_line(name, command, capsys, tmp_path):
    path = str(ROOT / name)
    status = main(COMMANDS[command](path, str(tmp_path / "out.ov")))
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"finegrain {command}: error: "), err
    assert "Traceback" not in err and path in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


#: Command lines with bad values (found by a sweep of every subcommand's options).
BAD_ARGUMENTS = [
    (["generate", "ov", "--n", "-1", "--m", "5"], "n_U: expected an integer >= 0"),
    (["generate", "ov", "--n", "4", "--m", "5", "--p", "nan"], "p: expected a probability"),
    (["generate", "ksat", "--vars", "3", "--clauses", "5", "--k", "10"], "a clause needs k distinct variables"),
    (["generate", "coloring", "--graph", "cycle:-5", "--colors", "3"], "graph 'cycle:-5'"),
    (["reduce", "{cnf}", "--to", "gradient", "--option", "mu=1e308", "-o", "{out}.npz"], "mu = 1e+308: at most"),
    (["reduce", "{cnf}", "--to", "gradient", "--option", "mu=nan", "-o", "{out}.npz"], "mu: the target entry size"),
    (["reduce", "{cnf}", "--path", "ksat_to_ov,bogus", "-o", "{out}.npz"], "no rule named 'bogus'"),
    (["solve", "{cnf}", "--via", "nonsense"], "unknown problem 'nonsense'"),
    (["solve", "{cnf}", "--solver", "bogus"], "unknown SAT solver 'bogus'"),
    (["solve", "/"], "cannot read the file"),
    (["generate", "ov", "--n", "3", "--m", "3", "-o", "/proc/version", "--force"], "cannot create a file in /proc"),
]


@pytest.mark.parametrize("argv, phrase", BAD_ARGUMENTS, ids=[" ".join(a[:3]) for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_exit_2_with_one_line(argv, phrase, tmp_path, capsys):
    cnf = tmp_path / "f.cnf"
    cnf.write_text("p cnf 3 2\n1 -2 0\n2 3 0\n")
    argv = [a.format(cnf=cnf, out=tmp_path / "out") for a in argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and phrase in lines[0] and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.cnf"]

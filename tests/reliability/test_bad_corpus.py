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
import attention.memory
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


def given_memory(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tell the readers the memory a case is catalogued with (a bomb's expansion exceeds it)."""
    case = CASES.get(name)
    if case is not None and case.available is not None:
        monkeypatch.setattr(attention.memory, "available_memory", lambda: case.available)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_library_reader_raises_one_clear_error(name, monkeypatch):
    case = CASES[name]
    given_memory(name, monkeypatch)
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
def test_the_cli_exits_2_with_one_line(name, command, capsys, tmp_path, monkeypatch):
    given_memory(name, monkeypatch)
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


# ----------------------------------------------------------------------------- compressed bombs
_MEASURE = """
import json, sys
import numpy as np
import attention.memory
from attention import AttentionInstance
from attention.errors import FinegrainError
from reductions.problems.ov import read_ov

path, mode, array = sys.argv[1:4]
attention.memory.available_memory = lambda: 64 * 2**20
reader = AttentionInstance.load if array == "A1" else read_ov


def peak_kib():  # this process's own peak (ru_maxrss would include the parent's, inherited across exec)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


reader(sys.argv[4])  # warm-up on a good file: imports and first-call allocations
before = peak_kib()
error = None
try:
    if mode == "reader":
        reader(path)
    else:  # what numpy.load does on its own: allocate the declared shape, then decompress into it
        with np.load(path, allow_pickle=False) as archive:
            archive[array]
except FinegrainError as exc:
    error = type(exc).__name__
print(json.dumps({"error": error, "growth_kib": peak_kib() - before}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak resident set from /proc")
@pytest.mark.parametrize("array", ["A1", "U"])
def test_a_deflate_bomb_is_refused_before_its_expansion_is_allocated(array, tmp_path):
    """256 MiB of zeros in a 260 kB archive, read by a child process told 64 MiB are available:
    the reader refuses it with a ResourceError and its peak resident set (``VmHWM``) grows by
    less than 16 MiB; numpy alone (the control) decompresses all 256 MiB."""
    import json
    import subprocess

    good, bomb = tmp_path / "good.npz", tmp_path / "bomb.npz"
    if array == "A1":
        members = {k: v for k, v in bad_corpus._good_att_members.items() if k != "A1.npy"}
        bad_corpus._bomb(members, "A1.npy", "<f8", (2**24, 2))(bomb)
        AttentionInstance.random(n=4, d=2, seed=1).save(good)
    else:
        members = {k: v for k, v in bad_corpus._good_ov_npz.items() if k != "U.npy"}
        bad_corpus._bomb(members, "U.npy", "|u1", (2**22, 64))(bomb)
        bad_corpus._arrays(U=bad_corpus.U2, V=bad_corpus.V2, meta=bad_corpus.GOOD_META)(good)
    assert bomb.stat().st_size < 2**20

    def child(mode: str) -> dict:
        run = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(bomb), mode, array, str(good)],
            capture_output=True, text=True, check=True,
        )
        return json.loads(run.stdout)

    guarded, control = child("reader"), child("numpy")
    assert guarded["error"] == "ResourceError" and guarded["growth_kib"] < 16 * 1024
    assert control["error"] is None and control["growth_kib"] > 200 * 1024


def test_a_header_declaring_terabytes_is_refused_after_reading_the_header_only():
    import tracemalloc

    for name in ("npz/att_huge_declared_shape.npz", "npz/ov_huge_declared_shape.npz"):
        reader = AttentionInstance.load if "att_" in name else read_ov
        tracemalloc.start()
        with pytest.raises(attention_errors.InvalidInstance, match="its header declares"):
            reader(ROOT / name)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2**20

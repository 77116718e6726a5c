"""Outputs are written atomically and never overwrite without ``--force``; interrupts lose nothing.

``attention.fileio.atomic_write`` writes a temporary file beside the target and renames it
over the target only when the block succeeds.  Shown here: an exception or a
``KeyboardInterrupt`` inside the block leaves no file (and an old file untouched); every
command that writes refuses an existing output without ``--force`` (before doing the work);
and a real SIGINT or SIGTERM sent to ``finegrain generate ... -o`` while it writes a large
file ends it with a message and exit status 130, leaving no half-written file and no
temporary file behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attention.errors import OutputExists
from attention.fileio import atomic_write
from reductions.cli import main
from reductions.problems.ov import read_ov

SENTINEL = "an earlier result that must survive\n"


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic_write left in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- atomic_write itself
@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [False, True])
def test_a_failure_inside_the_block_leaves_nothing_and_keeps_the_old_file(tmp_path, failure, existing):
    target = tmp_path / "out.txt"
    if existing:
        target.write_text(SENTINEL)
    with pytest.raises(failure):
        with atomic_write(target, "w", force=True) as fh:
            fh.write("half of a new result")
            fh.flush()
            assert leftovers(tmp_path)  # the data goes to a temporary file, not to the target
            raise failure()
    assert leftovers(tmp_path) == []
    assert (target.read_text() == SENTINEL) if existing else not target.exists()


def test_an_interrupt_as_the_temporary_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    """The race a real signal can hit: the temporary file exists, the call that created it has not
    returned yet (found by the SIGINT test below under load)."""
    import attention.fileio as fileio

    real_open = os.open

    def created_then_interrupted(*args, **kwargs):
        os.close(real_open(*args, **kwargs))
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "open", created_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "out.txt", "w") as fh:
            fh.write("never")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_successful_block_replaces_the_target_only_with_force(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text(SENTINEL)
    with pytest.raises(OutputExists, match="--force"):
        with atomic_write(target, "w") as fh:
            fh.write("new")
    assert target.read_text() == SENTINEL
    with atomic_write(target, "w", force=True) as fh:
        fh.write("new")
    assert target.read_text() == "new" and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- every writing command
def _cnf(folder: Path) -> str:
    path = folder / "in.cnf"
    path.write_text("p cnf 3 2\n1 -2 0\n2 3 0\n")
    return str(path)


WRITERS = {
    "generate ksat": lambda f, o: ["generate", "ksat", "--vars", "6", "--clauses", "12", "--seed", "1", "-o", o],
    "generate ksat gz": lambda f, o: ["generate", "ksat", "--vars", "6", "--clauses", "12", "--seed", "1", "-o", o + ".gz"],
    "generate ov": lambda f, o: ["generate", "ov", "--n", "4", "--m", "5", "--seed", "1", "-o", o],
    "generate ov npz": lambda f, o: ["generate", "ov", "--n", "4", "--m", "5", "--seed", "1", "-o", o + ".npz"],
    "generate php": lambda f, o: ["generate", "php", "--holes", "3", "-o", o],
    "generate coloring": lambda f, o: ["generate", "coloring", "--graph", "cycle:5", "--colors", "3", "-o", o],
    "reduce to ov": lambda f, o: ["reduce", _cnf(f), "--to", "ov", "-o", o],
    "reduce to gradient": lambda f, o: ["reduce", _cnf(f), "--to", "gradient", "-o", o + ".npz"],
    "verify --counterexample": lambda f, o: ["verify", _cnf(f), "--to", "ov", "--counterexample", o, "--max-examples", "3"],
    "verify --plot": lambda f, o: ["verify", _cnf(f), "--to", "gradient", "--plot", o + ".svg"],
    "bench -o": lambda f, o: ["bench", "oracle", "--quick", "-o", o + ".json"],
}


def _output_of(argv: list[str]) -> Path:
    for flag in ("-o", "--counterexample", "--plot"):
        if flag in argv:
            return Path(argv[argv.index(flag) + 1])
    raise AssertionError(argv)


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_an_existing_output_is_refused_without_force(command, tmp_path, capsys):
    argv = WRITERS[command](tmp_path, str(tmp_path / "out"))
    out = _output_of(argv)
    out.write_text(SENTINEL)
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "exists" in err[0] and "--force" in err[0]
    assert out.read_text() == SENTINEL and leftovers(tmp_path) == []


@pytest.mark.parametrize("command", sorted(set(WRITERS) - {"bench -o", "verify --counterexample", "verify --plot"}))
def test_force_replaces_the_output_atomically(command, tmp_path, capsys):
    argv = WRITERS[command](tmp_path, str(tmp_path / "out")) + ["--force"]
    out = _output_of(argv)
    out.write_text(SENTINEL)
    assert main(argv) == 0, capsys.readouterr().err
    assert out.read_bytes() != SENTINEL.encode() and leftovers(tmp_path) == []


def test_a_keyboard_interrupt_while_writing_exits_130_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """The interrupt arrives inside atomic_write's block, after part of the OV text is written."""
    import reductions.problems.ov as ov_module

    real = ov_module.iter_ov_text

    def interrupted(ov, rows=ov_module.TEXT_CHUNK_ROWS):
        chunks = real(ov, rows=1)
        yield next(chunks)
        yield next(chunks)
        raise KeyboardInterrupt

    monkeypatch.setattr(ov_module, "iter_ov_text", interrupted)
    out = tmp_path / "out.ov"
    out.write_text(SENTINEL)
    status = main(["generate", "ov", "--n", "4", "--m", "5", "--seed", "1", "-o", str(out), "--force"])
    assert status == 130
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "interrupted" in err[0]
    assert out.read_text() == SENTINEL and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- real signals
def _signal_while_writing(folder: Path, sig: int, n: int) -> tuple[subprocess.CompletedProcess, bool]:
    """Run ``finegrain generate ov`` with ``2n`` vectors; send ``sig`` once its temporary file exists.

    Returns the finished process and whether the signal was sent while the temporary file
    existed (False when the write finished between two polls).
    """
    out = folder / "big.ov"
    argv = [sys.executable, "-m", "reductions.cli", "generate", "ov", "--n", str(n), "--m", "64",
            "--seed", "3", "-o", str(out), "--force"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sent = False
    while proc.poll() is None:
        if leftovers(folder):
            proc.send_signal(sig)
            sent = True
            break
        time.sleep(0.002)
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr), sent


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_real_signal_while_writing_a_large_file_leaves_no_half_written_file(tmp_path, sig):
    out = tmp_path / "big.ov"
    out.write_text(SENTINEL)
    n = 400_000
    for _ in range(4):  # the write is caught in the act on the first try in practice
        done, sent = _signal_while_writing(tmp_path, sig, n)
        if sent:
            break
        out.write_text(SENTINEL)
        n *= 2
    assert sent, "the temporary file was never seen"
    assert leftovers(tmp_path) == []
    if done.returncode == 0:  # the signal landed after the rename: the file is complete
        assert read_ov(out).n_U == n
        return
    assert done.returncode == 130
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in done.stderr
    assert out.read_text() == SENTINEL  # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.ov"]


# ----------------------------------------------------------------------------- operating-system errors
def test_os_errors_while_writing_are_one_clear_error(tmp_path, monkeypatch):
    """No directory entry can be made (here /proc), the disk fills up mid-write, the target is a
    directory: a FinegrainError naming the file; no temporary file; an old file untouched."""
    from attention.errors import FinegrainError

    with pytest.raises(FinegrainError, match="cannot create a file in /proc"):
        with atomic_write("/proc/finegrain-test.txt", "w", force=True) as fh:
            fh.write("x")
    target = tmp_path / "out.txt"
    target.write_text(SENTINEL)
    with pytest.raises(FinegrainError, match="out.txt: cannot write the file .*No space left on device"):
        with atomic_write(target, "w", force=True) as fh:
            fh.write("half")
            raise OSError(28, "No space left on device")
    assert target.read_text() == SENTINEL and leftovers(tmp_path) == []
    folder = tmp_path / "a_directory"
    folder.mkdir()
    with pytest.raises(FinegrainError, match="a_directory: cannot write the file"):
        with atomic_write(folder, "w", force=True) as fh:
            fh.write("x")
    assert folder.is_dir() and leftovers(tmp_path) == []


def test_the_cli_reports_an_unwritable_output_in_one_line(capsys):
    assert main(["generate", "ov", "--n", "3", "--m", "3", "-o", "/proc/version", "--force"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "cannot create a file in /proc" in err[0]

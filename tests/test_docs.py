"""The docs cannot rot: every code block in README.md and docs/ is executed.

Fenced blocks by language:

``console``
    ``$ command`` lines, each followed by the output it printed (stdout and stderr, as a
    terminal shows them).  Each document runs in a fresh temporary directory, its commands
    in order (files written by one are read by the next).  ``finegrain ...`` runs in-process
    through :func:`reductions.cli.main`; anything else through ``sh``.  The printed lines
    must equal the real ones, except that a line ``...`` stands for any number of lines and
    the values listed in :data:`VOLATILE` (timings, speed-ups, round-off-sized numbers)
    are masked on both sides.  A command expected to fail says so in a trailing comment,
    ``# exit status 2``.
``python``
    Doctest examples (``>>>``), one namespace per document, run in the same directory.
``sh``
    Only in README.md: the quick-start commands, run in a fresh virtual environment by the
    slow test at the end.
``text``, ``math`` or no language
    Not code: formulas, tables, file contents; not executed.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
EXECUTED = {"console", "python", "sh"}
NOT_CODE = {"", "text", "math"}

#: Masked before comparing an expected line with the real one: values that change from run
#: to run or machine to machine while the claim they support does not.
VOLATILE = [
    (re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?\s?(?:ms|s|seconds)\b"), "<time>"),  # timings
    (re.compile(r"\d+(?:\.\d+)?x\b"), "<ratio>"),  # speed-ups ("12.3x")
    (re.compile(r"[-+]?\d(?:\.\d+)?e-(?:1[0-9]|[2-9]\d)\b"), "<tiny>"),  # round-off sized, < 1e-9
    (re.compile(r"\d+(?:\.\d+)?\s?(?:it/s|s/it)\b"), "<rate>"),
    (re.compile(r'("\w*(?:time|seconds)\w*": )[-+\d.e]+'), r"\1<time>"),  # timings in JSON
]


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    text: str


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        found = re.search(r"#\s*exit status (\d+)\s*$", self.line)
        return int(found.group(1)) if found else 0


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a markdown file, with their language and first line number."""
    out, lang, start, body = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```(\S*)\s*$", line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower(), number, []
        elif fence and lang is not None and not fence.group(1):
            out.append(Block(path, start, lang, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{path.name}: code block opened at line {start} is never closed"
    return out


def commands(block: Block) -> list[Command]:
    out: list[Command] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            out.append(Command(line[2:]))
        else:
            assert out, f"{block.path.name}:{block.line}: console output before the first '$ ' command"
            out[-1].expected.append(line)
    return out


#: Numbers printed with more than 7 significant digits are compared to 7 (the last digits of
#: a float64 depend on the BLAS's summation order, i.e. on the machine and its threads).
LONG_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{7,}(?:e[-+]?\d+)?")


def normalise(line: str) -> str:
    line = LONG_FLOAT.sub(lambda m: f"{float(m.group()):.7g}", line.rstrip())
    for pattern, mask in VOLATILE:
        line = pattern.sub(mask, line)
    return line


def matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` equals ``actual`` line by line, ``...`` matching any run of lines."""
    exp = [normalise(x) for x in expected]
    act = [normalise(x) for x in actual]
    while exp and exp[-1] == "":
        exp.pop()
    while act and act[-1] == "":
        act.pop()

    def match(i: int, j: int) -> bool:
        if i == len(exp):
            return j == len(act)
        if exp[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(act) + 1))
        return j < len(act) and exp[i] == act[j] and match(i + 1, j + 1)

    return match(0, 0)


def run_command(command: str, cwd: Path) -> tuple[int, str]:
    """Run one documented command; returns (exit status, stdout and stderr interleaved)."""
    argv = shlex.split(command, comments=True)
    if argv and argv[0] == "finegrain" and not any(tok in command for tok in ("|", ">", "&&", ";")):
        from reductions.cli import main

        buffer = io.StringIO()
        old_argv = sys.argv
        sys.argv = argv  # provenance records the command line from sys.argv
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                try:
                    status = main(argv[1:])
                except SystemExit as exc:  # argparse --help / usage errors
                    status = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = old_argv
        return status, buffer.getvalue()
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    return proc.returncode, proc.stdout


# ----------------------------------------------------------------------------- the checks
def test_every_code_block_is_executed_or_marked_as_not_code():
    bad = [f"{b.path.relative_to(ROOT)}:{b.line} ```{b.lang}" for p in DOCS for b in blocks(p)
           if b.lang not in EXECUTED | NOT_CODE or (b.lang == "sh" and p.name != "README.md")]
    assert not bad, "code blocks the test suite would not run (use console/python, or text for non-code): " + ", ".join(bad)


def test_the_block_parser_and_matcher():
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["took 1.5 s, 3.2x faster"], ["took 0.25 s, 12x faster"])
    assert matches(["error 1.1e-16"], ["error 4.4e-17"])
    assert matches(['{"a": 1, "time": 8.2e-05, "seconds_exact": 12}'], ['{"a": 1, "time": 0.5, "seconds_exact": 3.25}'])
    assert not matches(['{"a": 1, "time": 8.2e-05}'], ['{"a": 2, "time": 8.2e-05}'])
    assert not matches(["error 1.1e-06"], ["error 4.4e-07"])  # meaningful numbers are compared
    assert not matches(["a", "b"], ["a", "c"])
    assert not matches(["a"], ["a", "b"])  # extra output is a difference too
    assert Command("finegrain verify x  # exit status 2").status == 2
    assert matches(["[0.12345678901234567, 2]"], ["[0.12345678901234533, 2]"])  # full-precision floats: 7 digits
    assert not matches(["[0.12345678901234567, 2]"], ["[0.12345978901234567, 2]"])


DOC_IDS = [str(p.relative_to(ROOT)) for p in DOCS]


def run_console(block: Block, cwd: Path) -> None:
    """Each ``$ command`` of the block runs and prints the lines shown under it."""
    for cmd in commands(block):
        status, output = run_command(cmd.line, cwd)
        where = f"{block.path.name}:{block.line}"
        assert status == cmd.status, f"{where}: `{cmd.line}` exited {status}:\n{output}"
        assert matches(cmd.expected, output.splitlines()), (
            f"{where}: `{cmd.line}` printed\n{output}\n--- but the docs show ---\n" + "\n".join(cmd.expected)
        )


def run_python(block: Block, globs: dict) -> None:
    """The block's doctest examples, in the document's shared namespace."""
    test = doctest.DocTestParser().get_doctest(block.text, globs, block.path.name, str(block.path), block.line - 1)
    assert test.examples, f"{block.path.name}:{block.line}: python blocks must be doctests (>>> lines)"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    result = runner.run(test, out=report.write, clear_globs=False)
    globs.update(test.globs)  # DocTest works on a copy; the next block sees what this one defined
    assert result.failed == 0, report.getvalue()


@pytest.mark.parametrize("path", DOCS, ids=DOC_IDS)
def test_document_runs_as_shown(path, tmp_path, monkeypatch):
    """The document's console and python blocks, in order, in one fresh directory."""
    monkeypatch.chdir(tmp_path)
    runnable = [b for b in blocks(path) if b.lang in ("console", "python")]
    if not runnable:
        pytest.skip("no console or python blocks")
    globs: dict = {"__name__": "__docs__"}
    for block in runnable:
        if block.lang == "console":
            run_console(block, tmp_path)
        else:
            run_python(block, globs)


def test_relative_links_point_to_files_that_exist():
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if "://" not in target and not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links: " + ", ".join(broken)


def test_api_reference_lists_every_public_name():
    """docs/api.md (python docs/gen_api.py) has a section for each public name of each module."""
    import importlib
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    gen_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_api)
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        f"{module}.{name}"
        for module, _ in gen_api.MODULES
        for name in gen_api.public_names(importlib.import_module(module))
        if f"### `{module}.{name}`" not in text
    ]
    assert not missing, "docs/api.md is missing " + ", ".join(missing) + ": run python docs/gen_api.py"


def test_readme_test_command_is_the_one_ci_runs():
    readme = [b.text.strip() for b in blocks(ROOT / "README.md") if b.lang == "sh"]
    assert "python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "python -m pytest" in [line.strip() for line in ci]


@pytest.mark.slow
def test_readme_quick_start_in_a_fresh_virtual_environment(tmp_path):
    """The README's two commands, in a new venv on a clean copy of the tracked files.

    The install-and-demo command runs verbatim; the test command is run as a collection
    (``--collect-only``): running the whole suite inside the suite would double its time,
    and CI (``.ci/run``) runs it verbatim.
    """
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, text=True, capture_output=True, check=True).stdout.split()
    for name in files:
        src, dst = ROOT / name, tmp_path / "src" / name
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    install, test = [b.text.strip() for b in blocks(ROOT / "README.md") if b.lang == "sh"][:2]
    src = tmp_path / "src"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    first = subprocess.run(["bash", "-c", install], cwd=src, env=env, capture_output=True, text=True, timeout=3600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "agree" in first.stdout
    second = subprocess.run(
        ["bash", "-c", f'. .venv/bin/activate && pip install -q -e ".[test]" && {test} --collect-only -q'],
        cwd=src, env=env, capture_output=True, text=True, timeout=3600,
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

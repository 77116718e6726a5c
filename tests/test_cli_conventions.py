"""Conventions every subcommand keeps: ``--help`` with an example that parses, ``--json``,
``-o`` with ``--force``, and progress bars that are drawn only when asked to (a terminal)."""

from __future__ import annotations

import argparse
import io
import shlex
import sys
import time

import pytest

from reductions.cli import COMMANDS, build_parser, main
from reductions.commands.common import STEPS, ticking

REPORTING = set(COMMANDS)  # every subcommand reports something: all take --json


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)command that runs something: ``("list",)``, ``("generate", "ksat")``, ..."""
    out = []
    for name, parser in _subparsers(build_parser()).items():
        kinds = _subparsers(parser)
        out += [((name, kind), sub) for kind, sub in kinds.items()] if kinds else [((name,), parser)]
    return out


COMMAND_LINES = _commands()
IDS = [" ".join(words) for words, _ in COMMAND_LINES]


def test_the_registry_of_commands_is_what_the_parser_offers() -> None:
    assert set(_subparsers(build_parser())) == set(COMMANDS)
    assert {words[0] for words, _ in COMMAND_LINES} == set(COMMANDS)


@pytest.mark.parametrize(("words", "parser"), COMMAND_LINES, ids=IDS)
def test_help_ends_with_an_example_that_parses_to_the_same_command(words, parser) -> None:  # type: ignore[no-untyped-def]
    epilog = parser.epilog or ""
    assert epilog.startswith("Example: finegrain "), f"finegrain {' '.join(words)} --help has no example"
    example = shlex.split(epilog.removeprefix("Example: "))
    assert example[1 : 1 + len(words)] == list(words), epilog
    args = build_parser().parse_args(example[1:])  # parses (exit 2 on a bad example): not run
    assert args.command == words[0] and callable(args.func)
    if len(words) > 1:
        assert args.kind == words[1]
    assert epilog in parser.format_help().splitlines()  # on one line: copy and paste it


@pytest.mark.parametrize(("words", "parser"), COMMAND_LINES, ids=IDS)
def test_reporting_commands_take_json_and_outputs_take_force(words, parser) -> None:  # type: ignore[no-untyped-def]
    options = {option for action in parser._actions for option in action.option_strings}
    if words[0] in REPORTING:
        assert "--json" in options
    if "-o" in options:
        assert "--force" in options


@pytest.mark.parametrize("words", [("list",), ("generate",), ("generate", "ov"), ("reduce",), ("phase",), ("bench",)])
def test_help_exits_0_and_prints_the_example_on_stdout(words, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main([*words, "--help"])
    out, err = capsys.readouterr()
    assert info.value.code == 0 and err == ""
    assert "Example: finegrain " + " ".join(words) in out.replace("\n", " ")


# ----------------------------------------------------------------------------- progress
def _forced_bars(monkeypatch, module):  # type: ignore[no-untyped-def]
    """Make ``module.progress`` draw into a buffer whatever stderr is; returns (buffer, bars)."""
    from tqdm import tqdm

    buffer: io.StringIO = io.StringIO()
    bars: list[tqdm] = []

    def forced(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.update(disable=False, file=buffer, delay=0, mininterval=0, miniters=1)
        bars.append(tqdm(*args, **kwargs))
        return bars[-1]

    monkeypatch.setattr(module, "progress", forced)
    return buffer, bars


@pytest.mark.parametrize("to_file", [True, False])
def test_generate_progress_bar_counts_generate_and_write(monkeypatch, capsys, tmp_path, to_file) -> None:  # type: ignore[no-untyped-def]
    from reductions.commands import generate
    from reductions.problems.cnf import parse_dimacs

    buffer, bars = _forced_bars(monkeypatch, generate)
    output = ["-o", str(tmp_path / "g.cnf")] if to_file else []
    assert main(["generate", "ksat", "--vars", "10", "--clauses", "30", "--seed", "2", *output]) == 0
    (bar,) = bars
    assert bar.total == bar.n == 2 and bar.disable  # closed: every step counted
    drawn = buffer.getvalue()
    assert "generate ksat" in drawn and ("write g.cnf" in drawn) == to_file
    out = capsys.readouterr().out
    if not to_file:  # the instance is printed after the bar is gone: nothing of the bar in it
        assert parse_dimacs(out).nv == 10 and "\r" not in out and "[" not in out.split("\n", 1)[1]


def test_bars_are_off_when_stderr_is_not_a_terminal(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from reductions.commands.common import progress

    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress(total=2, bar_format=STEPS) as bar, ticking(bar, interval=0.001):
        time.sleep(0.02)
        bar.update(2)
    assert bar.disable
    import sys

    assert sys.stderr.getvalue() == ""


def test_ticking_redraws_the_elapsed_time_while_a_silent_step_runs_and_then_stops() -> None:
    import threading

    from tqdm import tqdm

    buffer = io.StringIO()
    bar = tqdm(total=1, file=buffer, bar_format="{desc} [{elapsed}]", desc="step", mininterval=0)
    before = buffer.getvalue().count("\r")
    with ticking(bar, interval=0.01):
        time.sleep(0.3)  # a step reporting nothing
    redraws = buffer.getvalue().count("\r") - before
    assert redraws >= 3  # ~30 possible; a loaded machine may run the ticker rarely
    assert not any(t.name == "finegrain-progress" for t in threading.enumerate())
    after = buffer.getvalue()
    time.sleep(0.05)
    assert buffer.getvalue() == after  # stopped: no redraw once the step is over
    bar.close()


def test_ticking_respects_the_delay_of_the_bar() -> None:
    from tqdm import tqdm

    buffer = io.StringIO()
    bar = tqdm(total=1, file=buffer, delay=30.0, mininterval=0)
    with ticking(bar, interval=0.005):
        time.sleep(0.05)
    assert buffer.getvalue() == ""  # a short run draws nothing at all
    bar.close()


# ----------------------------------------------------------------------------- bench
def test_bench_knows_every_benchmark_script_of_the_checkout(capsys) -> None:  # type: ignore[no-untyped-def]
    from reductions.commands import bench

    scripts = sorted(p.name for p in bench.benchmarks_dir().glob("bench_*.py"))
    assert scripts == sorted(f"bench_{name}.py" for name in bench.BENCHMARKS)
    assert main(["bench", "--list"]) == 0
    listed = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert list(listed) == list(bench.BENCHMARKS)
    assert listed["soak"].startswith("Soak: the default route on >= 10^4 random instances")
    assert "(not in this checkout)" not in "".join(listed.values())


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("out_tty, err_tty", [(True, True), (False, True), (True, False), (False, False)])
def test_progress_bar_is_drawn_only_when_stdout_and_stderr_are_terminals(monkeypatch, out_tty, err_tty) -> None:  # type: ignore[no-untyped-def]
    from reductions.commands.common import progress

    out, err = _Stream(out_tty), _Stream(err_tty)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with progress(total=3, delay=0) as bar:
        bar.update(3)
        disabled = bar.disable  # (close() disables every bar)
    assert disabled is not (out_tty and err_tty)
    assert ("3/3" in err.getvalue()) is (out_tty and err_tty)
    assert out.getvalue() == ""

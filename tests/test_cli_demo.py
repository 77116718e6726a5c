"""``finegrain demo`` and ``finegrain bench``: library == CLI, exit codes, and what they refuse."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from reductions.cli import main
from reductions.commands import bench


# ----------------------------------------------------------------------------- bench
FAKE = '''
"""Fake benchmark: prints a table and writes its measurements."""
import argparse, json, sys
parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
parser.add_argument("--json")
args = parser.parse_args()
print(f"{NAME}: quick={args.quick}")
if args.json:
    json.dump({"name": "{NAME}", "quick": args.quick}, open(args.json, "w"))
sys.exit(STATUS)
'''


@pytest.fixture
def fake_benchmarks(tmp_path, monkeypatch):
    """A benchmarks/ directory with scripts that echo their arguments (ov fails with status 3)."""
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    for name in ("oracle", "ov", "fast"):
        code = FAKE.replace("{NAME}", name).replace("STATUS", "3" if name == "ov" else "0")
        (folder / f"bench_{name}.py").write_text(textwrap.dedent(code))
    monkeypatch.setattr(bench, "benchmarks_dir", lambda: folder)
    return folder


def test_bench_runs_the_named_scripts_and_passes_quick(fake_benchmarks, capsys):
    assert main(["bench", "fast", "oracle", "--quick"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["fast: quick=True", "oracle: quick=True"]


def test_bench_json_collects_each_scripts_measurements(fake_benchmarks, capsys, tmp_path):
    out_file = tmp_path / "b.json"
    assert main(["bench", "fast", "--json", "-o", str(out_file)]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # stdout is exactly one JSON object
    assert data["benchmarks"] == {"fast": {"name": "fast", "quick": False}}
    assert data["provenance"]["command"].startswith("finegrain bench fast --json")
    assert "fast: quick=False" in captured.err  # the script's table went to stderr
    assert json.loads(out_file.read_text()) == data
    assert main(["bench", "fast", "-o", str(out_file)]) == 2  # never overwrites without --force
    assert "--force" in capsys.readouterr().err
    assert json.loads(out_file.read_text()) == data


def test_bench_reports_a_failing_script_with_status_1(fake_benchmarks, capsys):
    assert main(["bench", "ov", "fast"]) == 1
    captured = capsys.readouterr()
    assert "benchmark ov exited with status 3" in captured.err
    assert "fast: quick=False" in captured.out  # the others still run


@pytest.mark.parametrize(
    "argv, text",
    [(["bench", "nope"], "unknown benchmark 'nope'"), (["bench", "chain"], "bench_chain.py not found")],
)
def test_bench_bad_names_are_one_line_errors(fake_benchmarks, capsys, argv, text):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and len(err.strip().splitlines()) == 1


def test_bench_list_names_every_benchmark(fake_benchmarks, capsys):
    assert main(["bench", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(bench.BENCHMARKS)
    assert "Fake benchmark: prints a table" in lines[0]
    assert "(not in this checkout)" in lines[3]


def test_bench_finds_the_checkouts_benchmarks():
    assert bench.benchmarks_dir() == Path(__file__).resolve().parents[1] / "benchmarks"

"""``finegrain demo`` and ``finegrain bench``: library == CLI, exit codes, and what they refuse."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from reductions.cli import main
from reductions.commands import bench, demo

VARS, SEED = 8, 1  # a satisfiable random 3-CNF with 8 variables, 34 clauses: 32 tokens


@pytest.fixture(scope="module")
def demo_run():
    """One demo run through the CLI (text) and its library result."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["demo", "--vars", str(VARS), "--seed", str(SEED)])
    return status, buffer.getvalue(), demo.run_demo(VARS, SEED)


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


# ----------------------------------------------------------------------------- demo
def test_demo_explains_each_step_with_numbers_computed_independently(demo_run):
    from reductions.generators.ksat import random_ksat
    from reductions.problems.cnf import is_satisfying
    from solvers.sat import solve_sat_bruteforce

    status, text, result = demo_run
    cnf = random_ksat(VARS, ratio=demo.RATIO, seed=SEED)
    m, truth = len(cnf.clauses), solve_sat_bruteforce(cnf).satisfiable
    n_ov = 2 ** math.ceil(VARS / 2)
    s = math.log(8 * n_ov * (n_ov + 1))
    assert status == 0 and truth  # the instance is satisfiable: the demo shows a witness
    assert f"N = {VARS} variables, m = {m} clauses" in text
    assert f"U: {n_ov} vectors" in text and f"dimension m = {m}" in text
    assert f"n = {2 * n_ov} tokens (2 per vector), d = {2 * m + 2} (2m + 2), scale s = ln(8 n_OV (n_OV + 1)) = {s:.3f}" in text
    B = math.sqrt((2 * m + 2) * s)
    assert f"entry bound B = {B:.2f} = {B / math.sqrt(math.log(2 * n_ov)):.1f} sqrt(ln n)" in text
    bits = re.search(r"-> x1\.\.x8 = ([01]{8})", text).group(1)
    model = [v if bit == "1" else -v for v, bit in enumerate(bits, 1)]
    assert is_satisfying(cnf, model)  # the printed assignment is a model
    assert ": SATISFIABLE" in text and "the chain agrees with the SAT solver" in text
    for number in range(1, 8):
        assert re.search(rf"^{number}\. .+\n   \[.+\]$", text, re.M), f"step {number} names its lemma"
    assert len(re.findall(r"^   \[.*(THEORY|AS24|Williams|python-sat)", text, re.M)) == 7


def test_demo_fast_side_agrees_with_the_exact_oracle(demo_run):
    import attention
    from attention import AttentionInstance

    fast = demo_run[2].fast
    inst = AttentionInstance.random(n=fast["n"], d=demo.FAST_D, B=demo.FAST_B, seed=SEED)
    exact = attention.gradient(inst, method="exact").gradient
    reference = attention.gradient(inst, method="mp", digits=30).gradient  # independent of both
    assert fast["error"] <= fast["error_bound"]  # the fast method's guarantee holds
    assert abs(np.abs(exact - reference).max()) < 1e-12 * np.abs(reference).max()
    assert fast["B"] < math.sqrt(math.log(fast["n"])) and fast["rank"] == math.comb(fast["d"] + fast["degree"], fast["degree"])
    assert fast["on_hard_instance"].startswith("refused (ResourceError)")  # the hard instance is out of reach


def test_demo_json_equals_the_library_result(demo_run, capsys):
    assert main(["demo", "--vars", str(VARS), "--seed", str(SEED), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    library = demo_run[2].to_json()
    assert _without_timings(data) == json.loads(json.dumps(_without_timings(library)))
    assert data["ok"] and data["agree"] and data["witness_ok"]


def test_demo_exits_1_when_the_chain_disagrees(monkeypatch, capsys):
    from attention.results import GradientResult

    def broken(calls, instances):  # an oracle that answers 0 and claims to be exact
        def oracle(inst):
            instances.append(inst)
            calls.append(demo.OracleCall(inst.n, inst.d, inst.B, 0.0, 0.0))
            return GradientResult(np.zeros((inst.d, inst.d)), 0.0, 0.0, 0.0, "broken")

        return oracle

    monkeypatch.setattr(demo, "_recording_oracle", broken)
    assert main(["demo", "--vars", str(VARS), "--seed", str(SEED)]) == 1
    out = capsys.readouterr().out
    assert ": UNSATISFIABLE" in out and "the chain DISAGREES with the SAT solver" in out


@pytest.mark.parametrize("vars_", ["2", str(demo.MAX_VARS + 1)])
def test_demo_refuses_sizes_out_of_range_in_one_line(capsys, vars_):
    assert main(["demo", "--vars", vars_]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--vars {vars_}" in err[0]


def test_demo_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0 and "Example: finegrain demo" in capsys.readouterr().out


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


FAKE_FAST = '''
"""Fake fast benchmark: bench_fast.py's JSON layout, with power-law timings."""
import argparse, json, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
parser.add_argument("--json")
args = parser.parse_args()
pathlib.Path(__file__).with_name("ran").write_text("yes")
rows = [{"n": n, "fast_s": 1e-6 * n} for n in (4096, 8192, 16384)]
rows[-1]["exact_s"] = 1e-9 * 16384**2
tried = [{"n": n, "fast_s": 1e-6 * n + 1e-3, "exact_s": 1e-9 * n * n + 1e-4} for n in (32, 64, 128, 256, 512)]
other = [{"n": 32, "fast_s": 9.0, "exact_s": 9.0}]  # another (d, B): not drawn
data = {"scaling": {"rows": rows}, "crossover": [{"d": 4, "B": 1.0, "tried": tried}, {"d": 2, "B": 1.0, "tried": other}]}
json.dump(data, open(args.json, "w"))
'''


def test_bench_fast_plot_draws_the_scripts_timings_with_fitted_slopes(fake_benchmarks, tmp_path, capsys):
    import html

    from reductions.plots import asymptotic

    (fake_benchmarks / "bench_fast.py").write_text(FAKE_FAST)
    out = tmp_path / "scaling.svg"
    assert main(["bench", "fast", "--plot", str(out)]) == 0
    text = html.unescape(out.read_text())
    exact = [(n, 1e-9 * n * n + 1e-4) for n in (32, 64, 128, 256, 512)] + [(16384, 1e-9 * 16384**2)]
    fast = [(n, 1e-6 * n + 1e-3) for n in (32, 64, 128, 256, 512)] + [(n, 1e-6 * n) for n in (4096, 8192, 16384)]
    for name, pts in (("exact", exact), ("fast", fast)):
        fit = asymptotic(pts)
        slope = np.polyfit(np.log([p[0] for p in fit]), np.log([p[1] for p in fit]), 1)[0]
        assert f"{name}: slope {slope:.2f} (fit over n >= {fit[0][0]:g})" in text
    assert f"wrote {out}" in capsys.readouterr().err


def test_bench_plot_is_refused_before_running(fake_benchmarks, tmp_path, capsys):
    (fake_benchmarks / "bench_fast.py").write_text(FAKE_FAST)
    out = tmp_path / "scaling.png"
    out.write_bytes(b"keep")
    assert main(["bench", "fast", "--plot", str(out)]) == 2
    assert main(["bench", "oracle", "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "--force" in err[0] and "run finegrain bench fast --plot FILE" in err[1]
    assert out.read_bytes() == b"keep" and not (fake_benchmarks / "ran").exists()

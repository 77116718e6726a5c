"""``finegrain bench``: run the benchmark scripts of ``benchmarks/`` (one per measured claim).

Each script ``benchmarks/bench_<name>.py`` measures one claim and prints ratios against
baselines measured in the same run; every script takes ``--quick`` (a smoke run) and
``--json FILE`` (its measurements).  This command runs the chosen scripts, one subprocess
each, with the interpreter running finegrain: their tables go to stdout (with ``--json``,
to stderr, and the collected measurements to stdout as one JSON object, keyed by name).
``-o FILE`` also writes that object, with provenance, to FILE.

The scripts live in the source checkout, not in the installed package: run this command
from a checkout installed with ``pip install -e .``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from attention.errors import FinegrainError
from reductions.commands.common import atomic_write, check_output_path, message, print_json, progress, provenance

#: Benchmark names, in the order ``finegrain bench`` runs them: ``benchmarks/bench_<name>.py``
#: each (a test checks that this lists every such script of the checkout).
BENCHMARKS = ("oracle", "ov", "fast", "chain", "distributed", "soak", "guards")


def benchmarks_dir() -> Path:
    """``benchmarks/`` of the source checkout this package was installed from."""
    import reductions

    return Path(reductions.__file__).resolve().parents[1] / "benchmarks"


def script(name: str) -> Path:
    """The script of benchmark ``name``, or a one-line error saying where it was looked for."""
    path = benchmarks_dir() / f"bench_{name}.py"
    if not path.is_file():
        raise FinegrainError(
            f"benchmark {name!r}: {path} not found; the benchmarks ship with the source checkout "
            "(clone the repository and pip install -e . there)"
        )
    return path


def describe(name: str) -> str:
    """The first line of the script's docstring (``-`` if the script is missing)."""
    import ast

    path = benchmarks_dir() / f"bench_{name}.py"
    if not path.is_file():
        return "(not in this checkout)"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def run_benchmark(name: str, quick: bool, bar: Any, json_out: Path | None) -> int:
    """Run one script; its stdout lines are passed on (to stdout, or stderr with ``json_out``)."""
    command = [sys.executable, str(script(name))] + (["--quick"] if quick else [])
    if json_out is not None:
        command += ["--json", str(json_out)]
    sink = sys.stderr if json_out is not None else sys.stdout
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            bar.write(line.rstrip("\n"), file=sink)
    return proc.returncode


#: The setting of bench_fast.py's scaling run, whose timings --plot draws.
FAST_D, FAST_B = 4, 1.0


def fast_timings(data: dict[str, Any], d: int = FAST_D, B: float = FAST_B) -> dict[str, list[tuple[float, float]]]:
    """``{"exact": [(n, s)], "fast": [(n, s)]}`` from bench_fast.py's JSON at one ``(d, B)``.

    Both the scaling rows (fast at every n, exact where measured) and the crossover search's
    rows at the same ``(d, B)`` (both methods, small n) are used: random instances of the
    same distribution, timed in the same run.
    """
    rows = list(data.get("scaling", {}).get("rows", []))
    for cell in data.get("crossover", []):
        if cell.get("d") == d and cell.get("B") == B:
            rows += cell.get("tried", [])
    return {
        method: sorted((float(r["n"]), float(r[f"{method}_s"])) for r in rows if r.get(f"{method}_s") is not None)
        for method in ("exact", "fast")
    }


def _check_plot(path: str, force: bool, names: list[str]) -> None:
    from reductions.plots import check_plot_path

    if "fast" not in names:
        raise FinegrainError("--plot draws the fast benchmark's timings: run finegrain bench fast --plot FILE")
    check_plot_path(path)
    check_output_path(path, force)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help=f"run the benchmark scripts ({', '.join(BENCHMARKS)})",
        description=(
            "Run benchmarks/bench_NAME.py for each NAME (default: all), each printing its "
            "measurements and the ratios against baselines measured in the same run.  --quick "
            "runs the smoke sizes.  Exit status 1 if a benchmark failed or missed its floor."
        ),
        epilog="Example: finegrain bench fast --quick",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke sizes, one repetition")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--json", action="store_true", help="print the measurements as one JSON object")
    parser.add_argument("-o", "--output", help="also write the measurements (JSON, with provenance) to this file")
    parser.add_argument("--plot", metavar="FILE", help="with fast: time vs n, exact vs fast, log-log with slopes (.png/.svg)")
    parser.add_argument("--force", action="store_true", help="overwrite the output and plot files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise FinegrainError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    if args.list:
        for name in BENCHMARKS:
            print(f"{name:<12} {describe(name)}")
        return 0
    out = check_output_path(args.output, args.force) if args.output else None
    if args.plot:
        _check_plot(args.plot, args.force, names)
    paths = [script(name) for name in names]  # refuse a missing script before running anything
    collect = args.json or out is not None or bool(args.plot)
    results: dict[str, Any] = {}
    status = 0
    with tempfile.TemporaryDirectory() as tmp, progress(total=len(paths), desc="benchmarks", unit="script") as bar:
        for name in names:
            bar.set_postfix_str(name)
            target = Path(tmp) / f"{name}.json" if collect else None
            code = run_benchmark(name, args.quick, bar, target)
            if code != 0:
                message(f"finegrain bench: benchmark {name} exited with status {code}")
                status = 1
            if target is not None:
                results[name] = json.loads(target.read_text(encoding="utf-8")) if target.exists() else None
            bar.update(1)
    if args.plot and results.get("fast"):
        from reductions.plots import plot_scaling

        title = f"Attention gradient, d = {FAST_D}, B = {FAST_B:g}: exact oracle vs polynomial method"
        plot_scaling(fast_timings(results["fast"]), args.plot, force=args.force, title=title)
        message(f"wrote {args.plot}")
    if collect:
        record = {"provenance": provenance(None, quick=args.quick), "benchmarks": results}
        if out is not None:
            with atomic_write(out, "w", force=args.force) as fh:
                json.dump(record, fh, indent=1, default=str)
                fh.write("\n")
            message(f"wrote {out}")
        if args.json:
            print_json(record)
    return status

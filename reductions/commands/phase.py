"""``finegrain phase``: the phase-transition experiment of the polynomial-method gradient.

Runs :func:`attention.phase.run_phase` on ``n = 2^10 .. 2^n-max`` and ``B = c sqrt(ln n)``
for ``c`` from 0.25 to 3, writes one CSV row per point (first line: ``# provenance`` JSON)
and, with ``--plot``, the PNG (and an SVG beside it) showing where the fast gradient beats
the exact one and the threshold ``B ~ sqrt(log n)``; both images record the same provenance
as the CSV in their metadata (read it with :func:`reductions.plots.read_plot_provenance`).
``--json`` prints the rows and the measured threshold per ``n`` on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from attention.errors import FinegrainError
from reductions.commands.common import atomic_write, check_output_path, message, print_json, progress, provenance

QUICK_N = (2**10, 2**11)
QUICK_C = (0.25, 0.75, 1.5, 3.0)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "phase",
        help="the phase-transition experiment (fast gradient vs B ~ sqrt(log n)): CSV and plot",
        description=(
            "For n = 2^10 .. 2^N (--n-max) and B = c sqrt(ln n), c in [0.25, 3] (--c-points values), "
            "on random instances with d = round(log2(n)/2) (or --d): the polynomial degree and rank "
            "the fast gradient needs for relative error 1/n of the attention entries, the predicted "
            "cost exponent log_n(fast flops / exact flops) and measured times, and the error reached "
            "at rank budget n^0.5.  Writes a CSV (-o) and a plot (--plot PNG, plus SVG beside it)."
        ),
        epilog="Example: finegrain phase --quick -o phase.csv --plot phase.png",
    )
    parser.add_argument("-o", "--output", required=True, help="CSV file to write")
    parser.add_argument("--plot", help="PNG file to write (an .svg with the same stem is written too)")
    parser.add_argument("--quick", action="store_true", help="n in {2^10, 2^11}, c in {0.25, 0.75, 1.5, 3}")
    parser.add_argument("--n-max", type=int, default=16, metavar="K", help="largest n = 2^K (default 16)")
    parser.add_argument("--c-points", type=int, default=12, help="number of c values in [0.25, 3] (default 12)")
    parser.add_argument("--d", type=int, help="fixed head dimension (default round(log2(n)/2))")
    parser.add_argument("--kind", default="minimax", choices=("minimax", "chebyshev", "taylor"), help="polynomial")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random instances (default 0)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--json", action="store_true", help="print the rows and thresholds as JSON")
    parser.set_defaults(func=run)


def grid(quick: bool, n_max: int, c_points: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The ``(n, c)`` grid of the flags."""
    if quick:
        return QUICK_N, QUICK_C
    if not 10 <= n_max <= 24:
        raise FinegrainError(f"--n-max {n_max}: expected 10 <= K <= 24 (n = 2^K)")
    if not 2 <= c_points <= 200:
        raise FinegrainError(f"--c-points {c_points}: expected 2 .. 200")
    c_values = tuple(round(0.25 + (3.0 - 0.25) * i / (c_points - 1), 4) for i in range(c_points))
    return tuple(2**k for k in range(10, n_max + 1)), c_values


def run(args: argparse.Namespace) -> int:
    from attention.phase import run_phase, threshold, write_csv

    n_values, c_values = grid(args.quick, args.n_max, args.c_points)
    csv_path = check_output_path(args.output, args.force)
    png = svg = None
    if args.plot:
        png = check_output_path(args.plot, args.force)
        if png.suffix.lower() != ".png":
            raise FinegrainError(f"--plot {png}: expected a .png file name")
        svg = check_output_path(png.with_suffix(".svg"), args.force)
    if args.d is not None and args.d < 1:
        raise FinegrainError(f"--d {args.d}: expected a positive head dimension")
    with progress(total=len(n_values) * len(c_values), desc="phase", unit="point") as bar:
        rows = run_phase(
            n_values, c_values, d=args.d, kind=args.kind, seed=args.seed, progress=lambda _row: bar.update(1)
        )
    record = provenance(args.seed, n_values=list(n_values), c_values=list(c_values), d=args.d, kind=args.kind)
    with atomic_write(csv_path, "w", force=args.force) as fh:
        fh.write("# provenance " + json.dumps(record, sort_keys=True) + "\n")
        write_csv(rows, fh)
    message(f"wrote {csv_path} ({len(rows)} rows)")
    if png is not None:
        from attention.phase import phase_figure
        from reductions.plots import save_figures

        save_figures(phase_figure(rows), [png, svg], force=args.force, provenance=record)  # both or neither
        message(f"wrote {png} and {svg}")
    crossing = threshold(rows)
    if args.json:
        print_json({"provenance": record, "threshold_c": {str(n): c for n, c in crossing.items()}, "rows": rows})
    else:
        for n, c in crossing.items():
            at = "no crossing inside the grid" if math.isnan(c) else f"c* = {c:.3f}, B* = {c * math.sqrt(math.log(n)):.3f}"
            print(f"n = 2^{int(round(math.log2(n)))}: fast beats exact for error 1/n below {at}")
    return 0


"""The phase-transition experiment of the polynomial-method gradient: CSV and plot under benchmarks/out/.

Usage::

    python benchmarks/phase_transition.py            # n = 2^10 .. 2^16, 12 values of c = B / sqrt(ln n)
    python benchmarks/phase_transition.py --quick    # n in {2^10, 2^11}, c in {0.25, 0.75, 1.5, 3}

Runs :func:`attention.phase.run_phase` (see its module for what each column means) and
writes ``benchmarks/out/phase.csv``, ``phase.png`` and ``phase.svg`` (``phase_quick.*`` with
``--quick``), overwriting them; prints per ``n`` the threshold ``c*`` where the predicted
cost of error ``1/n`` crosses that of the exact gradient, and their spread (the claim: the
threshold is ``B ~ c* sqrt(ln n)`` with ``c*`` nearly independent of ``n``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from attention.phase import DEFAULT_C, DEFAULT_N, plot_phase, run_phase, threshold, write_csv

OUT = Path(__file__).resolve().parent / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two n, four c values")
    args = parser.parse_args(argv)
    ns, cs = ((2**10, 2**11), (0.25, 0.75, 1.5, 3.0)) if args.quick else (DEFAULT_N, DEFAULT_C)
    OUT.mkdir(exist_ok=True)
    stem = OUT / ("phase_quick" if args.quick else "phase")

    def show(row: dict) -> None:
        status = "censored" if row["censored"] else f"rank {row['rank_needed']}"
        print(
            f"  n = 2^{row['log2_n']:<3d} d = {row['d']} c = {row['c']:<6g} B = {row['B']:6.3f} R = {row['R']:8.3f}  "
            f"degree {row['degree_needed']:3d} ({status}), cost exponent {row['cost_exponent']:+.3f}, "
            f"budget delta {min(row['delta_budget'], 1.0):.2e}",
            flush=True,
        )

    rows = run_phase(ns, cs, progress=show)
    with open(stem.with_suffix(".csv"), "w") as fh:
        write_csv(rows, fh)
    plot_phase(rows, str(stem.with_suffix(".png")), str(stem.with_suffix(".svg")))
    crossing = threshold(rows)
    for n, c in crossing.items():
        print(f"n = 2^{int(round(math.log2(n)))}: threshold c* = {c:.3f}  (B* = {c * math.sqrt(math.log(n)):.3f})")
    found = [c for c in crossing.values() if np.isfinite(c)]
    if found:
        print(f"c* over n: median {np.median(found):.3f}, range {min(found):.3f} .. {max(found):.3f}")
    print(f"wrote {stem}.csv, .png, .svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Orthogonal Vectors brute force: pair checks per second of each method, against the machine's GEMM rate.

Usage::

    python benchmarks/bench_ov.py            # m in {20, 64, 128}, n in {4096, 16384, 65536, 262144}
    python benchmarks/bench_ov.py --quick    # n in {4096, 16384}, one repetition (a smoke run)
    python benchmarks/bench_ov.py --json out.json

What is measured: ``solve_ov(ov, method)`` on ``n x n`` instances with **no** orthogonal
pair, so no method stops early and every pair is checked.  Such instances are built by
design rather than with ``no_pair_ov`` (whose verification is itself an ``n^2`` pass):
random Bernoulli(1/2) vectors with coordinate 0 set to 1 on both sides, so every pair
meets there.  The kernels are branch-free over the pairs (they count zeros), so their speed
does not depend on the data.  ``blas`` and ``numpy`` check ``rows x n`` pairs with
``rows = min(n, max_pairs // n)`` (the full square at the largest n would take minutes);
the rate is what is compared.  Each cell is the best of ``--repeat`` runs (the machine is
shared, the best run is the least disturbed), and packing (``O(n m)``) is done beforehand.

Baselines measured in the same run: the float64 and float32 GEMM rates (``2 N^3`` flops of
an ``N x N`` product); the ``blas`` method needs ``2 m`` flops per pair, so its ceiling is
``GEMM32 / (2 m)`` pairs/s.  Printed ratios: packed / numpy, packed / blas, blas / its ceiling.
Floors (issue 3): packed >= 1e10 pairs/s at m <= 64, n = 65536, and >= 2e9 at m = 128.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable

import numba
import numpy as np

from reductions.problems.ov import OV
from solvers.ov import solve_ov

FULL_N = (4096, 16384, 65536, 262144)
QUICK_N = (4096, 16384)
DIMENSIONS = (20, 64, 128)
METHODS = ("packed", "blas", "numpy")
FLOORS = {20: 1e10, 64: 1e10, 128: 2e9}  # at n = 65536
PAUSE = 0.3  # seconds before each timed run


def best_time(run: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` runs, each after a pause that lets the previous library's spinning
    worker threads (OpenMP of numba, OpenBLAS) go to sleep instead of competing for the cores."""
    best = float("inf")
    for _ in range(repeat):
        time.sleep(PAUSE)
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_rate(dtype: type, size: int, repeat: int) -> float:
    """Flops per second of an ``size x size`` matrix product (``2 size^3`` flops), best of ``repeat``."""
    rng = np.random.default_rng(0)
    A = rng.random((size, size)).astype(dtype)
    B = rng.random((size, size)).astype(dtype)
    A @ B  # warm up the BLAS threads
    return 2.0 * size**3 / best_time(lambda: A @ B, repeat)


def no_pair_instance(n: int, m: int, seed: int) -> OV:
    """n x n, Bernoulli(1/2) vectors, coordinate 0 equal to 1 on both sides: no orthogonal pair by design."""
    rng = np.random.default_rng(seed)
    U = rng.integers(0, 2, (n, m), dtype=np.uint8)
    V = rng.integers(0, 2, (n, m), dtype=np.uint8)
    U[:, 0] = V[:, 0] = 1
    return OV(U, V, meta={"construction": "coordinate 0 is 1 on every vector"})


def measure(ov: OV, method: str, max_pairs: int, repeat: int) -> dict:
    n = ov.n_V
    rows = ov.n_U if method == "packed" else max(1, min(ov.n_U, max_pairs // n))
    sub = ov if rows == ov.n_U else OV(ov.U[:rows], ov.V)
    sub.U_packed, sub.V_packed  # pack outside the timed region
    result: list = []
    seconds = best_time(lambda: result.append(solve_ov(sub, method)), repeat)
    if any(r is not None for r in result):
        raise RuntimeError(f"{method}: found a pair in an instance built to have none")
    return {"method": method, "m": ov.m, "n": n, "rows": rows, "pairs": rows * n, "seconds": seconds,
            "pairs_per_s": rows * n / seconds}


def run(n_values: tuple[int, ...], dimensions: tuple[int, ...], methods: tuple[str, ...], max_pairs: int,
        repeat: int) -> dict:
    print(f"numba {numba.__version__}, {numba.get_num_threads()} threads; numpy {np.__version__}", file=sys.stderr)
    solve_ov(no_pair_instance(300, 130, 0))  # load or compile the kernels before timing
    for m in dimensions:
        solve_ov(no_pair_instance(300, m, 0))
    gemm64 = gemm_rate(np.float64, 2048, repeat=3)
    gemm32 = gemm_rate(np.float32, 2048, repeat=3)
    print(f"GEMM float64 {gemm64:.3g} flop/s, float32 {gemm32:.3g} flop/s", file=sys.stderr)
    cells = []
    for m in dimensions:
        for n in n_values:
            ov = no_pair_instance(n, m, seed=n + m)
            for method in methods:
                cell = measure(ov, method, max_pairs, repeat)
                cells.append(cell)
                print(f"m={m:4d} n={n:7d} {method:7s} {cell['pairs_per_s']:.3g} pairs/s "
                      f"({cell['rows']} x {n} pairs in {cell['seconds']:.3g} s)", file=sys.stderr)
    return {"threads": numba.get_num_threads(), "threading_layer": numba.threading_layer(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
            "gemm64_flops": gemm64, "gemm32_flops": gemm32, "cells": cells}


def table(report: dict) -> str:
    rate = {(c["m"], c["n"], c["method"]): c["pairs_per_s"] for c in report["cells"]}
    methods = [m for m in METHODS if any(k[2] == m for k in rate)]
    lines = [
        f"OV brute force, pair checks per second ({report['threads']} threads, numba layer "
        f"{report['threading_layer']}); GEMM float64 {report['gemm64_flops']:.3g} flop/s, float32 "
        f"{report['gemm32_flops']:.3g} flop/s; load average {report['load_average']} on {report['cpus']} CPUs "
        "(a load above the CPU count means other processes shared the cores: compare ratios, not absolutes)",
        "",
        "| m | n | " + " | ".join(methods)
        + " | blas ceiling GEMM32/(2m) | packed/numpy | packed/blas | blas/ceiling |",
        "|---|---|" + "---|" * len(methods) + "---|---|---|---|",
    ]
    for m, n in sorted({(k[0], k[1]) for k in rate}):
        ceiling = report["gemm32_flops"] / (2 * m)
        row = [rate.get((m, n, meth)) for meth in methods]
        ratio = lambda a, b: f"{a / b:.3g}" if a and b else "-"  # noqa: E731
        packed, blas, numpy_ = rate.get((m, n, "packed")), rate.get((m, n, "blas")), rate.get((m, n, "numpy"))
        lines.append(
            f"| {m} | {n} | " + " | ".join(f"{r:.3g}" if r else "-" for r in row)
            + f" | {ceiling:.3g} | {ratio(packed, numpy_)} | {ratio(packed, blas)} | {ratio(blas, ceiling)} |"
        )
    lines.append("")
    for m, floor in FLOORS.items():
        got = rate.get((m, 65536, "packed"))
        if got is not None:
            verdict = "PASS" if got >= floor else "FAIL"
            lines.append(f"floor m = {m}, n = 65536: packed {got:.3g} >= {floor:.0e} pairs/s: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n in {4096, 16384}, one repetition")
    parser.add_argument("--n", type=int, nargs="+", help="sizes n = n_U = n_V")
    parser.add_argument("--m", type=int, nargs="+", default=list(DIMENSIONS), help="dimensions m")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--max-pairs", type=float, default=2**32, help="pairs checked per blas/numpy cell")
    parser.add_argument("--repeat", type=int, help="runs per cell (best is kept); default 2, --quick 1")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    n_values = tuple(args.n or (QUICK_N if args.quick else FULL_N))
    repeat = args.repeat or (1 if args.quick else 2)
    max_pairs = int(min(args.max_pairs, 2**28) if args.quick else args.max_pairs)
    report = run(n_values, tuple(args.m), tuple(args.methods), max_pairs, repeat)
    print(table(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

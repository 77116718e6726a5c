"""Polynomial-method gradient: time vs n (log-log slope), speed-up over the exact oracle, crossover n.

Usage::

    python benchmarks/bench_fast.py            # n = 2^12 .. 2^17; exact oracle at 2^16; crossover table
    python benchmarks/bench_fast.py --quick    # n = 2^12 .. 2^14; exact at 2^14; small crossover table
    python benchmarks/bench_fast.py --json out.json

What is measured (issue 5): :func:`attention.fast.gradient` at ``d = 4``, ``B = 1`` (random
instances, entries uniform in ``[-B, B]``), ``eps = 1e-6`` relative to ``max |dL/dX|`` (the
default mode: the polynomial's relative error ``delta <= eps / 2``, see ``attention.fast``),
best of ``--repeat`` runs with the polynomial already cached (its one-time mpmath cost is
printed separately).  Baseline measured in the same run: the exact blocked oracle
:func:`attention.oracle.gradient` (``threads`` = the machine's cores) on the same instance.

Printed: the time per n and the least-squares slope of ``log t`` against ``log n``; at
``n = 2^16`` the speed-up exact / fast, the measured error against the exact gradient
relative to ``max |dL/dX|`` and the stated bounds; for ``d in {2, 4, 8}`` and
``B in {0.5, 1, 2}`` the smallest power of two ``n`` at which the fast gradient is faster
(searched up to ``2^15``; a win counts when the next doubling wins too; where the method
refuses (rank above ``max_rank``) or no crossing is found, the cost model's
``n* = r (d+1)^2 / (2 d)`` is printed).

Floors (issue 5): slope <= 1.15; at ``n = 2^16`` fast >= 10x faster, and the measured error
within the stated bound.  Exit status 1 when a floor is missed (in ``--quick`` the speed-up
floor is checked at the largest n run and reported as such).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Callable

import numpy as np

from attention import AttentionInstance, ResourceError, fast, oracle
from attention.features import rank
from attention.polynomials import smallest_degree

EPS = 1e-6
SLOPE_FLOOR = 1.15
SPEEDUP_FLOOR = 10.0
CROSS_D = (2, 4, 8)
CROSS_B = (0.5, 1.0, 2.0)
PAUSE = 0.2


def best_time(run: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """``(result, best seconds)`` of ``repeat`` runs (the machine is shared: the best run is the least disturbed)."""
    best, out = math.inf, None
    for _ in range(repeat):
        time.sleep(PAUSE)
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return out, best


def exact(inst: AttentionInstance) -> Any:
    return oracle.gradient(inst, threads=os.cpu_count() or 1)


def scaling(ns: list[int], exact_n: int, repeat: int) -> dict[str, Any]:
    """Times of the fast gradient over ``ns``, the slope, and the comparison with the exact oracle at ``exact_n``."""
    first = AttentionInstance.random(n=ns[0], d=4, B=1.0, seed=ns[0])
    start = time.perf_counter()
    fast.gradient(first, eps=EPS)  # builds and certifies the polynomial (mpmath), then cached
    cold = time.perf_counter() - start
    instances = {n: AttentionInstance.random(n=n, d=4, B=1.0, seed=n) for n in ns}
    results = {n: fast.gradient(inst, eps=EPS) for n, inst in instances.items()}  # warm: polynomials cached
    best = {n: math.inf for n in ns}
    for _ in range(repeat):  # round robin over n, so that changes in the machine's load hit every n alike
        for n, inst in instances.items():
            results[n], t = best_time(lambda: fast.gradient(inst, eps=EPS), 1)
            best[n] = min(best[n], t)
    rows = []
    for n, inst in instances.items():
        res, t = results[n], best[n]
        row = {"n": n, "fast_s": t, "degree": res.info["degree"], "rank": res.info["rank"], "R": res.info["R"]}
        if n == exact_n:
            ref, t_exact = best_time(lambda: exact(inst), min(repeat, 2))
            scale = float(np.abs(ref.gradient).max())
            err = float(np.abs(res.gradient - ref.gradient).max())
            row.update(
                exact_s=t_exact,
                speedup=t_exact / t,
                flop_ratio=res.info["exact_flops"] / res.info["flops"],
                measured_error_rel=err / scale,
                error_bound_rel=res.error_bound / scale,
                exact_bound_rel=ref.error_bound / scale,
                within_bound=err <= res.error_bound + ref.error_bound,
            )
        rows.append(row)
        print(f"  n = 2^{int(math.log2(n)):<3d} fast {t:8.4f} s   degree {row['degree']}, rank {row['rank']}, R = {row['R']:.3f}")
    slope = float(np.polyfit(np.log([r["n"] for r in rows]), np.log([r["fast_s"] for r in rows]), 1)[0])
    return {"cold_first_call_s": cold, "rows": rows, "slope": slope}


def crossover(d: int, B: float, n_max: int, exact_budget: float) -> dict[str, Any]:
    """The smallest power of two n from which the fast gradient beats the exact oracle (both timed here).

    Small-n timings are dominated by fixed costs and the machine is shared, so a win counts
    only when the next doubling wins too (the cost model says the advantage then keeps
    growing like n).
    """
    n, tried, previous = 32, [], False
    while n <= n_max:
        inst = AttentionInstance.random(n=n, d=d, B=B, seed=7 * n + d)
        try:
            fast.gradient(inst, eps=EPS)
        except ResourceError:
            g = smallest_degree(fast.grid_up(fast.score_range(inst)), EPS / 2)
            r = rank(d, g)
            return {"d": d, "B": B, "crossover_n": None, "refused": True, "rank": r, "predicted_n": r * (d + 1) ** 2 / (2 * d)}
        res, t_fast = best_time(lambda: fast.gradient(inst, eps=EPS), 3)
        _, t_exact = best_time(lambda: exact(inst), 3 if n <= 4096 else 1)
        tried.append({"n": n, "fast_s": t_fast, "exact_s": t_exact, "rank": res.info["rank"]})
        wins = t_fast < t_exact
        if wins and previous:
            return {"d": d, "B": B, "crossover_n": n // 2, "rank": res.info["rank"], "tried": tried}
        previous = wins
        if t_exact > exact_budget:
            break
        n *= 2
    r = tried[-1]["rank"]
    return {"d": d, "B": B, "crossover_n": None, "predicted_n": r * (d + 1) ** 2 / (2 * d), "rank": r, "tried": tried}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n up to 2^14, small crossover table, one repetition")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per point (best is kept)")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    ns = [2**k for k in (range(12, 15) if args.quick else range(12, 18))]
    exact_n = 2**14 if args.quick else 2**16
    print(f"fast gradient, d = 4, B = 1, eps = {EPS:g} (relative to max |dL/dX|), best of {repeat}")
    report: dict[str, Any] = {"quick": args.quick, "eps": EPS, "scaling": scaling(ns, exact_n, repeat)}
    sc = report["scaling"]
    at = next(r for r in sc["rows"] if r["n"] == exact_n)
    print(f"  first call (polynomial built and certified in mpmath): {sc['cold_first_call_s']:.2f} s, then cached")
    print(f"  log-log slope of time vs n: {sc['slope']:.3f}   (floor <= {SLOPE_FLOOR})")
    print(
        f"  n = 2^{int(math.log2(exact_n))}: exact {at['exact_s']:.2f} s, fast {at['fast_s']:.4f} s, "
        f"speed-up {at['speedup']:.1f}x   (floor >= {SPEEDUP_FLOOR:g}x{' at 2^16, full run' if args.quick else ''}); "
        f"flop ratio exact / fast {at['flop_ratio']:.0f}x (8 n^2 d against 4 n r (d+1)^2)"
    )
    print(
        f"  measured error {at['measured_error_rel']:.2e} of max|G| (target eps = {EPS:g}); stated bound "
        f"{at['error_bound_rel']:.2e} (+ exact oracle's {at['exact_bound_rel']:.1e}); within bound: {at['within_bound']}"
    )
    cross_d = CROSS_D[:2] if args.quick else CROSS_D
    cross_b = CROSS_B[:2] if args.quick else CROSS_B
    n_max, budget = (2**12, 5.0) if args.quick else (2**15, 60.0)
    print(f"crossover n (fast faster than exact; n = 32, 64, ... <= {n_max}):")
    print("    d \\ B " + "".join(f"{b:>30g}" for b in cross_b))
    report["crossover"] = []
    for d in cross_d:
        cells = []
        for B in cross_b:
            cell = crossover(d, B, n_max, budget)
            report["crossover"].append(cell)
            if cell["crossover_n"] is not None:
                cells.append(f"n = {cell['crossover_n']} (r = {cell['rank']})")
            elif cell.get("refused"):
                cells.append(f"refused: r = {cell['rank']}, n* ~ {cell['predicted_n']:.2g}")
            else:
                cells.append(f"> {n_max}, n* ~ {cell['predicted_n']:.2g}")
        print(f"    {d:5d}   " + "".join(f"{c:>30s}" for c in cells))
    ok_slope = sc["slope"] <= SLOPE_FLOOR
    ok_speed = at["speedup"] >= SPEEDUP_FLOOR
    ok_error = bool(at["within_bound"]) and at["measured_error_rel"] <= EPS
    report["floors"] = {"slope": ok_slope, "speedup": ok_speed, "error": ok_error}
    print(f"floors: slope {'ok' if ok_slope else 'MISSED'}, speed-up {'ok' if ok_speed else 'MISSED'}, error {'ok' if ok_error else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1, default=float)
    return 0 if (ok_slope and ok_speed and ok_error) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Soak: the default route on >= 10^4 random instances; wrong verdicts must be 0.  Plus the memory guard.

Usage::

    python benchmarks/bench_soak.py            # 10^4 instances + the memory table (~10-20 min on 2 cores)
    python benchmarks/bench_soak.py --quick    # 600 instances, small memory rows (about a minute)
    python benchmarks/bench_soak.py --count 20000 --seed 7 --json soak.json

**Table 1: soak.**  The default route (``reductions.verify.solve_through(instance,
to="gradient")``, what ``finegrain solve FILE --via gradient`` runs: k-SAT -> OV by split and
list, Construction H + probe columns, decoder (c); the exact float64 oracle) on random instances, YES and NO in balance (each instance drawn until its
ground truth has the wanted answer: a SAT solver for CNF, brute force for OV):

==============  =============================================================  ========
class           instances                                                      share
==============  =============================================================  ========
ksat            random 3-CNF, N = 3..14 variables, clause ratio 2-4.2 (YES)     45%
                or 4.4-8 (NO)
ov-small        random OV, n_U, n_V = 1..32, m = 2..16 (expected pairs ~2
                for YES, ~0.5 for NO)                                           45%
ov-medium       n_U, n_V = 33..128, m = 8..40                                    8%
ov-edge         n_U, n_V = 128..256, m = 48..72: the largest score
                ``s m = m ln(8n(n+1))`` spans 600-1150, across float64's
                ``exp`` limit 709 (the oracle must subtract each row's max)      2%
==============  =============================================================  ========

Per class: instances, YES/NO, **wrong verdicts** (verdict != ground truth, or a witness that
does not check on the original instance), refusals (``PrecisionError``: margin not above
the stated error), crashes (any other exception), the smallest ``margin / error`` over every
decision of the decoder, oracle calls and seconds.  The exit status is 1 if any verdict was
wrong or anything crashed.

**Table 2: memory guard** (:mod:`reductions.guards`).  For a few sizes, each in a fresh
process: the guard's estimate (``chain_peak`` of the footprints from the rules' formulas)
next to the measured growth of the peak resident set (``ru_maxrss``) while the step runs:
k-SAT -> OV (reduce and bit-pack) and the whole default route (reduce, then decode with the
exact oracle).  Then the refusals: k-SAT -> gradient at N = 40 (the attention step would
need ~100 GB) and k-SAT -> OV at N = 60 (the issue's example), refused before anything is
built: the estimate, and the resident-set growth while refusing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: class -> (share, sampler of sizes)
CLASSES = {
    "ksat": 0.45,
    "ov-small": 0.45,
    "ov-medium": 0.08,
    "ov-edge": 0.02,
}
OV_SIZES = {"ov-small": ((1, 32), (2, 16)), "ov-medium": ((33, 128), (8, 40)), "ov-edge": ((128, 256), (48, 72))}
KSAT_VARS = (3, 14)


@dataclass
class Outcome:
    """One instance through the default route."""

    cls: str
    n: int  # OV vectors per side after padding (max(n_U, n_V)); for CNF 2^ceil(N/2)
    m: int
    truth: bool
    verdict: str  # "yes", "no", "refused", "crash"
    wrong: bool
    ratio: float  # smallest margin / error over the decoder's decisions (inf if none)
    calls: int
    seconds: float
    max_score: float
    note: str = ""


# ----------------------------------------------------------------------------- instances
def ov_instance(rng: np.random.Generator, cls: str, want_yes: bool) -> tuple[Any, bool, bool]:
    """``(ov, truth, fallback)``: random OV with about 2 (YES) or 0.5 (NO) expected orthogonal pairs."""
    from reductions.generators.ov import no_pair_ov, planted_ov, random_ov_mu
    from solvers.ov import solve_ov

    (lo, hi), (mlo, mhi) = OV_SIZES[cls]
    n_U, n_V, m = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)), int(rng.integers(mlo, mhi + 1))
    for _ in range(30):
        ov = random_ov_mu(n_U, n_V, m, mu=2.0 if want_yes else 0.5, seed=int(rng.integers(2**63)))
        truth = solve_ov(ov) is not None
        if truth == want_yes:
            return ov, truth, False
    seed = int(rng.integers(2**63))
    ov = planted_ov(n_U, n_V, m, 1, seed=seed) if want_yes else no_pair_ov(n_U, n_V, m, seed=seed)
    return ov, want_yes, True


def ksat_instance(rng: np.random.Generator, want_yes: bool) -> tuple[Any, bool, bool]:
    """``(cnf, truth, fallback)``: random 3-CNF below (YES) or above (NO) the threshold, until it fits."""
    from reductions.generators.ksat import planted_ksat, random_ksat
    from solvers.sat import solve_sat

    N = int(rng.integers(KSAT_VARS[0], KSAT_VARS[1] + 1))
    for _ in range(50):
        ratio = rng.uniform(2.0, 4.2) if want_yes else rng.uniform(4.4, 8.0)
        cnf = random_ksat(N, max(1, round(ratio * N)), 3, seed=int(rng.integers(2**63)))
        truth = solve_sat(cnf).satisfiable
        if truth == want_yes:
            return cnf, truth, False
    if want_yes:
        return planted_ksat(N, round(4.26 * N), 3, seed=int(rng.integers(2**63))).cnf, True, True
    cnf = random_ksat(N, round(8 * N), 3, seed=int(rng.integers(2**63)))
    cnf.extend([[s1 * 1, s2 * 2, s3 * 3] for s1 in (1, -1) for s2 in (1, -1) for s3 in (1, -1)])
    return cnf, False, True


# ----------------------------------------------------------------------------- one run
def decisions(red: Any) -> list[dict[str, Any]]:
    """Every decision logged by the steps of a composed reduction."""
    out = []
    for step in [*red.steps, *red.extra_steps]:
        out.extend(step.stats.get("decisions", []))
    return out


def smallest_ratio(records: list[dict[str, Any]]) -> float:
    ratios = [r["margin"] / max(r.get("error", r["oracle_error"]), 1e-300) for r in records]
    return min(ratios, default=math.inf)


def run_route(cls: str, instance: Any, truth: bool) -> Outcome:
    """The default route with the exact float64 oracle, checked against ``truth`` and the witness check."""
    from reductions.errors import PrecisionError
    from reductions.registry import problem_of
    from reductions.verify import check_witness, solve_through

    problem = problem_of(instance)
    start = time.perf_counter()
    red = None
    try:
        answer, red = solve_through(instance, to="gradient", oracle="exact")  # = finegrain solve --via gradient
        verdict, note = ("yes" if answer is not None else "no"), ""
        wrong = (answer is not None) != truth or check_witness(problem, instance, answer) is False
    except PrecisionError as exc:
        verdict, wrong, note = "refused", False, str(exc)[:200]
    except Exception as exc:  # a crash: reported, and the run fails
        verdict, wrong, note = "crash", False, f"{type(exc).__name__}: {exc}"[:200]
    seconds = time.perf_counter() - start
    target = red.target if red is not None else None
    records = decisions(red) if red is not None else []
    return Outcome(
        cls=cls,
        n=int(target.n // 2) if target is not None else 0,
        m=int((target.d - 2) // 2) if target is not None else 0,
        truth=truth,
        verdict=verdict,
        wrong=wrong,
        ratio=smallest_ratio(records),
        calls=int(red.stats.get("oracle_calls", 0)) if red is not None else 0,
        seconds=seconds,
        max_score=float(red.steps[-1].params.get("max_score", math.nan)) if red is not None else math.nan,
        note=note,
    )


def soak(count: int, seed: int, report_every: int = 0) -> list[Outcome]:
    """``count`` instances drawn from :data:`CLASSES` (YES/NO alternating), each run once."""
    rng = np.random.default_rng(seed)
    names = list(CLASSES)
    shares = np.array([CLASSES[c] for c in names])
    outcomes = []
    for i in range(count):
        cls = names[int(rng.choice(len(names), p=shares / shares.sum()))]
        want_yes = i % 2 == 0
        instance, truth, fallback = ksat_instance(rng, want_yes) if cls == "ksat" else ov_instance(rng, cls, want_yes)
        outcome = run_route(cls, instance, truth)
        outcome.note = (outcome.note + " (fallback generator)").strip() if fallback else outcome.note
        outcomes.append(outcome)
        if report_every and (i + 1) % report_every == 0:
            print(f"  ... {i + 1} / {count}", file=sys.stderr, flush=True)
    return outcomes


def summarise(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    rows = []
    for cls in [*CLASSES, "all"]:
        group = [o for o in outcomes if cls in ("all", o.cls)]
        if not group:
            continue
        rows.append({
            "class": cls,
            "instances": len(group),
            "yes": sum(o.truth for o in group),
            "no": sum(not o.truth for o in group),
            "wrong": sum(o.wrong for o in group),
            "refused": sum(o.verdict == "refused" for o in group),
            "crashes": sum(o.verdict == "crash" for o in group),
            "min_margin_over_error": min(o.ratio for o in group),
            "max_n": max(o.n for o in group),
            "max_score": max((o.max_score for o in group if math.isfinite(o.max_score)), default=math.nan),
            "calls": sum(o.calls for o in group),
            "seconds": sum(o.seconds for o in group),
        })
    return rows


def print_soak(rows: list[dict[str, Any]]) -> None:
    print("Table 1: default route (ksat/ov -> gradient, decoder (c), exact float64 oracle)")
    head = f"{'class':<10} {'inst':>6} {'yes':>5} {'no':>5} {'wrong':>5} {'refused':>7} {'crash':>5} " \
           f"{'min margin/err':>14} {'max n':>6} {'max score':>9} {'calls':>7} {'s':>7}"
    print(head)
    for r in rows:
        print(f"{r['class']:<10} {r['instances']:>6} {r['yes']:>5} {r['no']:>5} {r['wrong']:>5} {r['refused']:>7} "
              f"{r['crashes']:>5} {r['min_margin_over_error']:>14.3g} {r['max_n']:>6} {r['max_score']:>9.0f} "
              f"{r['calls']:>7} {r['seconds']:>7.1f}")


# ----------------------------------------------------------------------------- memory
def _status(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes (``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> int:
    """Reset the peak resident set (``VmHWM``, Linux >= 4.0) to the current one; returns it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def probe_memory(kind: str, N: int) -> dict[str, Any]:
    """Run one step in this process and measure it (called in a fresh subprocess by :func:`memory_rows`).

    The same step runs first on a tiny formula (imports, compiled kernels, caches), then the
    peak resident set is reset and the measured step runs: ``growth = VmHWM - VmRSS before``.
    """
    from reductions.errors import ResourceError
    from reductions.generators.ksat import random_ksat
    from reductions.guards import chain_footprints, chain_peak, check_chain, ksat_to_ov_footprint
    from reductions.problems.cnf import make_cnf
    from reductions.registry import find_path

    m = round(4.26 * N) if N < 60 else 256
    target = "ov" if kind == "ksat_to_ov" else "gradient"
    rules = find_path("ksat", target)
    cnf = random_ksat(N, m, 3, seed=N) if kind != "refuse" else make_cnf([[1, -2, 3]] * m, nv=N)
    try:
        estimate = chain_peak(chain_footprints(rules, cnf))
    except ResourceError:  # above the generator's own limit: the OV step's estimate
        estimate = ksat_to_ov_footprint(N, m).peak
    _step(kind, random_ksat(6, 25, 3, seed=1), target, rules)  # warm-up: imports, caches
    from attention import kernels

    kernels.warm_up()  # the fused gradient kernel (the exact oracle's choice for large n_k d)
    base, start = _reset_peak(), time.perf_counter()
    try:
        outcome = _step(kind, cnf, target, rules)
    except ResourceError as exc:
        outcome = f"refused: {exc}"
    return {"kind": kind, "N": N, "m": m, "estimate": estimate, "growth": max(_status("VmHWM") - base, 0),
            "seconds": time.perf_counter() - start, "outcome": outcome}


def _step(kind: str, cnf: Any, target: str, rules: list[Any]) -> str:
    import attention
    from reductions.errors import PrecisionError
    from reductions.guards import check_chain
    from reductions.registry import reduce

    if kind == "refuse":
        check_chain(rules, cnf)
    red = reduce(cnf, to=target)
    if kind == "ksat_to_ov":
        red.target.U_packed, red.target.V_packed  # noqa: B018 (what the OV solvers use)
    elif kind == "route":
        try:
            red.lift(lambda inst: attention.gradient(inst, method="exact"))
        except PrecisionError:
            return "decoded (verdict refused)"
    return "fits"


def memory_rows(quick: bool) -> list[dict[str, Any]]:
    plan = [("ksat_to_ov", N) for N in ((24, 28) if quick else (28, 32, 36))]
    plan += [("route", N) for N in ((12, 16) if quick else (16, 20, 22))]
    plan += [("refuse", 40), ("refuse", 60)]
    rows = []
    for kind, N in plan:
        proc = subprocess.run([sys.executable, __file__, "--probe-memory", kind, str(N)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            rows.append({"kind": kind, "N": N, "outcome": f"probe failed: {proc.stderr.strip()[-300:]}"})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def print_memory(rows: list[dict[str, Any]]) -> None:
    print("\nTable 2: memory guard -- estimate vs measured peak RSS growth (fresh process per row)")
    print(f"{'step':<12} {'N':>3} {'m':>4} {'estimate MB':>12} {'actual MB':>10} {'est/actual':>10} {'s':>7}  outcome")
    for r in rows:
        if "estimate" not in r:
            print(f"{r['kind']:<12} {r['N']:>3}  {r['outcome']}")
            continue
        est, act = r["estimate"] / 1e6, r["growth"] / 1e6
        ratio = f"{est / act:>10.2f}" if act >= 1 else f"{'-':>10}"
        print(f"{r['kind']:<12} {r['N']:>3} {r['m']:>4} {est:>12.1f} {act:>10.1f} {ratio} {r['seconds']:>7.2f}  "
              f"{r['outcome'][:160]}")


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 instances and small memory rows")
    parser.add_argument("--count", type=int, help="instances to soak (default 10000, --quick 600)")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the instance stream")
    parser.add_argument("--no-memory", action="store_true", help="skip table 2")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    parser.add_argument("--probe-memory", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_memory:
        print(json.dumps(probe_memory(args.probe_memory[0], int(args.probe_memory[1]))))
        return 0
    count = args.count or (600 if args.quick else 10_000)
    outcomes = soak(count, args.seed, report_every=max(count // 10, 1))
    rows = summarise(outcomes)
    print_soak(rows)
    failures = [o for o in outcomes if o.wrong or o.verdict == "crash"]
    for o in failures[:10]:
        print(f"  FAILED {o.cls} n={o.n} m={o.m} truth={o.truth} verdict={o.verdict} {o.note}")
    refusals = [o for o in outcomes if o.verdict == "refused"]
    for o in refusals[:3]:
        print(f"  refused {o.cls} n={o.n} m={o.m}: {o.note}")
    memory = [] if args.no_memory else memory_rows(args.quick)
    if memory:
        print_memory(memory)
    if args.json:
        record = {"soak": rows, "failures": [asdict(o) for o in failures], "memory": memory,
                  "count": count, "seed": args.seed}
        Path(args.json).write_text(json.dumps(record, indent=1, default=str) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""A 2-worker Dask cluster on this machine against one process: exact gradient and OV search.

Usage::

    python benchmarks/bench_distributed.py            # gradient n = 16384 (d = 16, 64), 65536 (d = 16);
                                                      # OV n = 16384, 65536 (m = 64), stored and generated
    python benchmarks/bench_distributed.py --quick    # gradient n = 4096, OV n = 16384 (a smoke run)
    python benchmarks/bench_distributed.py --json out.json
    python benchmarks/bench_distributed.py --scheduler tcp://HOST:8786   # a real cluster instead

What is compared, on the same instances in the same run:

- **one process**: :func:`attention.oracle.gradient` (``threads=2``, all cores) and
  :func:`solvers.ov.solve_ov` (numba, all cores), each in a fresh process so that its peak
  memory is its own;
- **cluster**: :func:`attention.distributed.gradient` and
  :func:`solvers.ov_distributed.solve_ov_distributed` on a ``LocalCluster`` of 2 worker
  processes with one thread each (``processes=True``, the machine has 2 cores), default
  tile and range sizes.  Before each measurement the workers' peak RSS is reset (Linux
  ``/proc/self/clear_refs``), so the peak printed belongs to it, next to the RSS the worker
  held before it started (imports, cached data).

On one 2-core machine the cluster cannot be faster than one process using both cores: the
ratio ``cluster / one process`` *is* the overhead (serialisation, scheduling, the reduction
tree, generating blocks).  The per-task scheduling cost is measured directly by a map of
empty tasks.  Throughput: ``8 n^2 d`` flops per gradient (GFLOP/s), ``n^2`` pair checks per
OV search (pairs/s).  OV instances have no orthogonal pair, so every pair is checked: stored
ones have coordinate 0 set on both sides; generated ones are the Williams vectors
(:class:`~solvers.ov_distributed.SatOV`) of a 3-CNF with ``2 log2 n`` variables, 62 random
clauses and the clauses ``(x1)``, ``(-x1)``, generated per tile inside the tasks.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable

import numpy as np

FULL_GRADIENT = ((16384, 16), (16384, 64), (65536, 16))
QUICK_GRADIENT = ((4096, 16),)
FULL_OV = (16384, 65536)
QUICK_OV = (16384,)
OV_M = 64


# --------------------------------------------------------------------------- instances
def attention_instance(n: int, d: int) -> Any:
    from attention.instance import AttentionInstance

    return AttentionInstance.random(n=n, d=d, B=2.0, seed=n + d)


def stored_ov(n: int) -> Any:
    from reductions.problems.ov import OV

    rng = np.random.default_rng(n)
    U = (rng.random((n, OV_M)) < 0.5).astype(np.uint8)
    V = (rng.random((n, OV_M)) < 0.5).astype(np.uint8)
    U[:, 0] = V[:, 0] = 1  # every pair meets at coordinate 0: no early exit
    return OV(U, V)


def generated_ov(n: int) -> Any:
    from reductions.problems.cnf import make_cnf
    from solvers.ov_distributed import SatOV

    N = 2 * int(math.log2(n))
    rng = np.random.default_rng(N)
    clauses = [[int(v) * int(rng.choice([-1, 1])) for v in rng.choice(np.arange(1, N + 1), 3, replace=False)] for _ in range(OV_M - 2)]
    return SatOV.from_cnf(make_cnf(clauses + [[1], [-1]], nv=N))


# --------------------------------------------------------------------------- one process
def peak_rss_mib() -> float:
    """Peak resident memory of the calling process since its last reset, MiB (Linux ``VmHWM``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def reset_peak_rss() -> float:
    """Start the peak over from the current RSS (``clear_refs``); the current RSS, MiB."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return peak_rss_mib()


def _single_gradient(n: int, d: int) -> tuple[float, float, list[list[float]]]:
    from attention import oracle

    warm_gradient(d)
    inst = attention_instance(n, d)
    start = time.perf_counter()
    result = oracle.gradient(inst, threads=2)
    return time.perf_counter() - start, peak_rss_mib(), result.gradient.tolist()


def warm_gradient(d: int) -> None:
    """Compile (or load from numba's cache) the oracle's kernels before timing."""
    from attention import oracle

    oracle.gradient(attention_instance(64, d))


def _single_ov(n: int, generated: bool) -> tuple[float, float, Any]:
    from solvers.ov import solve_ov
    from solvers.ov_distributed import solve_ov_distributed

    instance = generated_ov(n) if generated else stored_ov(n)
    warm_ov_kernel()  # load the compiled kernel before timing
    start = time.perf_counter()
    found = solve_ov_distributed(instance) if generated else solve_ov(instance)
    return time.perf_counter() - start, peak_rss_mib(), found


def in_fresh_process(func: Callable[..., Any], *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(func, *args).result()


# --------------------------------------------------------------------------- cluster
def reset_workers(client: Any) -> float:
    """Reset the workers' peak RSS; the largest current RSS among them, MiB."""
    return max(client.run(reset_peak_rss).values())


def machine_rates() -> dict[str, float]:
    """One core's float64 GEMM rate (square 2048) and exp rate, measured now (best of 3)."""
    A = np.random.default_rng(0).standard_normal((2048, 2048))
    x = np.random.default_rng(1).uniform(-50, 0, 1 << 22)
    gemm = min(_timed(lambda: A @ A) for _ in range(3))
    exp = min(_timed(lambda: np.exp(x)) for _ in range(3))
    return {"gemm_gflops": 2 * 2048**3 / gemm / 1e9, "exp_per_s": x.size / exp}


def _timed(func: Callable[[], Any]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def worker_peaks(client: Any) -> float:
    return max(client.run(peak_rss_mib).values())


def task_overhead_ms(client: Any, count: int) -> float:
    """Seconds per empty task, through submit and gather (the scheduler's round trip)."""
    client.gather(client.map(abs, range(-8, 0), pure=False))  # warm
    start = time.perf_counter()
    client.gather(client.map(abs, range(-count, 0), pure=False))
    return 1e3 * (time.perf_counter() - start) / count


def warm_ov_kernel() -> None:
    from solvers.ov import solve_ov_tile

    ov = stored_ov(64)
    solve_ov_tile(ov.U_packed, ov.V_packed, threads=1)


# --------------------------------------------------------------------------- rows
def gradient_row(client: Any, n: int, d: int) -> dict[str, Any]:
    from attention import distributed

    single_s, single_mib, single_G = in_fresh_process(_single_gradient, n, d)
    client.run(warm_gradient, d)
    idle = reset_workers(client)
    inst = attention_instance(n, d)
    start = time.perf_counter()
    result = distributed.gradient(inst, client)
    cluster_s = time.perf_counter() - start
    flops = 8.0 * n * n * d
    return {
        "kind": "gradient", "n": n, "d": d, "tasks": result.info["tasks"],
        "task_rows": result.info["task_rows"],
        "single_s": single_s, "cluster_s": cluster_s, "ratio": cluster_s / single_s,
        "single_gflops": flops / single_s / 1e9, "cluster_gflops": flops / cluster_s / 1e9,
        "single_peak_mib": single_mib, "worker_before_mib": idle, "worker_peak_mib": worker_peaks(client),
        "max_diff": float(np.abs(result.gradient - np.array(single_G)).max()), "error_bound": result.error_bound,
    }


def ov_row(client: Any, n: int, generated: bool) -> dict[str, Any]:
    from solvers.ov_distributed import default_block, solve_ov_distributed

    single_s, single_mib, single_found = in_fresh_process(_single_ov, n, generated)
    client.run(warm_ov_kernel)
    idle = reset_workers(client)
    instance = generated_ov(n) if generated else stored_ov(n)
    threads = sum(client.nthreads().values())
    start = time.perf_counter()
    found = solve_ov_distributed(instance, client)
    cluster_s = time.perf_counter() - start
    block = default_block(n, n, threads)
    return {
        "kind": "ov generated" if generated else "ov stored", "n": n, "m": OV_M,
        "tasks": math.ceil(n / block) ** 2, "block": block,
        "single_s": single_s, "cluster_s": cluster_s, "ratio": cluster_s / single_s,
        "single_pairs_per_s": n * n / single_s, "cluster_pairs_per_s": n * n / cluster_s,
        "single_peak_mib": single_mib, "worker_before_mib": idle, "worker_peak_mib": worker_peaks(client),
        "agree": found == single_found and found is None,
    }


def print_table(rows: list[dict[str, Any]], overhead: float, startup: float, rates: dict[str, float]) -> None:
    print(
        f"one core (in a worker): float64 GEMM {rates['gemm_gflops']:.0f} GFLOP/s, exp {rates['exp_per_s']:.2e}/s; "
        f"cluster start-up {startup:.2f} s; scheduling round trip {overhead:.2f} ms per empty task"
    )
    print(
        f"{'kind':<13} {'n':>6} {'d/m':>4} {'tasks':>5} {'one proc s':>10} {'cluster s':>9} {'ratio':>6} "
        f"{'one proc rate':>14} {'cluster rate':>13} {'1-proc MiB':>10} {'worker before/peak MiB':>23} check"
    )
    for r in rows:
        if r["kind"] == "gradient":
            rates = f"{r['single_gflops']:9.1f} GF/s {r['cluster_gflops']:8.1f} GF/s"
            check = f"|diff| {r['max_diff']:.1e} <= bound {r['error_bound']:.1e}"
            width = r["d"]
        else:
            rates = f"{r['single_pairs_per_s']:10.2e} p/s {r['cluster_pairs_per_s']:9.2e} p/s"
            check = "same answer (no pair)" if r["agree"] else "DISAGREE"
            width = r["m"]
        print(
            f"{r['kind']:<13} {r['n']:>6} {width:>4} {r['tasks']:>5} {r['single_s']:>10.2f} {r['cluster_s']:>9.2f} "
            f"{r['ratio']:>6.2f} {rates} {r['single_peak_mib']:>10.0f} "
            f"{r['worker_before_mib']:>11.0f} / {r['worker_peak_mib']:<9.0f} {check}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size of each (a smoke run)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--scheduler", default="local", help="'local' (2 workers here) or a scheduler address")
    args = parser.parse_args(argv)

    from reductions.distributed_common import client_from_argument

    start = time.perf_counter()
    with client_from_argument(args.scheduler, n_workers=2) as client:
        startup = time.perf_counter() - start
        overhead = task_overhead_ms(client, 200)
        rates = client.submit(machine_rates, pure=False).result()
        rows = [gradient_row(client, n, d) for n, d in (QUICK_GRADIENT if args.quick else FULL_GRADIENT)]
        for n in QUICK_OV if args.quick else FULL_OV:
            rows += [ov_row(client, n, generated=False), ov_row(client, n, generated=True)]
    print_table(rows, overhead, startup, rates)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"startup_s": startup, "task_overhead_ms": overhead, **rates, "rows": rows}, fh, indent=1)
    return 0 if all(r.get("agree", True) and r.get("max_diff", 0) <= r.get("error_bound", 1) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

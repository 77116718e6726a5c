"""``finegrain solve``: decide a CNF or OV instance file with a ground-truth solver.

The format is detected from the name (``.cnf``, ``.cnf.gz``, ``.dimacs``: DIMACS CNF;
``.ov``, ``.txt``: OV text; ``.npz``: OV arrays) and, for any other name, from the content.
Text output: for CNF the SAT competition's ``s SATISFIABLE`` / ``v ... 0`` lines, for OV
``s ORTHOGONAL PAIR`` / ``v i j`` (0-based indices into U and V), each after ``c`` lines with
the solver and time.  ``--json`` prints one JSON object:
``{"problem": "ksat", "satisfiable": ..., "witness": [DIMACS literals] | null, ...}`` or
``{"problem": "ov", "has_pair": ..., "witness": [i, j] | null, ...}``.

Each problem kind has one solve function (:data:`SOLVE`, and :data:`ON_CLUSTER` for
``--scheduler``) and one text printer (:data:`TEXT`); a new way of solving (e.g. through a
reduction) is a new branch there.

``--scheduler local|ADDRESS`` runs the brute force on a Dask cluster, with the same record
keys: an OV instance by :func:`solvers.ov_distributed.solve_ov_distributed` (the same
lexicographically first pair as in this process), a CNF by k-SAT -> OV split and list
(:func:`solvers.ov_distributed.solve_cnf_distributed`, each tile's vectors generated inside
its task, so the ``2^(N/2)``-vector sides are never stored) instead of python-sat, and
``--via`` sends the chain's last solver (the exact attention oracle, the OV brute force) to
the cluster.  The ``--scheduler`` helpers here are shared with ``grad`` and ``verify``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, Callable, ContextManager

from attention.errors import FinegrainError
from reductions.commands.common import print_json, progress

_CNF_SUFFIXES = (".cnf", ".cnf.gz", ".dimacs", ".dimacs.gz")
_OV_SUFFIXES = (".ov", ".txt", ".npz")
_ZIP, _GZIP = b"PK", b"\x1f\x8b"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "solve",
        help="solve a CNF (DIMACS) or OV instance file",
        description=(
            "Decide FILE with a ground-truth solver and print the answer, a witness and the time. "
            "CNF: python-sat (default cadical195; any python-sat name, or 'bruteforce' for <= 20 "
            "variables); the model is checked before it is printed.  OV: brute force (methods "
            "auto, packed, blas, numpy).  With --scheduler the brute force runs on a Dask "
            "cluster: OV tile by tile (the same first pair), and a CNF through k-SAT -> OV "
            "(split and list, each tile's vectors generated on the workers) instead of "
            "python-sat; with --via, the chain's last solver (exact oracle, OV brute force) "
            "runs there."
        ),
        epilog="Example: finegrain solve f.cnf --json",
    )
    parser.add_argument("file", help="DIMACS CNF (.cnf, .cnf.gz) or OV instance (.ov, .txt, .npz)")
    parser.add_argument("--solver", help="CNF: python-sat solver name or 'bruteforce'; OV: brute-force method")
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="DIMACS: also accept clauses spanning or sharing lines, SATLIB's '%%' end, CR LF, a BOM",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--via",
        metavar="PROBLEM",
        help="solve through the reduction chain instead: 'gradient' = k-SAT -> OV -> one attention-gradient "
        "instance (Construction H + decoder (c), the default path), answered by --oracle",
    )
    parser.add_argument(
        "--oracle", choices=("exact", "mp", "fast"), default="exact", help="with --via: the attention oracle"
    )
    add_cluster_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reductions.registry import problem_name

    check_cluster_arguments(args, problem_name(args.via) if args.via else None)
    if args.scheduler is not None and args.solver is not None and not args.via:
        raise FinegrainError(
            f"--solver {args.solver}: with --scheduler the cluster runs the tiled OV brute force "
            "(a CNF through k-SAT -> OV); drop --solver"
        )
    kind, instance = load_instance(args.file, strict=not args.lenient)
    with open_client(args) as client:
        if args.via:
            solved = solve_via(instance, args, client)
        elif client is not None:
            solved = ON_CLUSTER[kind](instance, client)
        else:
            solved = SOLVE[kind](instance, args)
    record = {"problem": kind, "file": str(args.file), **solved}
    if args.json:
        print_json(record)
    else:
        print(TEXT[kind](record))
    return 0


def load_instance(path: str | Path, strict: bool = True) -> tuple[str, Any]:
    """``(kind, instance)``: ``("ksat", CNF)`` or ``("ov", OV)``, by file name, else by content.

    A file with another name is read once (so ``/dev/stdin`` works): gzip or a first data
    line starting with ``p`` is DIMACS, a zip archive is an OV ``.npz``, anything else OV text.
    """
    from reductions.problems.cnf import parse_dimacs, read_cnf
    from reductions.problems.ov import parse_ov_text, read_ov

    name = str(path).lower()
    if name.endswith(_CNF_SUFFIXES):
        return "ksat", read_cnf(path, strict=strict)
    if name.endswith(_OV_SUFFIXES):
        return "ov", read_ov(path)
    data = _read_bytes(path)
    if data.startswith(_ZIP):
        return "ov", read_ov(path)
    if data.startswith(_GZIP) or _first_data_line(data).startswith(b"p"):
        return "ksat", parse_dimacs(data, strict=strict, source=str(path))
    return "ov", parse_ov_text(data, name=str(path))


def _read_bytes(path: str | Path) -> bytes:
    from attention.errors import FinegrainError

    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise FinegrainError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _first_data_line(data: bytes) -> bytes:
    for line in data[:65536].splitlines():
        line = line.strip().lstrip(b"\xef\xbb\xbf")
        if line and not line.startswith((b"c", b"#")):
            return line
    return b""


# --------------------------------------------------------------------------- k-SAT


def solve_ksat(cnf: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Solve a CNF with ``args.solver``: the JSON record of ``finegrain solve --json``."""
    from solvers.sat import DEFAULT_SOLVER, solve_sat, solve_sat_bruteforce

    solver = args.solver or DEFAULT_SOLVER
    result = solve_sat_bruteforce(cnf) if solver == "bruteforce" else solve_sat(cnf, solver=solver)
    return {
        "satisfiable": result.satisfiable,
        "witness": result.model,
        "solver": result.solver,
        "time": result.time,
        "n_vars": cnf.nv,
        "n_clauses": len(cnf.clauses),
    }


def solve_ksat_on_cluster(cnf: Any, client: Any) -> dict[str, Any]:
    """Decide a CNF by k-SAT -> OV brute force on a Dask cluster: the record of :func:`solve_ksat`.

    The witness is the model of the lexicographically first orthogonal pair of the Williams
    instance (the one ``--via ov`` finds), checked on the formula.
    """
    from reductions.errors import VerificationFailed
    from reductions.verify import satisfies
    from solvers.ov_distributed import solve_cnf_distributed

    start = time.perf_counter()
    model = solve_cnf_distributed(cnf, client)
    elapsed = time.perf_counter() - start
    if model is not None and not satisfies(cnf, model):
        raise VerificationFailed(f"the OV search returned an assignment that does not satisfy the formula: {model}")
    return {
        "satisfiable": model is not None,
        "witness": model,
        "solver": "k-SAT -> OV split and list, tiled brute force on a Dask cluster",
        "time": elapsed,
        "n_vars": cnf.nv,
        "n_clauses": len(cnf.clauses),
    }


def ksat_text(record: dict[str, Any]) -> str:
    """The SAT competition's output for a ``solve_ksat`` record."""
    from solvers.sat import SatResult, competition_output

    return competition_output(SatResult(record["satisfiable"], record["witness"], record["solver"], record["time"]))


# --------------------------------------------------------------------------- OV


def solve_ov_instance(ov: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Solve an OV instance by brute force (method ``args.solver``): the JSON record of ``--json``."""
    from solvers.ov import solve_ov

    method = args.solver or "auto"
    with progress(desc="OV search", total=ov.n_U, unit=" rows", delay=1) as bar:

        def advance(done: int, total: int) -> None:
            bar.update(done - bar.n)

        start = time.perf_counter()
        pair = solve_ov(ov, method=method, progress=advance)
        elapsed = time.perf_counter() - start
    return {
        "has_pair": pair is not None,
        "witness": None if pair is None else [int(pair[0]), int(pair[1])],
        "solver": method,
        "time": elapsed,
        "n_U": ov.n_U,
        "n_V": ov.n_V,
        "m": ov.m,
    }


def solve_ov_on_cluster(ov: Any, client: Any) -> dict[str, Any]:
    """Tiled OV brute force on a Dask cluster: the record of :func:`solve_ov_instance`."""
    from solvers.ov_distributed import solve_ov_distributed

    start = time.perf_counter()
    pair = solve_ov_distributed(ov, client)
    elapsed = time.perf_counter() - start
    return {
        "has_pair": pair is not None,
        "witness": None if pair is None else [int(pair[0]), int(pair[1])],
        "solver": "tiled brute force on a Dask cluster",
        "time": elapsed,
        "n_U": ov.n_U,
        "n_V": ov.n_V,
        "m": ov.m,
    }


def ov_text(record: dict[str, Any]) -> str:
    lines = [f"c solver {record['solver']}", f"c time {record['time']:.6f} s"]
    if not record["has_pair"]:
        return "\n".join([*lines, "s NO ORTHOGONAL PAIR"])
    i, j = record["witness"]
    return "\n".join([*lines, "s ORTHOGONAL PAIR", f"v {i} {j}"])


# --------------------------------------------------------------------------- --via


def solve_via(instance: Any, args: argparse.Namespace, client: Any = None) -> dict[str, Any]:
    """Solve through the reduction chain to ``args.via`` (:func:`reductions.verify.solve_through`).

    The record has the keys of the direct solver (the witness checked on the instance) plus
    ``via``, ``path``, ``oracle`` and ``oracle_calls``.  With a ``client`` the last solver
    runs on that Dask cluster (:func:`reductions.verify.oracle_solver`); a progress bar
    counts the oracle calls.
    """
    from reductions.errors import VerificationFailed
    from reductions.registry import problem_name
    from reductions.verify import check_witness, oracle_solver, solve_through

    target = problem_name(args.via)
    start = time.perf_counter()
    with progress(desc="oracle", unit=" calls") as bar:
        oracle = counting(oracle_solver(target, args.oracle, scheduler=client), bar, args.oracle)
        answer, red = solve_through(instance, to=target, oracle=oracle)
    elapsed = time.perf_counter() - start
    kind = red.rules[0].source
    if check_witness(kind, instance, answer) is False:
        raise VerificationFailed(f"the chain {red.rule} returned a witness that does not check: {answer}")
    found, witness = answer is not None, None if answer is None else [int(x) for x in answer]
    solver = f"via {red.rules[-1].target} ({red.rule}; oracle {args.oracle})"
    if kind == "ksat":
        record = {"satisfiable": found, "witness": witness, "n_vars": instance.nv, "n_clauses": len(instance.clauses)}
    else:
        record = {"has_pair": found, "witness": witness, "n_U": instance.n_U, "n_V": instance.n_V, "m": instance.m}
    path = [r.name for r in red.rules]
    return {**record, "solver": solver, "time": elapsed, "via": red.rules[-1].target, "path": path,
            "oracle": args.oracle, "oracle_calls": int(red.stats.get("oracle_calls", 0))}


def counting(solve: Callable[[Any], Any], bar: Any, name: str) -> Callable[[Any], Any]:
    """``solve``, advancing ``bar`` (if any) by one after each call, named ``name`` (as reports name oracles)."""

    def oracle(target: Any) -> Any:
        result = solve(target)
        if bar is not None:
            bar.update(1)
        return result

    oracle.__name__ = name
    return oracle


# --------------------------------------------------------------------------- --scheduler (shared with grad and verify)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scheduler local|ADDRESS`` and ``--scheduler-timeout SECONDS``."""
    from reductions.distributed_common import add_scheduler_argument

    add_scheduler_argument(parser)
    parser.add_argument(
        "--scheduler-timeout",
        type=float,
        metavar="SECONDS",
        help="with --scheduler ADDRESS: seconds to wait for the scheduler to answer (default 20)",
    )


def check_cluster_arguments(args: argparse.Namespace, problem: str | None = None) -> None:
    """Refuse a malformed ``--scheduler``/``--scheduler-timeout`` before any work is done.

    ``problem`` is the last problem of the chain: its cluster solver is built once (without
    connecting) so that what no cluster runs (``--oracle mp``, a maxip node) is refused first.
    """
    from reductions.distributed_common import check_scheduler
    from reductions.verify import oracle_solver

    check_scheduler(args.scheduler)
    if problem is not None and args.scheduler is not None:
        oracle_solver(problem, getattr(args, "oracle", "exact"), scheduler=args.scheduler)  # refuses what no cluster runs
    timeout = args.scheduler_timeout
    if timeout is not None and args.scheduler is None:
        raise FinegrainError("--scheduler-timeout applies with --scheduler ADDRESS only")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise FinegrainError(f"--scheduler-timeout: must be a positive number of seconds, got {timeout!r}")


def open_client(args: argparse.Namespace) -> ContextManager[Any]:
    """The Dask client ``--scheduler`` names, for a ``with`` block (``None`` without the option)."""
    from reductions.distributed_common import client_from_argument

    if args.scheduler_timeout is None:
        return client_from_argument(args.scheduler)
    return client_from_argument(args.scheduler, timeout=args.scheduler_timeout)


#: problem kind -> function solving an instance of that kind and returning the JSON record.
SOLVE: dict[str, Callable[[Any, argparse.Namespace], dict[str, Any]]] = {"ksat": solve_ksat, "ov": solve_ov_instance}
#: problem kind -> the same on a Dask cluster (``--scheduler``), given its client.
ON_CLUSTER: dict[str, Callable[[Any, Any], dict[str, Any]]] = {"ksat": solve_ksat_on_cluster, "ov": solve_ov_on_cluster}
#: problem kind -> text output of a record.
TEXT: dict[str, Callable[[dict[str, Any]], str]] = {"ksat": ksat_text, "ov": ov_text}

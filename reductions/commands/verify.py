"""``finegrain verify``: run an instance through a reduction chain and compare with ground truth.

``--scheduler local|ADDRESS`` sends the chain's last solver to a Dask cluster
(:func:`reductions.verify.oracle_solver`): the exact attention oracle (one block of rows per
task, so every gradient is the in-process oracle's bits and the report has the same
verdict, witness, margins and oracle errors; a path ending in ``attention`` gets the same
forward bits with the ranges' own bounds, never larger) or the OV brute force; for an OV
instance the
ground truth is searched there too (the same first pair).  A CNF's ground truth stays with
python-sat in this process, and ``--recompute`` recomputes with the mp oracle here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reductions.commands.common import check_output_path, message, print_json, progress
from reductions.commands.reduce import add_path_arguments, parse_options, read_instance
from reductions.commands.solve import add_cluster_arguments, check_cluster_arguments, counting, open_client

EXIT_AGREE, EXIT_DISAGREE = 0, 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check a reduction chain on an instance against ground truth",
        description=(
            "Reduce FILE (DIMACS CNF or OV) along the preferred path to --to (default gradient) "
            "or along --path, solve the last problem with --oracle, decode the answer back, and "
            "compare it with ground truth (SAT solver / brute force); the witness is checked on "
            "FILE's instance.  Exit status 0 when the chain agreed, 1 when it did not, 2 for bad "
            "input or a refused verdict (margin not above the oracle's error: try --oracle mp "
            "or --recompute).  --counterexample OUT also searches small random instances "
            "(hypothesis) for one the path gets wrong and saves the smallest found.  "
            "--scheduler runs the exact oracle (or the OV brute force) on a Dask cluster, with "
            "the same report."
        ),
        epilog="Example: finegrain verify f.cnf --oracle exact --json",
    )
    parser.add_argument("file", help="instance file: DIMACS CNF or OV (text or .npz)")
    add_path_arguments(parser, to_default="gradient")
    parser.add_argument("--oracle", choices=("exact", "mp", "fast"), default="exact", help="attention oracle")
    parser.add_argument(
        "--recompute", action="store_true", help="recompute with the mp oracle when a decoder refuses"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--counterexample", metavar="OUT", help="search for a failing small instance, save it to OUT")
    parser.add_argument("--max-examples", type=int, default=100, help="instances tried by --counterexample")
    parser.add_argument(
        "--plot", metavar="FILE", help="draw the decoded statistic against the threshold and the oracle's error (.png or .svg)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT (and the --plot FILE)")
    add_cluster_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reductions.registry import problem_of, resolve_path
    from reductions.verify import verify

    instance = read_instance(args.file)
    rules = resolve_path(args.path, problem_of(instance), args.to)
    check_cluster_arguments(args, rules[-1].target if rules else None)
    options = parse_options(args.option)
    out = check_output_path(args.counterexample, args.force) if args.counterexample else None
    if args.plot:
        from reductions.plots import check_plot_path

        check_plot_path(args.plot)
        check_output_path(args.plot, args.force)
    with open_client(args) as client:
        with progress(desc="oracle", unit=" calls") as bar:
            oracle = counted_oracle(rules, args, bar, client)
            truth = ground_truth_on_cluster(instance, client)
            report = verify(
                instance, args.path, oracle, to=args.to, recompute=args.recompute, ground_truth=truth, **options
            )
        found = search(report, args, options, out, client) if out is not None else None
    if args.plot:
        from reductions.plots import plot_separation

        plot_separation([report], args.plot, force=args.force)
        message(f"wrote {args.plot}")
    data = report.to_json()
    status = EXIT_AGREE if report.ok else EXIT_DISAGREE
    if out is not None:
        data["counterexample"] = None if found is None else str(out)
        status = EXIT_DISAGREE if found is not None else status
    if args.json:
        print_json(data)
    else:
        print(report.summary())
    return status


def counted_oracle(rules: list, args: argparse.Namespace, bar: Any, client: Any = None) -> Any:
    """``args.oracle``, counting its calls on ``bar`` when the path ends in an attention problem.

    With a Dask ``client`` the chain's last solver runs on that cluster.
    """
    from reductions.verify import NUMERIC_PROBLEMS, oracle_solver

    numeric = bool(rules) and rules[-1].target in NUMERIC_PROBLEMS
    if not rules or (client is None and (not numeric or (args.recompute and args.oracle == "mp"))):
        return args.oracle  # (verify recognises the mp oracle by name when it decides to recompute)
    solve = oracle_solver(rules[-1].target, args.oracle, scheduler=client)
    # the report names the oracle as given; only attention-oracle calls are counted
    return counting(solve, bar if numeric else None, args.oracle)


def ground_truth_on_cluster(instance: Any, client: Any) -> tuple[bool, Any] | None:
    """For an OV instance on a Dask cluster: ``(has a pair, the first pair)``; else ``None``
    (:func:`reductions.verify.verify` computes it in this process)."""
    from reductions.registry import problem_of

    if client is None or problem_of(instance) != "ov":
        return None
    from solvers.ov_distributed import solve_ov_distributed

    pair = solve_ov_distributed(instance, client)
    return pair is not None, pair


def search(report: Any, args: argparse.Namespace, options: dict[str, Any], out: Path, client: Any = None) -> Any:
    """Hypothesis search for a failing instance of the report's problem; save the smallest one."""
    from reductions.verify import find_counterexample, oracle_solver

    message(f"searching up to {args.max_examples} small {report.problem} instances for a failure ...")
    oracle = args.oracle if client is None else oracle_solver(report.steps[-1].problem, args.oracle, scheduler=client)
    found = find_counterexample(
        report.path, source=report.problem, to=args.to, oracle=oracle, max_examples=args.max_examples, **options
    )
    if found is None:
        message("no failing instance found")
        return None
    save_instance(found, report.problem, out, args.force)
    message(f"saved the smallest failing instance found to {out}")
    return found


def save_instance(instance: Any, problem: str, path: Path, force: bool) -> None:
    """Write a CNF as DIMACS, an OV instance in the OV format (text or .npz by suffix)."""
    from reductions.commands.common import provenance

    if problem == "ksat":
        from reductions.problems.cnf import write_dimacs

        write_dimacs(instance, path, provenance=provenance(), force=force)
    else:
        from reductions.problems.ov import OV, write_ov

        write_ov(OV(instance.U, instance.V, meta={**instance.meta, "provenance": provenance()}), path, force=force)

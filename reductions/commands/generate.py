"""``finegrain generate``: k-SAT and OV instances, and CNF families with known status.

Each kind is a sub-subcommand that calls one library generator; the file it writes (or the
text it prints when ``-o`` is omitted) records the finegrain version, the command line and
the seed (a fresh seed is drawn and recorded when ``--seed`` is not given).

::

    finegrain generate ksat --vars 20 --clauses 85 --k 3 --seed 7 [--planted] -o f.cnf
    finegrain generate ov --n 1024 --m 40 --mu 2 --seed 7 -o inst.ov
    finegrain generate php --holes 5 -o php5.cnf
    finegrain generate coloring --graph petersen --colors 3 -o petersen3.cnf
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from reductions.commands.common import check_output_path, message, provenance

Builder = Callable[[argparse.Namespace], tuple[Any, dict[str, Any]]]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate k-SAT, OV and structured CNF instances",
        description=(
            "Generate an instance and write it to -o FILE (or print it).  CNF kinds write DIMACS "
            "(gzip-compressed if FILE ends in .gz); ov writes the OV text format, or .npz."
        ),
        epilog="Example: finegrain generate ksat --vars 20 --clauses 85 --k 3 --seed 7 -o f.cnf",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=type(parser))
    for name, add, build in KINDS:
        sub = add(kinds)
        sub.add_argument("-o", "--output", help="output file (default: print to stdout)")
        sub.add_argument("--force", action="store_true", help="overwrite the output file")
        sub.set_defaults(func=run, build=build, kind_name=name)


def run(args: argparse.Namespace) -> int:
    if args.output is not None:
        check_output_path(args.output, args.force)  # refuse before spending time generating
    instance, record = args.build(args)
    if args.kind_name == "ov":
        _emit_ov(instance, args, record)
    else:
        _emit_cnf(instance, args, record)
    return 0


def _emit_cnf(cnf: Any, args: argparse.Namespace, record: dict[str, Any]) -> None:
    from reductions.problems.cnf import dimacs_string, write_dimacs

    if args.output is None:
        print(dimacs_string(cnf, record), end="")
        return
    write_dimacs(cnf, args.output, provenance=record, force=args.force)
    message(f"wrote {args.output}: CNF with {cnf.nv} variables, {len(cnf.clauses)} clauses (seed {record['seed']})")


def _emit_ov(ov: Any, args: argparse.Namespace, record: dict[str, Any]) -> None:
    from reductions.problems.ov import OV, format_ov_text, write_ov

    ov = OV(ov.U, ov.V, meta={**ov.meta, "provenance": record})
    if args.output is None:
        print(format_ov_text(ov).decode(), end="")
        return
    write_ov(ov, args.output, force=args.force)
    message(f"wrote {args.output}: OV with n_U = {ov.n_U}, n_V = {ov.n_V}, m = {ov.m} (seed {record['seed']})")


def _seed(args: argparse.Namespace) -> int:
    from reductions.generators.ksat import resolve_seed

    return resolve_seed(args.seed)


def _seed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, help="random seed (default: a fresh one, recorded in the output)")


# --------------------------------------------------------------------------- ksat


def _add_ksat(kinds: Any) -> argparse.ArgumentParser:
    parser = kinds.add_parser(
        "ksat",
        help="uniform random or planted k-CNF",
        description=(
            "Random k-CNF: each clause has k distinct variables and random signs.  --planted keeps "
            "only clauses satisfied by a hidden random assignment (recorded as a 'c planted-model' "
            "comment); --hiding q-hidden also hides it from literal-count statistics."
        ),
        epilog="Example: finegrain generate ksat --vars 20 --ratio 4.26 --planted --seed 1 -o f.cnf",
    )
    parser.add_argument("--vars", type=int, required=True, help="number of variables n")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--clauses", type=int, help="number of clauses m")
    size.add_argument("--ratio", type=float, help="clauses per variable (m = round(ratio * n))")
    parser.add_argument("--k", type=int, default=3, help="clause width (default 3)")
    parser.add_argument("--planted", action="store_true", help="guaranteed satisfiable: plant a solution")
    parser.add_argument(
        "--hiding", choices=("naive", "q-hidden"), default="naive", help="how --planted chooses clauses"
    )
    _seed_argument(parser)
    return parser


def _build_ksat(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from reductions.generators.ksat import planted_ksat, random_ksat

    seed = _seed(args)
    sizes = {"n_clauses": args.clauses, "k": args.k, "ratio": args.ratio, "seed": seed}
    if args.planted:
        cnf = planted_ksat(args.vars, hiding=args.hiding, **sizes).cnf
        return cnf, provenance(seed, generator="planted_ksat")
    return random_ksat(args.vars, **sizes), provenance(seed, generator="random_ksat")


# --------------------------------------------------------------------------- families


def _add_php(kinds: Any) -> argparse.ArgumentParser:
    parser = kinds.add_parser(
        "php", help="pigeonhole PHP(kn+1, n) (unsatisfiable)", epilog="Example: finegrain generate php --holes 5"
    )
    parser.add_argument("--holes", type=int, required=True, help="number of holes n")
    parser.add_argument("--kval", type=int, default=1, help="pigeons allowed per hole (default 1)")
    return parser


def _build_php(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from reductions.generators.families import pigeonhole

    return pigeonhole(args.holes, kval=args.kval), provenance(None, generator="pigeonhole")


def _add_sized(name: str, text: str) -> Callable[[Any], argparse.ArgumentParser]:
    def add(kinds: Any) -> argparse.ArgumentParser:
        parser = kinds.add_parser(name, help=text, epilog=f"Example: finegrain generate {name} --size 3")
        parser.add_argument("--size", type=int, required=True, help="problem size n")
        if name == "cb":
            parser.add_argument("--exhaustive", action="store_true", help="both constraints on every cell")
        return parser

    return add


def _build_sized(family: str) -> Builder:
    def build(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
        from reductions.generators import families

        make = getattr(families, family)
        cnf = make(args.size, exhaustive=args.exhaustive) if family == "mutilated_chessboard" else make(args.size)
        return cnf, provenance(None, generator=family)

    return build


def _add_coloring(kinds: Any) -> argparse.ArgumentParser:
    from reductions.generators.families import GRAPHS

    parser = kinds.add_parser(
        "coloring",
        help="graph k-colouring (satisfiable iff k >= chromatic number)",
        description="Graph colouring CNF of a named or random networkx graph; one of: " + ", ".join(sorted(GRAPHS)),
        epilog="Example: finegrain generate coloring --graph gnp:30,0.2 --colors 4 --seed 1",
    )
    parser.add_argument("--graph", required=True, help="NAME or NAME:ARGS, e.g. petersen, cycle:7, gnp:30,0.2")
    parser.add_argument("--colors", type=int, required=True, help="number of colours k")
    parser.add_argument("--at-least-one", action="store_true", help="omit the at-most-one-colour clauses")
    _seed_argument(parser)
    return parser


def _build_coloring(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from reductions.generators.families import graph_coloring, named_graph

    seed = _seed(args)
    G = named_graph(args.graph, seed=seed)
    cnf = graph_coloring(G, args.colors, exactly_one=not args.at_least_one)
    return cnf, provenance(seed, generator="graph_coloring", graph=args.graph)


# --------------------------------------------------------------------------- ov


def _add_ov(kinds: Any) -> argparse.ArgumentParser:
    parser = kinds.add_parser(
        "ov",
        help="Orthogonal Vectors: random, mu expected pairs, planted, or pair-free",
        description=(
            "OV instance with n_U + n_V vectors in {0,1}^m.  Entries are Bernoulli(--p) (default "
            "0.5); --mu picks the density with mu expected orthogonal pairs; --planted K gives exactly "
            "K pairs (recorded in meta); --no-pair gives none (verified)."
        ),
        epilog="Example: finegrain generate ov --n 1024 --m 40 --mu 2 --seed 7 -o inst.ov",
    )
    parser.add_argument("--n", type=int, help="vectors on each side (sets n_U and n_V)")
    parser.add_argument("--n-U", dest="n_U", type=int, help="vectors in U (default --n)")
    parser.add_argument("--n-V", dest="n_V", type=int, help="vectors in V (default --n)")
    parser.add_argument("--m", type=int, required=True, help="dimension m")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--p", type=float, help="density of ones (default 0.5)")
    mode.add_argument("--mu", type=float, help="expected number of orthogonal pairs")
    mode.add_argument("--planted", type=int, metavar="K", help="exactly K orthogonal pairs")
    mode.add_argument("--no-pair", action="store_true", help="no orthogonal pair")
    _seed_argument(parser)
    return parser


def _build_ov(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from reductions.errors import InvalidInstance
    from reductions.generators import ov as gen

    n_U, n_V = (args.n if side is None else side for side in (args.n_U, args.n_V))
    if n_U is None or n_V is None:
        raise InvalidInstance("give --n (both sides) or both --n-U and --n-V")
    seed = _seed(args)
    if args.mu is not None:
        ov = gen.random_ov_mu(n_U, n_V, args.m, args.mu, seed=seed)
    elif args.planted is not None:
        ov = gen.planted_ov(n_U, n_V, args.m, args.planted, seed=seed)
    elif args.no_pair:
        ov = gen.no_pair_ov(n_U, n_V, args.m, seed=seed)
    else:
        ov = gen.random_ov(n_U, n_V, args.m, p=0.5 if args.p is None else args.p, seed=seed)
    return ov, provenance(seed, generator=ov.meta.get("generator"))


#: (kind, add its parser, build its instance), in the order ``generate --help`` lists them.
KINDS: list[tuple[str, Callable[[Any], argparse.ArgumentParser], Builder]] = [
    ("ksat", _add_ksat, _build_ksat),
    ("ov", _add_ov, _build_ov),
    ("coloring", _add_coloring, _build_coloring),
    ("php", _add_php, _build_php),
    ("gt", _add_sized("gt", "ordering principle GT(n) (unsatisfiable)"), _build_sized("ordering_principle")),
    ("par", _add_sized("par", "parity principle PAR(n) (unsatisfiable)"), _build_sized("parity_principle")),
    ("cb", _add_sized("cb", "mutilated chessboard CB(n) (unsatisfiable)"), _build_sized("mutilated_chessboard")),
]

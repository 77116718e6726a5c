"""``finegrain generate``: k-SAT and OV instances, and CNF families with known status.

Each kind is a sub-subcommand that calls one library generator; the file it writes (or the
text it prints when ``-o`` is omitted) records the finegrain version, the command line and
the seed (a fresh seed is drawn and recorded when ``--seed`` is not given).  With ``--json``
(which needs ``-o``: the instance goes to the file, the summary to stdout) it prints
:func:`summary` of what the generator returned: sizes, seed, output file and the planted
witness where there is one.

::

    finegrain generate ksat --vars 20 --clauses 85 --k 3 --seed 7 [--planted] -o f.cnf
    finegrain generate ov --n 1024 --m 40 --mu 2 --seed 7 -o inst.ov --json
    finegrain generate php --holes 5 -o php5.cnf
    finegrain generate coloring --graph petersen --colors 3 -o petersen3.cnf
"""

from __future__ import annotations

import argparse
import sys
import re
from pathlib import Path
from typing import Any, Callable

from attention.errors import FinegrainError
from reductions.commands.common import (
    STEPS,
    advance,
    check_output_path,
    message,
    print_json,
    progress,
    provenance,
    ticking,
)

Builder = Callable[[argparse.Namespace], tuple[Any, dict[str, Any]]]

JSON_HELP = (
    "print a JSON summary (kind, sizes, seed, output file, planted witness) on stdout; needs -o "
    "(without -o the instance itself is printed on stdout)"
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate k-SAT, OV and structured CNF instances",
        description=(
            "Generate an instance and write it to -o FILE (or print it).  CNF kinds write DIMACS "
            "(gzip-compressed if FILE ends in .gz); ov writes the OV text format, or .npz.  "
            "--json prints a summary of the instance written (sizes, seed, planted witness) on "
            "stdout and needs -o: the instance itself is never mixed into the JSON."
        ),
        epilog="Example: finegrain generate ksat --vars 20 --clauses 85 --k 3 --seed 7 -o f.cnf --json",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=type(parser))
    for name, add, build in KINDS:
        sub = add(kinds)
        sub.add_argument("-o", "--output", help="output file (default: print the instance to stdout)")
        sub.add_argument("--force", action="store_true", help="overwrite the output file")
        sub.add_argument("--json", action="store_true", help=JSON_HELP)
        sub.set_defaults(func=run, build=build, kind_name=name)


def run(args: argparse.Namespace) -> int:
    if args.json and args.output is None:
        raise FinegrainError(
            "--json prints a summary of the file written: give -o FILE, "
            "or drop --json to print the instance itself on stdout"
        )
    if args.output is not None:
        check_output_path(args.output, args.force)  # refuse before spending time generating
    emit = _emit_ov if args.kind_name == "ov" else _emit_cnf
    # the generators and writers report no progress of their own: two steps (generate, write),
    # redrawn while they run, shown only if the run takes longer than a second (and stderr is
    # a terminal)
    bar = progress(total=2, desc=f"generate {args.kind_name}", unit="step", delay=1.0, leave=False, bar_format=STEPS)
    with bar, ticking(bar):
        instance, record = args.build(args)
        if args.output is not None:
            advance(bar, 1, f"write {Path(args.output).name}")
            done = emit(instance, args, record)
        advance(bar, 2)
    if args.output is None:
        emit(instance, args, record)  # once the bar is cleared: nothing of it mixed into the text
        return 0
    info = summary(instance, args.kind_name, record, args.output)
    seed = "" if record["seed"] is None else f" (seed {record['seed']})"
    message(f"wrote {args.output}: {done}{seed}")
    if args.json:
        print_json(info)
    return 0


def _emit_cnf(instance: Any, args: argparse.Namespace, record: dict[str, Any]) -> str:
    from reductions.problems.cnf import dimacs_string, write_dimacs

    cnf = getattr(instance, "cnf", instance)  # a PlantedCNF carries its formula
    if args.output is None:
        print(dimacs_string(cnf, record), end="")
    else:
        write_dimacs(cnf, args.output, provenance=record, force=args.force)
    return f"CNF with {cnf.nv} variables, {len(cnf.clauses)} clauses"


def _emit_ov(ov: Any, args: argparse.Namespace, record: dict[str, Any]) -> str:
    from reductions.problems.ov import iter_ov_text, write_ov

    ov = ov.with_meta({**ov.meta, "provenance": record})
    if args.output is None:
        for chunk in iter_ov_text(ov):
            sys.stdout.write(chunk.decode())
    else:
        write_ov(ov, args.output, force=args.force)
    return f"OV with n_U = {ov.n_U}, n_V = {ov.n_V}, m = {ov.m}"


def summary(instance: Any, kind: str, record: dict[str, Any], output: str | Path | None = None) -> dict[str, Any]:
    """What ``finegrain generate ... --json`` prints: the generator's result, summarised.

    Parameters
    ----------
    instance : the library generator's result: a ``pysat.formula.CNF``, a
        :class:`~reductions.generators.ksat.PlantedCNF` or an :class:`~reductions.problems.ov.OV`.
    kind : the ``generate`` kind (``ksat``, ``ov``, ``php``, ...).
    record : the provenance written into the file (version, command line, seed, generator).
    output : the file written.

    Returns
    -------
    dict
        ``kind``, ``problem`` (``ksat`` or ``ov``), ``generator``, ``seed``, ``output``,
        ``provenance`` and ``known_answer`` (True when the generator guarantees a model or an
        orthogonal pair, False for a guaranteed no-instance, else None).  CNF: ``n_vars``,
        ``n_clauses``, ``max_clause_width``, ``description`` (the generator's comment lines)
        and, when planted, ``planted_model`` (DIMACS literals).  OV: every entry of the
        generator's ``meta`` (``n_U``, ``n_V``, ``m``, ``p``, ``seed``; ``mu``; ``k`` and
        ``planted_pairs`` for a planted instance).
    """
    from reductions.problems.cnf import PLANTED_TAG, PROVENANCE_TAG, planted_model

    out: dict[str, Any] = {
        "kind": kind,
        "generator": record.get("generator"),
        "seed": record.get("seed"),
        "output": None if output is None else str(output),
    }
    cnf = getattr(instance, "cnf", instance)
    if hasattr(instance, "U"):  # OV
        meta = {key: value for key, value in instance.meta.items() if key != "provenance"}
        known = meta["k"] > 0 if "k" in meta else (False if meta.get("generator") == "no_pair_ov" else None)
        out.update(problem="ov", **meta, known_answer=known)
    else:
        model = getattr(instance, "model", None)
        if model is None:
            model = planted_model(cnf)
        description = [c for c in cnf.comments if not c.startswith((PLANTED_TAG, PROVENANCE_TAG))]
        unsat = any(re.search(r"\bstatus=UNSAT\b", c) for c in description)
        out.update(
            problem="ksat",
            n_vars=cnf.nv,
            n_clauses=len(cnf.clauses),
            max_clause_width=max((len(c) for c in cnf.clauses), default=0),
            description=description,
            known_answer=True if model is not None else (False if unsat else None),
        )
        if model is not None:
            out["planted_model"] = list(model)
    out["provenance"] = record
    return out


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
        return planted_ksat(args.vars, hiding=args.hiding, **sizes), provenance(seed, generator="planted_ksat")
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

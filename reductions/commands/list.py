"""``finegrain list``: the reduction graph, its size formulas and the SETH arithmetic."""

from __future__ import annotations

import argparse
from typing import Any

from reductions.commands.common import print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "list",
        help="the reduction graph with each rule's reference",
        description=(
            "Print the registered problems and reductions (each with its reference, oracle calls "
            "and size formulas).  --formulas: n, d and B of k-SAT -> gradient as functions of N "
            "(variables) and m (clauses), composed along each route.  --seth: what an "
            "O(n^(2-delta)) gradient algorithm would give for k-SAT."
        ),
        epilog="Example: finegrain list --formulas --seth",
    )
    parser.add_argument("--formulas", action="store_true", help="composed k-SAT -> gradient size formulas")
    parser.add_argument("--seth", action="store_true", help="the SETH arithmetic of the default route")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = listing(formulas=args.formulas, seth=args.seth)
    if args.json:
        print_json(data)
    else:
        print(render(data))
    return 0


def listing(formulas: bool = False, seth: bool = False) -> dict[str, Any]:
    """The registry as plain data (what ``--json`` prints)."""
    from reductions.registry import PROBLEMS, all_rules

    rules = all_rules()
    data: dict[str, Any] = {
        "problems": [
            {"name": p.name, "title": p.title, "answer": p.answer, "params": {k: v[1] for k, v in p.params.items()}}
            for p in PROBLEMS.values()
        ],
        "rules": [
            {
                "name": r.name,
                "source": r.source,
                "target": r.target,
                "default": r.default,
                "reference": r.reference,
                "summary": r.summary,
                "oracle_calls": str(r.calls_expression),
                "formulas": {k: str(v) for k, v in r.expressions.items()},
            }
            for r in rules
        ],
    }
    if formulas:
        data["formulas"] = route_formulas()
    if seth:
        data["seth"] = seth_summary()
    return data


def route_formulas(source: str = "ksat", target: str = "gradient") -> list[dict[str, Any]]:
    """For every route ``source -> target``: the composed formulas and oracle calls."""
    from reductions.errors import NoReductionPath
    from reductions.registry import all_paths, compose

    paths = all_paths(source, target)
    if not paths:
        raise NoReductionPath(f"no route from {source} to {target} is registered yet")
    out = []
    for index, path in enumerate(paths):
        composed = compose(path)
        out.append(
            {
                "path": [r.name for r in path],
                "preferred": index == 0,
                "formulas": {k: str(v) for k, v in composed.formulas().items()},
                "oracle_calls": str(composed.oracle_calls()),
            }
        )
    return out


def seth_summary() -> dict[str, Any]:
    """:func:`reductions.registry.seth_arithmetic` of the default route, as strings and numbers."""
    from reductions.registry import seth_arithmetic

    arith = seth_arithmetic()
    return {
        "path": list(arith.path),
        "n": str(arith.n),
        "d": str(arith.d),
        "oracle_calls": str(arith.calls),
        "ksat_time": str(arith.time),
        "exponent": str(arith.exponent),
        "bases": {str(delta): arith.base(delta) for delta in (0.01, 0.1, 0.5, 1.0)},
    }


def render(data: dict[str, Any]) -> str:
    """The listing as text."""
    lines = ["Problems:"]
    for p in data["problems"]:
        params = ", ".join(f"{k} ({v})" for k, v in p["params"].items())
        lines.append(f"  {p['name']:<10} {p['title']}")
        lines.append(f"  {'':<10} parameters: {params}")
    lines.append("")
    lines.append("Reductions (source -> target, * = default between its two problems):")
    for r in data["rules"]:
        mark = "*" if r["default"] else " "
        lines.append(f" {mark}{r['source']:>9} -> {r['target']:<9} {r['name']}: {r['summary']}")
        lines.append(f"  {'':<22} reference: {r['reference']}")
        if r["formulas"]:
            lines.append(f"  {'':<22} sizes: " + "; ".join(f"{k} = {v}" for k, v in r["formulas"].items()))
        lines.append(f"  {'':<22} oracle calls: {r['oracle_calls']}")
    for route in data.get("formulas", []):
        lines.append("")
        head = "preferred route" if route["preferred"] else "route"
        lines.append(f"k-SAT -> gradient, {head}: {' -> '.join(route['path'])}   (N variables, m clauses)")
        for k, v in route["formulas"].items():
            lines.append(f"  {k} = {v}")
        lines.append(f"  oracle calls = {route['oracle_calls']}")
    if "seth" in data:
        s = data["seth"]
        lines += [
            "",
            f"SETH arithmetic (route {' -> '.join(s['path'])}):",
            f"  tokens n = {s['n']},  head dimension d = {s['d']},  oracle calls = {s['oracle_calls']}",
            "  A gradient algorithm running in time O(n^(2-delta) d^c) decides k-SAT in time",
            f"    T(N, m) = {s['ksat_time']}",
            "  With m = alpha N clauses (sparsification, Impagliazzo-Paturi-Zane 2001):",
            f"    log2 T / N  ->  {s['exponent']}   (0 < delta <= 1)",
            "  i.e. k-SAT in O(b^N) for every k: "
            + ", ".join(f"delta = {k}: b = {v:.4f}" for k, v in s["bases"].items()),
            "  b < 2 for every delta > 0, contradicting SETH (AS24 Theorem 1.5; THEORY 1.3, 4.8).",
        ]
    return "\n".join(lines)

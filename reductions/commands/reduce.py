"""``finegrain reduce``: reduce an instance file along the reduction graph and write the result."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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
from reductions.errors import FormatError, InvalidInstance

_ZIP = b"PK"
WRITABLE = ("ov", "attention", "gradient")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reduce",
        help="reduce an instance (CNF, OV) to another problem and write it",
        description=(
            "Reduce FILE (DIMACS CNF or OV text/.npz, detected from the content) along the "
            "preferred path (or --path) to --to and write the result: an OV file for ov, an "
            ".npz attention instance (readable by 'finegrain grad') for attention/gradient, "
            "with the path, every step's parameters and the decoding data in its meta."
        ),
        epilog="Example: finegrain reduce f.cnf --to gradient -o inst.npz",
    )
    parser.add_argument("file", help="instance file: DIMACS CNF (.cnf, .cnf.gz) or OV (.ov text, .npz)")
    add_path_arguments(parser, to_default=None)
    parser.add_argument("-o", "--output", required=True, help="output file (.npz for attention/gradient)")
    parser.add_argument("--force", action="store_true", help="overwrite the output file")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.set_defaults(func=run)


def add_path_arguments(parser: argparse.ArgumentParser, to_default: str | None) -> None:
    """``--to``, ``--path`` and ``--option`` (shared with ``finegrain verify``)."""
    parser.add_argument(
        "--to", default=to_default, help="target problem: ov, maxip, bhcp, gapann, attention, gradient"
    )
    parser.add_argument(
        "--path",
        help="comma-separated rule names (e.g. ksat_to_ov,ov_to_gradient_probe) or problems to pass through",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for the rules that accept it (value read as JSON, else as a string); repeatable",
    )


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["mu=16", "convention=raw"]`` -> ``{"mu": 16, "convention": "raw"}``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInstance(f"--option {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def read_instance(path: str | Path) -> Any:
    """Read a DIMACS CNF or an OV instance (as ``finegrain solve`` does), or an attention ``.npz``."""
    from reductions.commands.solve import load_instance

    if _is_attention_npz(Path(path)):
        from attention.instance import AttentionInstance

        return AttentionInstance.load(path)
    return load_instance(path)[1]


def _is_attention_npz(path: Path) -> bool:
    import numpy as np

    try:
        with path.open("rb") as fh:
            if fh.read(2) != _ZIP:
                return False
        with np.load(path, allow_pickle=False) as archive:
            return {"A1", "A2", "A3"} <= set(archive.files)
    except OSError:
        return False
    except Exception as exc:
        raise FormatError(f"{path}: not a readable .npz archive ({exc})") from None


def run(args: argparse.Namespace) -> int:
    from reductions.registry import problem_name, problem_of, reduce, resolve_path

    instance = read_instance(args.file)
    target = problem_name(args.to) if args.to else None
    out = check_output_path(args.output, args.force)
    options = parse_options(args.option)
    rules = resolve_path(args.path, problem_of(instance), target)  # refuse before reducing
    last = rules[-1].target if rules else None
    if rules and last not in WRITABLE:
        raise InvalidInstance(
            f"there is no file format for {last} instances; reduce to one of {', '.join(WRITABLE)}"
        )
    # one step per rule of the path, then the write; redrawn while a step runs, shown only
    # when the run takes longer than a second and stderr is a terminal
    bar = progress(total=len(rules) + 1, desc="reduce", unit="step", delay=1.0, leave=False, bar_format=STEPS)

    def on_step(k: int, rule: Any) -> None:
        advance(bar, k, rule.name)  # the rule now running

    with bar, ticking(bar):
        red = reduce(instance, to=target, path=args.path, on_step=on_step, **options)
        advance(bar, len(rules), f"write {out.name}")
        chain = chain_meta(red, source_file=str(args.file))
        written = write_target(red.target, last, out, chain, args.force)
        advance(bar, len(rules) + 1)
    info = summary(red, written)
    if args.json:
        print_json(info)
    else:
        message(f"wrote {written}: {last} instance via {' -> '.join(info['path'])}")
        message("  " + ", ".join(f"{k} = {v}" for k, v in info["params"].items()))
    return 0


def summary(red: Any, output: str | Path) -> dict[str, Any]:
    """What ``finegrain reduce --json`` prints for the result ``red`` of :func:`reductions.reduce`.

    ``output`` (the file written), ``problem`` (the last problem), ``path`` (rule names),
    ``problems`` (the nodes of the chain), ``source`` (problem and parameters of the input),
    ``params`` (the last step's parameters: the target's sizes, entry bound, ...) and
    ``seconds_reduce``.
    """
    from reductions.registry import measure
    from reductions.verify import _plain

    source = red.rules[0].source
    return {
        "output": str(output),
        "problem": red.rules[-1].target,
        "path": [rule.name for rule in red.rules],
        "problems": red.problems(),
        "source": {"problem": source, "params": _json_ready(_plain(measure(source, red.source)))},
        "params": _json_ready(_plain(red.steps[-1].params)),
        "seconds_reduce": red.stats.get("seconds_reduce"),
    }


def chain_meta(red: Any, source_file: str | None = None) -> dict[str, Any]:
    """The path, the source's parameters and each step's parameters and metadata (JSON-ready)."""
    from reductions.registry import measure
    from reductions.verify import _plain

    steps = []
    for rule, step in zip(red.rules, red.steps):
        entry = {"rule": rule.name, "problem": rule.target, "params": _json_ready(_plain(step.params))}
        meta = getattr(step.target, "meta", None)
        if isinstance(meta, dict) and step is not red.steps[-1]:
            entry["meta"] = _json_ready(_plain(meta))
        steps.append(entry)
    source = red.rules[0].source
    return {
        "path": [r.name for r in red.rules],
        "problems": red.problems(),
        "options": _json_ready(_plain(red.options)),
        "source": {"problem": source, "file": source_file, "params": _plain(measure(source, red.source))},
        "steps": steps,
    }


def _json_ready(value: Any) -> Any:
    """Drop what JSON cannot hold (arrays are kept only as lists of numbers)."""
    return json.loads(json.dumps(value, default=lambda _: None, allow_nan=False))


def write_target(target: Any, problem: str, path: Path, chain: dict[str, Any], force: bool) -> Path:
    """Write the reduced instance with ``chain`` and provenance in its ``meta``."""
    meta = {**dict(getattr(target, "meta", {}) or {}), "chain": chain, "provenance": provenance()}
    if problem == "ov":
        from reductions.problems.ov import OV, write_ov

        return write_ov(OV(target.U, target.V, meta=meta), path, force=force)
    if path.suffix != ".npz":
        raise InvalidInstance(f"{path}: {problem} instances are written as .npz; use a .npz output name")
    return target.replace(meta=meta).save(path, force=force)

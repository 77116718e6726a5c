"""Generate docs/api.md, the API reference, from the public functions' docstrings.

Usage::

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is not what this script writes

The public names of a module are its ``__all__`` when it has one, else the functions and
classes it defines whose names do not start with ``_``.  Docstrings are shown verbatim
(numpydoc, readable as plain text on GitHub).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "api.md"

#: (module, one-line description), in the order the reference presents them.
MODULES: list[tuple[str, str]] = [
    ("attention", "attention instances and the gradient/forward/loss dispatch (exact, mp, fast)"),
    ("attention.instance", "the AttentionInstance record and its .npz files"),
    ("attention.results", "what every oracle returns: a value and the error it guarantees"),
    ("attention.oracle", "the exact gradient in float64, blocked over query rows"),
    ("attention.oracle_mp", "the gradient in mpmath at a chosen number of digits"),
    ("attention.memory", "available memory and the estimates the guards compare with it"),
    ("attention.npzfile", ".npz members checked from their headers before anything is read"),
    ("attention.vectorize", "numba kernels compiled with 512-bit vectors preferred"),
    ("attention.fast", "the polynomial-method gradient (AS24 Section D)"),
    ("attention.polynomials", "polynomial approximations of exp with certified relative error"),
    ("attention.features", "the feature maps phi, psi of rank C(d+g, g)"),
    ("attention.phase", "the phase-transition experiment around B ~ sqrt(ln n)"),
    ("reductions", "reduce and verify"),
    ("reductions.registry", "the reduction graph, paths, composition and size formulas"),
    ("reductions.verify", "end-to-end verification against ground truth"),
    ("reductions.problems.cnf", "CNF helpers around pysat.formula.CNF: DIMACS in and out"),
    ("reductions.problems.ov", "the Orthogonal Vectors instance and its file formats"),
    ("reductions.generators.ksat", "random and planted k-CNF"),
    ("reductions.generators.ov", "random, planted and pair-free OV instances"),
    ("reductions.generators.families", "structured CNF families with known status"),
    ("solvers.sat", "ground truth for k-SAT (python-sat, brute force)"),
    ("solvers.ov", "ground truth for OV (brute force, bit-packed)"),
    ("reductions.plots", "the figures: separation of YES/NO statistics, time vs n"),
    ("attention.distributed", "the exact gradient on a dask cluster"),
    ("solvers.ov_distributed", "OV and SAT by split and list on a dask cluster"),
    ("reductions.guards", "memory guards: refusals up front, with the estimate and what would work"),
]

HEADER = """# API reference

Generated from the docstrings by `python docs/gen_api.py` (do not edit by hand; the test
suite checks that every public function is listed).  The docstrings' `Examples` are run as
doctests by `python -m pytest`.  Start with `attention.gradient`, `reductions.reduce` and
`reductions.verify`; the [tutorial](tutorial.md) shows them at work.
"""


def public_names(module: Any) -> list[str]:
    """The documented names of ``module``: ``__all__``, else its own public functions and classes."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and getattr(obj, "__module__", None) == module.__name__
    ]


def _signature(name: str, obj: Any) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _methods(cls: type) -> list[tuple[str, Any]]:
    out = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        if inspect.isfunction(member) or isinstance(member, property):
            out.append((name, member))
    return out


def anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to ``-``."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def resolve(module: str, name: str) -> Any:
    """``module.name``; a submodule that shadows a re-exported function of the same name gives the function."""
    obj = getattr(importlib.import_module(module), name)
    if inspect.ismodule(obj) and callable(getattr(obj, name, None)):
        obj = getattr(obj, name)
    return obj


def render_object(module: str, name: str, obj: Any) -> list[str]:
    home = getattr(obj, "__module__", None)
    if home != module and home in dict(MODULES) and (inspect.isclass(obj) or inspect.isfunction(obj)):
        target = f"{home}.{obj.__name__}"
        return [f"### `{module}.{name}`", "", f"The same as [`{target}`](#{anchor(target)}).", ""]
    kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "value"
    head = _signature(name, obj) if kind != "value" else f"{name} = {obj!r}"
    doc = inspect.getdoc(obj) if kind != "value" else None
    lines = [f"### `{module}.{name}`", "", f"{kind} `{head}`", ""]
    if doc:
        lines += ["```text", doc, "```", ""]
    if inspect.isclass(obj):
        for mname, member in _methods(obj):
            target = member.fget if isinstance(member, property) else member
            first = (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ")
            label = mname if isinstance(member, property) else _signature(mname, member)
            lines.append(f"- `{label}`" + (f": {first}" if first else ""))
        lines.append("")
    return lines


def render() -> str:
    """The whole of docs/api.md."""
    lines = [HEADER, "## Modules", ""]
    lines += [f"- [`{name}`](#{name.replace('.', '')}): {text}" for name, text in MODULES]
    lines.append("")
    for name, text in MODULES:
        module = importlib.import_module(name)
        summary = (inspect.getdoc(module) or "").split("\n\n")[0]
        lines += [f"## {name}", "", f"*{text}.*", "", summary, ""]
        for public in public_names(module):
            lines += render_object(name, public, resolve(name, public))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/api.md from the docstrings.")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
